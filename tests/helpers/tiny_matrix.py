"""A tiny two-claim hypothesis with three checkpoints, for regress / matrix tests (no model runs)."""

HYPOTHESIS = """\
name: tiny_matrix
model: {name: tiny, shape: {n_layers: 2, n_heads: 2, d_model: 16}}
checkpoints: [step_0, step_500, final]
data:
  rows: [{a: good, b: bad}]
  templates:
    - id: t
      text: "The movie was {a}"
      desired: " {a}"
      undesired: " {b}"
claims:
  - id: dla
    kind: attribution
    targets: [L1H0]
    expect: "mean < 0"
  - id: control
    kind: ablation
    targets: [L0H1]
    expect: "no effect within 0.1"
"""
