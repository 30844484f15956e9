"""Compare two ``report.json`` files claim by claim: what got worse, what moved, what vanished.

A claim *regresses* when

* its verdict got worse (pass → inconclusive / fail, inconclusive → fail);
* its statistic moved (either direction) by more than its tolerance: ``tolerance`` (absolute)
  and / or ``tolerance_ci_widths`` (× the width of the *baseline* CI), both from the claim in
  the YAML; when both are given the claim regresses as soon as it leaves either band;
  a move exactly at the tolerance is allowed;
* it measures a different statistic than the baseline did (the baseline is stale);
* it disappeared from the new report.

Claims new in the new report are listed but are not regressions. Tolerances are read from the
hypothesis file the new report names (re-loaded with the spec loader), so nothing depends on
the report writer copying them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError
from circuitspec.reports.json_report import REPORT_SCHEMA_VERSION

__all__ = [
    "ClaimComparison",
    "ClaimTolerance",
    "Regression",
    "compare_reports",
    "diff_reports",
    "load_report",
    "print_diff_table",
    "tolerances_from_hypothesis",
]

VERDICT_RANK = {"pass": 0, "inconclusive": 1, "fail": 2, "error": 2}  # an error is no better than a fail
# A move equal to the tolerance must not be flagged because of float rounding in ``new - base``.
_RELATIVE_ROUNDING = 1e-9
_ABSOLUTE_ROUNDING = 1e-12


@dataclass(frozen=True)
class ClaimTolerance:
    """How far a claim's statistic may move before it counts as a regression."""

    absolute: float | None = None
    ci_widths: float | None = None

    def allowed(self, baseline_ci: dict | None) -> list[tuple[str, float]]:
        """The bands that apply, as ``(description, allowed |Δ|)`` pairs."""
        bands: list[tuple[str, float]] = []
        if self.absolute is not None:
            bands.append((f"±{self.absolute:g}", float(self.absolute)))
        if self.ci_widths is not None and baseline_ci is not None:
            width = float(baseline_ci["high"]) - float(baseline_ci["low"])
            if math.isfinite(width):
                allowed = self.ci_widths * width
                bands.append((f"±{allowed:.4g} ({self.ci_widths:g} × baseline CI width)", allowed))
        return bands


@dataclass(frozen=True)
class Regression:
    """One claim that regressed; ``reason`` is a sentence a person can read in a CI log."""

    claim_id: str
    kind: str  # 'verdict' | 'moved' | 'statistic' | 'missing'
    reason: str
    base_verdict: str | None = None
    new_verdict: str | None = None
    base_estimate: float | None = None
    new_estimate: float | None = None


@dataclass(frozen=True)
class ClaimComparison:
    """One row of the diff table (every claim in either report)."""

    claim_id: str
    base: dict | None
    new: dict | None
    tolerance: str
    regressions: tuple[Regression, ...]

    @property
    def status(self) -> str:
        if self.regressions:
            return "REGRESSED"
        if self.base is None:
            return "new"
        return "ok"


def load_report(path: str | Path) -> dict:
    """Read a report.json; a one-line :class:`CircuitSpecError` if it is missing, not JSON, of a
    schema version this circuitspec does not read, or holds claims of the wrong shape."""
    p = Path(path)
    if not p.is_file():
        raise CircuitSpecError(f"no such report (looked at {p.resolve()})", file=str(path))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise CircuitSpecError(f"not a JSON report: {error}", file=str(path)) from None
    except RecursionError:
        raise CircuitSpecError("not a circuitspec report: JSON nested too deeply", file=str(path)) from None
    except OSError as error:
        raise CircuitSpecError(f"cannot read the report: {error.strerror or error}", file=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise CircuitSpecError("not a circuitspec report (no 'claims' list)", file=str(path))
    problem = _version_problem(data.get("schema_version")) or _claims_problem(data)
    if problem:
        raise CircuitSpecError(problem, file=str(path))
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _version_problem(version: Any) -> str | None:
    if _is_number(version) and version in range(1, REPORT_SCHEMA_VERSION + 1):
        return None
    return (
        f"report schema_version {version!r} is not one this circuitspec reads (1 to {REPORT_SCHEMA_VERSION})"
    )


# each claim field a diff reads, and what it must be (None is always allowed but for the id)
_CLAIM_FIELDS: dict[str, tuple[str, Any]] = {
    "verdict": ("a string", lambda v: isinstance(v, str)),
    "statistic": ("a string", lambda v: isinstance(v, str)),
    "estimate": ("a number", _is_number),
    "tolerance": ("a number", _is_number),
    "tolerance_ci_widths": ("a number", _is_number),
    "ci": ("an object with numbers 'low' and 'high'", lambda v: isinstance(v, dict)
           and all(_is_number(v.get(k)) or v.get(k) is None for k in ("low", "high"))),
}  # fmt: skip


def _claims_problem(report: dict) -> str | None:
    """The first claim record a diff could not read, as a sentence (None: all readable)."""
    hypothesis = report.get("hypothesis")
    if isinstance(hypothesis, dict) and not all(
        isinstance(hypothesis.get(k), str | None) for k in ("path", "file", "name")
    ):
        return "'hypothesis' must hold strings 'path' and 'name'"
    for index, claim in enumerate(report["claims"]):
        if not isinstance(claim, dict):
            return f"claims[{index}] must be an object, got {type(claim).__name__}"
        if not isinstance(claim.get("id", claim.get("claim_id")), str):
            return f"claims[{index}] has no string 'id'"
        for name, (what, valid) in _CLAIM_FIELDS.items():
            value = claim.get(name)
            if value is not None and not valid(value):
                return f"claims[{index}].{name} must be {what}, got {json.dumps(value)[:40]}"
    return None


def _claim_id(claim: dict) -> str:
    return str(claim.get("id", claim.get("claim_id")))


def report_hypothesis_path(report: dict) -> str | None:
    """The hypothesis file a report was made from, wherever the report writer put it."""
    hypothesis = report.get("hypothesis")
    if isinstance(hypothesis, dict):
        return hypothesis.get("path") or hypothesis.get("file")
    if isinstance(hypothesis, str):
        return hypothesis
    return report.get("hypothesis_path")


def _hypothesis_name(report: dict) -> str | None:
    hypothesis = report.get("hypothesis")
    return hypothesis.get("name") if isinstance(hypothesis, dict) else None


def tolerances_from_hypothesis(path: str | Path) -> dict[str, ClaimTolerance]:
    """Claim id → tolerance, from the YAML (``each:`` claims share their parent's tolerance)."""
    from circuitspec.spec.loader import load_hypothesis

    loaded = load_hypothesis(path)
    return {
        claim.id: ClaimTolerance(claim.tolerance, claim.tolerance_ci_widths)
        for claim in [*loaded.spec.claims, *loaded.claims]
        if claim.tolerance is not None or claim.tolerance_ci_widths is not None
    }


def _find_hypothesis(report: dict, report_path: Path) -> Path | None:
    named = report_hypothesis_path(report)
    if not named:
        return None
    for candidate in (Path(named), report_path.parent / named):
        if candidate.is_file():
            return candidate
    return None


def _tolerance_for(claim_id: str, tolerances: dict[str, ClaimTolerance], claim: dict) -> ClaimTolerance:
    if claim_id in tolerances:
        return tolerances[claim_id]
    parent = claim_id.split("[", 1)[0]  # 'id[target]' from each: expansion
    if parent in tolerances:
        return tolerances[parent]
    # a report writer may also have copied them into the claim record
    return ClaimTolerance(claim.get("tolerance"), claim.get("tolerance_ci_widths"))


def _compare_claim(claim_id: str, base: dict, new: dict, tolerance: ClaimTolerance) -> list[Regression]:
    found: list[Regression] = []
    base_verdict, new_verdict = base.get("verdict"), new.get("verdict")
    base_estimate, new_estimate = base.get("estimate"), new.get("estimate")
    common = dict(
        base_verdict=base_verdict,
        new_verdict=new_verdict,
        base_estimate=base_estimate,
        new_estimate=new_estimate,
    )
    if VERDICT_RANK.get(str(new_verdict), 2) > VERDICT_RANK.get(str(base_verdict), 2):  # unknown/None: 2
        found.append(Regression(claim_id, "verdict", f"verdict {base_verdict} → {new_verdict}", **common))
    if base.get("statistic") != new.get("statistic"):
        found.append(
            Regression(
                claim_id,
                "statistic",
                f"measures {new.get('statistic')!r}, the baseline measured {base.get('statistic')!r} "
                "(re-run `circuitspec baseline`)",
                **common,
            )
        )
        return found
    bands = tolerance.allowed(base.get("ci"))
    if not bands:
        return found
    if base_estimate is None or new_estimate is None:
        if base_estimate != new_estimate:
            found.append(
                Regression(claim_id, "moved", f"estimate {base_estimate} → {new_estimate}", **common)
            )
        return found
    delta = float(new_estimate) - float(base_estimate)
    for description, allowed in bands:
        if abs(delta) > allowed * (1 + _RELATIVE_ROUNDING) + _ABSOLUTE_ROUNDING:
            found.append(
                Regression(
                    claim_id,
                    "moved",
                    f"{new.get('statistic')} moved {delta:+.4g} ({base_estimate:.4g} → {new_estimate:.4g}), "
                    f"beyond {description}",
                    **common,
                )
            )
            break
    return found


def compare_reports(
    base: dict, new: dict, tolerances: dict[str, ClaimTolerance] | None = None
) -> list[ClaimComparison]:
    """Every claim of either report, baseline order first, with the regressions it shows."""
    tolerances = tolerances or {}
    base_claims = {_claim_id(c): c for c in base["claims"]}
    new_claims = {_claim_id(c): c for c in new["claims"]}
    order = list(base_claims) + [cid for cid in new_claims if cid not in base_claims]
    rows = []
    for claim_id in order:
        b, n = base_claims.get(claim_id), new_claims.get(claim_id)
        tolerance = _tolerance_for(claim_id, tolerances, n or b or {})
        bands = ", ".join(d for d, _ in tolerance.allowed((b or {}).get("ci"))) or "-"
        regressions: tuple[Regression, ...]
        if n is None:
            regressions = (
                Regression(
                    claim_id,
                    "missing",
                    "claim disappeared from the new report",
                    base_verdict=b.get("verdict") if b else None,
                    base_estimate=b.get("estimate") if b else None,
                ),
            )
        elif b is None:
            regressions = ()
        else:
            regressions = tuple(_compare_claim(claim_id, b, n, tolerance))
        rows.append(ClaimComparison(claim_id, b, n, bands, regressions))
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _change(base: dict | None, new: dict | None, key: str) -> str:
    before = "(absent)" if base is None else _fmt(base.get(key))
    after = "(absent)" if new is None else _fmt(new.get(key))
    return before if before == after else f"{before} → {after}"


def _delta(base: dict | None, new: dict | None) -> str:
    if base is None or new is None or base.get("estimate") is None or new.get("estimate") is None:
        return "-"
    return f"{float(new['estimate']) - float(base['estimate']):+.4g}"


def print_diff_table(rows: list[ClaimComparison], console: Any, title: str = "baseline → new") -> None:
    """A table a person can read in a CI log, then one line per regression (plain text off a TTY)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), box=box.SIMPLE_HEAD)
    for column in ("claim", "verdict", "estimate", "Δ", "tolerance", "status"):
        table.add_column(column, overflow="fold")
    styles = {"REGRESSED": "bold red", "ok": "green", "new": "cyan"}
    for row in rows:
        table.add_row(  # report text is data, not rich markup ('[/]' in an id must not break the table)
            escape(row.claim_id),
            escape(_change(row.base, row.new, "verdict")),
            escape(_change(row.base, row.new, "estimate")),
            _delta(row.base, row.new),
            escape(row.tolerance),
            f"[{styles[row.status]}]{row.status}[/]",
        )
    console.print(table)
    for row in rows:
        for regression in row.regressions:
            console.print(
                f"REGRESSED {regression.claim_id}: {regression.reason}", markup=False, soft_wrap=True
            )
    regressed = [row.claim_id for row in rows if row.regressions]
    if regressed:
        console.print(f"{len(regressed)} regression(s): {', '.join(regressed)}", markup=False, soft_wrap=True)
    else:
        console.print("no regressions", markup=False)


def diff_reports(
    base_json: str | Path,
    new_json: str | Path,
    console: Any = None,
    *,
    hypothesis: str | Path | None = None,
) -> list[Regression]:
    """Compare two report.json files, print the table, return every regression (empty: none).

    Tolerances come from ``hypothesis`` if given, else from the hypothesis file the new (then
    the baseline) report names, when it can be found.
    """
    from circuitspec.reports.table import make_console

    console = console or make_console()
    base_path, new_path = Path(base_json), Path(new_json)
    base, new = load_report(base_path), load_report(new_path)
    hypothesis_path = Path(hypothesis) if hypothesis else None
    if hypothesis_path is None:
        hypothesis_path = _find_hypothesis(new, new_path) or _find_hypothesis(base, base_path)
    tolerances = tolerances_from_hypothesis(hypothesis_path) if hypothesis_path else {}
    rows = compare_reports(base, new, tolerances)
    source = (
        f"tolerances from {hypothesis_path}" if hypothesis_path else "no hypothesis file found: no tolerances"
    )
    print_diff_table(rows, console, title=f"{base_path} → {new_path} ({source})")
    base_name, new_name = _hypothesis_name(base), _hypothesis_name(new)
    if base_name != new_name:
        console.print(f"note: comparing hypothesis {base_name!r} with {new_name!r}", markup=False)
    return [regression for row in rows for regression in row.regressions]
