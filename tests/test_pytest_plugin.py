"""The pytest plugin: one test item per claim (after ``each:`` expansion), verified lazily once per file."""

from __future__ import annotations

import fnmatch
import runpy
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# Imported here, before pytester snapshots sys.modules: the in-process inner runs import them and
# numpy's C extensions cannot be loaded a second time in one process.
import circuitspec.regress
import circuitspec.spec.loader
import circuitspec.stats.outcome

pytest_plugins = ["pytester"]

HYPOTHESIS = """\
name: {name}
model: {{name: tiny, shape: {{n_layers: 2, n_heads: 2, d_model: 16}}}}
data:
  rows: [{{a: good, b: bad}}]
  templates:
    - id: t
      text: "The movie was {{a}}"
      desired: " {{a}}"
      undesired: " {{b}}"
claims:
  - id: dla_negative
    kind: attribution
    targets: [L1H0]
    expect: "mean < 0"
  - id: heads
    kind: ablation
    targets: [L0H0, L0H1, L1H1]
    each: true
    expect: "no effect within 0.1"
  - id: scaled
    kind: attribution
    targets: [L1H1]
    expect: "mean > 0"
"""

# A fake verification: each claim's verdict from VERDICTS; every call is logged to runs.log.
CONFTEST = """
from pathlib import Path
from types import SimpleNamespace

from circuitspec.stats.outcome import ClaimOutcome, Interval

VERDICTS = {"dla_negative": "pass", "heads[L0H0]": "pass", "heads[L0H1]": "inconclusive",
            "heads[L1H1]": "pass", "scaled": "fail"}

def pytest_circuitspec_run(path, checkpoint, seed):
    with open(Path(__file__).parent / "runs.log", "a") as log:
        log.write(f"{Path(path).name} {checkpoint!r} {seed!r}\\n")
    return SimpleNamespace(outcomes=[
        ClaimOutcome(cid, "attribution", "mean < 0", "mean", -1.0, Interval(-1.5, -0.5, 0.95, "BCa"), verdict,
                     f"made-up {verdict}", 8)
        for cid, verdict in VERDICTS.items()
    ])
"""

N_CLAIMS = 5  # dla_negative, heads[L0H0], heads[L0H1], heads[L1H1], scaled


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    # unrelated plugins off: re-importing them in every in-process run costs seconds
    plugins_off = "-p no:hypothesispytest -p no:typeguard -p no:jaxtyping -p no:anyio -p no:xdist"
    pytester.makeini(f"[pytest]\naddopts = -p no:cacheprovider {plugins_off}\n")
    hypotheses = pytester.mkdir("hypotheses")
    (hypotheses / "alpha.yaml").write_text(HYPOTHESIS.format(name="alpha"))
    (hypotheses / "alpha_wrong.yaml").write_text(HYPOTHESIS.format(name="alpha_wrong"))
    (hypotheses / "settings.yaml").write_text("threshold: 3\n")  # not a hypothesis: no claims
    (hypotheses / "conftest.py").write_text(CONFTEST + '\ncollect_ignore_glob = ["*_wrong*.yaml"]\n')
    tests = pytester.mkdir("tests")
    (tests / "fixture.yaml").write_text(HYPOTHESIS.format(name="fixture"))  # outside circuitspec_dirs
    return pytester


def runs(project: pytest.Pytester) -> list[str]:
    log = project.path / "hypotheses" / "runs.log"
    return log.read_text().splitlines() if log.exists() else []


def test_one_item_per_claim_after_each_expansion(project):
    result = project.runpytest("--collect-only", "-q", "hypotheses", "tests")
    ids = [line for line in result.outlines if "::" in line]
    assert sorted(ids) == [  # the order is pytest's (pytest-randomly may shuffle it), the set is ours
        "hypotheses/alpha.yaml::dla_negative",
        "hypotheses/alpha.yaml::heads[L0H0]",
        "hypotheses/alpha.yaml::heads[L0H1]",
        "hypotheses/alpha.yaml::heads[L1H1]",
        "hypotheses/alpha.yaml::scaled",
    ]
    assert len(ids) == N_CLAIMS
    assert runs(project) == []  # collecting never runs a model


def test_verdicts_decide_outcomes_and_the_file_runs_once(project):
    result = project.runpytest("hypotheses")
    result.assert_outcomes(passed=3, failed=2)
    assert runs(project) == ["alpha.yaml None None"]
    text = result.stdout.str()
    assert (
        "claim 'scaled' is FAIL: expected mean < 0; mean = -1 CI [-1.5, -0.5] (0.95, BCa) over 8 prompts"
        in text
    )
    assert "claim 'heads[L0H1]' is INCONCLUSIVE" in text


def test_allow_inconclusive_and_options_pass_through(project):
    result = project.runpytest(
        "hypotheses",
        "--circuitspec-allow-inconclusive",
        "--circuitspec-checkpoint",
        "500",
        "--circuitspec-seed",
        "3",
    )
    result.assert_outcomes(passed=4, failed=1)
    assert runs(project) == ["alpha.yaml 500 3"]


def test_options_are_prefixed_so_bare_names_stay_free(project):
    """The plugin is active wherever circuitspec is installed: it must not take `--checkpoint`."""
    result = project.runpytest("hypotheses", "--checkpoint", "500")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --checkpoint*"])
    assert runs(project) == []


def test_k_selects_claims_by_id(project):
    result = project.runpytest("hypotheses", "-k", "heads and not L0H1")
    result.assert_outcomes(passed=2, deselected=3)
    result = project.runpytest("hypotheses", "-k", "nothing_matches")
    result.assert_outcomes(deselected=N_CLAIMS)
    assert runs(project) == ["alpha.yaml None None"]  # the deselected file was never verified


def test_junitxml_has_a_case_per_claim_with_its_verdict(project):
    xml = project.path / "out.xml"
    project.runpytest("hypotheses", f"--junitxml={xml}").assert_outcomes(passed=3, failed=2)
    cases = ET.parse(xml).getroot().iter("testcase")
    got = {
        case.get("name"): (
            {p.get("name"): p.get("value") for p in case.iter("property")}["verdict"],
            case.find("failure") is not None,
        )
        for case in cases
    }
    assert got == {
        "dla_negative": ("pass", False),
        "heads[L0H0]": ("pass", False),
        "heads[L0H1]": ("inconclusive", True),
        "heads[L1H1]": ("pass", False),
        "scaled": ("fail", True),
    }


def test_a_yaml_named_on_the_command_line_is_collected(project):
    project.path.joinpath("tests", "conftest.py").write_text(CONFTEST)
    result = project.runpytest("--collect-only", "-q", "tests/fixture.yaml")
    assert len([line for line in result.outlines if "::" in line]) == N_CLAIMS


def test_invalid_hypothesis_is_a_one_line_collection_error(project):
    bad = HYPOTHESIS.format(name="broken").replace('expect: "mean > 0"', 'expect: "mean is big"')
    project.path.joinpath("hypotheses", "broken.yaml").write_text(bad)
    result = project.runpytest("hypotheses")
    result.assert_outcomes(errors=1)  # pytest stops at collection errors
    errors = [line for line in result.outlines if "broken.yaml:" in line and "expect" in line]
    assert errors, result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_unavailable_model_skips_with_the_reason(project):
    conftest = project.path / "hypotheses" / "conftest.py"
    conftest.write_text(
        "from circuitspec.errors import ModelNotAvailable\n"
        "def pytest_circuitspec_run(path, checkpoint, seed):\n"
        "    raise ModelNotAvailable('no gpt2 weights in ~/.cache (set HF_HUB_OFFLINE=0)')\n"
        "collect_ignore_glob = ['*_wrong*.yaml']\n"
    )
    result = project.runpytest("hypotheses", "-rs")
    result.assert_outcomes(skipped=N_CLAIMS)
    result.stdout.fnmatch_lines(["*model not available: no gpt2 weights*"])


def test_bundled_hypotheses_collect_one_item_per_claim(pytester: pytest.Pytester):
    """Every true hypothesis in hypotheses/ (its conftest drops the *_wrong* ones): items == claims."""
    repo_hypotheses = Path(__file__).resolve().parents[1] / "hypotheses"
    shutil.copytree(repo_hypotheses, pytester.path / "hypotheses")
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider -p no:hypothesispytest -p no:typeguard\n")
    result = pytester.runpytest("--collect-only", "-q", "hypotheses")
    collected: dict[str, int] = {}
    for line in result.outlines:
        if "::" in line:
            file = line.split("::", 1)[0]
            collected[file] = collected.get(file, 0) + 1
    ignored = runpy.run_path(str(repo_hypotheses / "conftest.py"))["collect_ignore_glob"]
    expected = {
        path.relative_to(pytester.path).as_posix(): len(circuitspec.spec.loader.load_hypothesis(path).claims)
        for path in sorted((pytester.path / "hypotheses").rglob("*.yaml"))
        if not any(fnmatch.fnmatch(path.name, pattern) for pattern in ignored)
    }
    assert collected == expected
    assert len(expected) >= 3
