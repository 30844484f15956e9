"""pytest plugin: every claim of every hypothesis YAML is a test item.

``pytest hypotheses/`` collects each ``*.yaml`` / ``*.yml`` with a top-level ``claims:`` key as a
file node; its claims (after ``each:`` expansion) are the items, named by claim id, so ``-k``
selects claims and ``--junitxml`` records one test case per claim (with the verdict, estimate
and CI as properties). The hypothesis runs once, lazily, when its first selected item runs, and
its items share the outcome. An item passes when its verdict is ``pass``; ``inconclusive`` fails
unless ``--circuitspec-allow-inconclusive``; a hypothesis whose model cannot be loaded here
(:class:`ModelNotAvailable`, e.g. a hub model offline) is skipped with the reason.
``--circuitspec-checkpoint X`` and ``--circuitspec-seed N`` are passed to every verification. Every
option is prefixed ``--circuitspec-``: the plugin is active in every pytest run where circuitspec
is installed, so a bare ``--checkpoint`` would collide with other plugins' and projects' options.

Which YAML files are collected: those under the directories listed in the ini option
``circuitspec_dirs`` (relative to the rootdir or the invocation directory; default
``hypotheses``) plus any YAML file named on the command line — so fixtures elsewhere (e.g. in
``tests/``) never turn into model runs. Hypotheses that are *meant* to fail are excluded with a
``conftest.py`` next to them: ``collect_ignore_glob = ["*_wrong*.yaml"]``.

A ``conftest.py`` may implement ``pytest_circuitspec_run(path, checkpoint, seed)`` to supply the
verification itself (it must return an object with ``.outcomes``, a list of ``ClaimOutcome``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from circuitspec.errors import CircuitSpecError, ModelNotAvailable

__all__ = ["ClaimFailed", "ClaimItem", "HypothesisFile", "is_hypothesis_file"]

_CLAIMS_KEY = re.compile(r"^claims\s*:", re.MULTILINE)
_SNIFF_BYTES = 1 << 20


class _HookSpecs:
    @pytest.hookspec(firstresult=True)
    def pytest_circuitspec_run(self, path: Path, checkpoint: int | str | None, seed: int | None) -> Any:
        """Verify the hypothesis at ``path``; return an object whose ``.outcomes`` are ClaimOutcomes."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(_HookSpecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("circuitspec", "circuit hypotheses (circuitspec)")
    group.addoption(
        "--circuitspec-checkpoint",
        dest="circuitspec_checkpoint",
        default=None,
        help="verify every hypothesis on this model checkpoint (a training step or a checkpoint name)",
    )
    group.addoption(
        "--circuitspec-allow-inconclusive",
        dest="circuitspec_allow_inconclusive",
        action="store_true",
        default=False,
        help="count inconclusive claims as passed",
    )
    group.addoption(
        "--circuitspec-seed",
        dest="circuitspec_seed",
        type=int,
        default=None,
        help="seed for every verification (default: each hypothesis' own seed)",
    )
    parser.addini(
        "circuitspec_dirs",
        type="linelist",
        default=["hypotheses"],
        help="directories whose hypothesis YAML files are collected as tests (default: hypotheses)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "circuitspec: a claim of a circuit hypothesis (collected from YAML)")


@pytest.hookimpl(trylast=True)
def pytest_circuitspec_run(path: Path, checkpoint: int | str | None, seed: int | None) -> Any:
    """The default: the real pipeline, without a progress bar."""
    from circuitspec.pipeline import run_verification

    return run_verification(path, checkpoint=checkpoint, seed=seed, progress=False)


def is_hypothesis_file(path: Path) -> bool:
    """A YAML file with a top-level ``claims:`` key (a cheap text check; validation comes later)."""
    if path.suffix not in (".yaml", ".yml"):
        return False
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return bool(_CLAIMS_KEY.search(handle.read(_SNIFF_BYTES)))
    except OSError:
        return False


def _is_wanted(path: Path, config: pytest.Config) -> bool:
    """Under one of the ``circuitspec_dirs``, or named on the command line."""
    resolved = path.resolve()
    invocation = config.invocation_params.dir
    for arg in config.args:
        if (invocation / arg.split("::", 1)[0]).resolve() == resolved:
            return True
    for directory in config.getini("circuitspec_dirs"):
        for base in (config.rootpath, invocation):
            if resolved.is_relative_to((base / directory).resolve()):
                return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_hypothesis_file(file_path) and _is_wanted(file_path, parent.config):
        return HypothesisFile.from_parent(parent, path=file_path)
    return None


def _checkpoint_option(config: pytest.Config) -> int | str | None:
    value = config.getoption("circuitspec_checkpoint")
    return int(value) if isinstance(value, str) and value.isdigit() else value


class HypothesisFile(pytest.File):
    """One hypothesis file: its claims are the items; it is verified at most once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outcomes: dict[str, Any] | None = None
        self._error: BaseException | None = None

    def collect(self) -> Any:
        from circuitspec.spec.loader import load_hypothesis

        try:
            loaded = load_hypothesis(self.path)
        except CircuitSpecError as error:
            raise self.CollectError(str(error)) from None
        group = (
            pytest.mark.xdist_group(name=str(self.path))
            if self.config.pluginmanager.hasplugin("xdist")
            else None
        )
        for claim in loaded.claims:
            line, _ = loaded.locate(loaded.claim_loc(claim.id))
            item = ClaimItem.from_parent(self, name=claim.id, claim_id=claim.id, line=line)
            item.add_marker("circuitspec")
            if group is not None:
                item.add_marker(group)
            yield item

    def outcome(self, claim_id: str) -> Any:
        """The claim's ClaimOutcome, verifying the file on first use (errors are re-raised per item)."""
        if self._outcomes is None and self._error is None:
            try:
                result = self.ihook.pytest_circuitspec_run(
                    path=self.path,
                    checkpoint=_checkpoint_option(self.config),
                    seed=self.config.getoption("circuitspec_seed"),
                )
                self._outcomes = {o.claim_id: o for o in result.outcomes}
                del result  # keep only the outcomes, not measurements
            except Exception as error:  # every item of the file reports the same failure
                self._error = error
            from circuitspec.pipeline import free_model_memory

            free_model_memory()
        if isinstance(self._error, ModelNotAvailable):  # not testable here: say why, don't fail
            pytest.skip(f"model not available: {self._error}")
        if self._error is not None:
            raise self._error
        assert self._outcomes is not None
        if claim_id not in self._outcomes:
            raise CircuitSpecError(
                f"the verification produced no outcome for claim '{claim_id}'", file=str(self.path)
            )
        return self._outcomes[claim_id]


class ClaimFailed(Exception):
    """A claim whose verdict is not acceptable; carries the outcome for the failure report."""

    def __init__(self, outcome: Any) -> None:
        super().__init__(f"{outcome.claim_id}: {outcome.verdict}")
        self.outcome = outcome


class ClaimItem(pytest.Item):
    """One claim; passes when its verdict is pass (or inconclusive with --circuitspec-allow-inconclusive)."""

    def __init__(self, *, claim_id: str, line: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.claim_id = claim_id
        self.line = line

    def runtest(self) -> None:
        assert isinstance(self.parent, HypothesisFile)
        outcome = self.parent.outcome(self.claim_id)
        ci = outcome.ci
        self.user_properties.extend(
            [
                ("verdict", outcome.verdict),
                ("statistic", outcome.statistic),
                ("estimate", "" if outcome.estimate is None else f"{outcome.estimate:.6g}"),
                ("ci", "" if ci is None else f"[{ci.low:.6g}, {ci.high:.6g}] at {ci.level:g}"),
            ]
        )
        allowed = (
            {"pass", "inconclusive"} if self.config.getoption("circuitspec_allow_inconclusive") else {"pass"}
        )
        if outcome.verdict not in allowed:
            raise ClaimFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        error = excinfo.value
        if isinstance(error, ClaimFailed):
            o = error.outcome
            interval = (
                f" CI [{o.ci.low:.4g}, {o.ci.high:.4g}] ({o.ci.level:g}, {o.ci.method})" if o.ci else ""
            )
            estimate = "-" if o.estimate is None else f"{o.estimate:.4g}"
            return (
                f"{self.path.name}:{self.line or 0}: claim '{o.claim_id}' is {o.verdict.upper()}: "
                f"expected {o.expectation}; {o.statistic} = {estimate}{interval} over {o.n_prompts} prompts\n"
                f"  {o.reason}"
            )
        if isinstance(error, CircuitSpecError):
            return str(error)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None if self.line is None else self.line - 1, f"claim {self.claim_id}"
