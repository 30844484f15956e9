"""What a report is written from: :class:`ReportInput`, one verification run bundled (no torch).

The pipeline builds it with :func:`build_report_input` from its ``Verification``; tests and other
callers can construct it directly from outcomes, measurements and claim specs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circuitspec.measurement import Measurement
from circuitspec.stats.outcome import ClaimOutcome

__all__ = ["PACKAGES", "ReportInput", "build_report_input", "file_sha256", "package_versions"]

# Distributions whose versions a report records; read from metadata so torch is never imported.
PACKAGES = ("circuitspec", "torch", "transformer-lens", "numpy", "scipy", "matplotlib")


@dataclass
class ReportInput:
    """Everything one report needs, in memory.

    ``claims`` maps claim id to its spec (a ``circuitspec.spec.schema`` claim model or anything
    with ``kind``/``targets``/``expect``/``confidence`` attributes); ``measurements`` maps claim id
    to its :class:`Measurement`. ``graph_text`` is the circuit as Mermaid or DOT text
    (``graph_format`` says which); ``circuit`` is its component graph as JSON-able data
    (``circuitspec.graph.components.circuit_dict``), drawn by ``reports.circuit_svg``.
    ``total_seconds`` is the whole run's wall time.
    """

    hypothesis_name: str
    hypothesis_path: str
    hypothesis_sha256: str
    model: dict[str, Any]
    seed: int
    multiple_comparisons: str
    outcomes: list[ClaimOutcome]
    measurements: dict[str, Measurement] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    checkpoint: int | str | None = None
    graph_text: str | None = None
    graph_format: str = "mermaid"
    circuit: dict[str, Any] | None = None  # the component graph (graph.components.circuit_dict)
    total_seconds: float | None = None
    packages: dict[str, str | None] | None = None  # None: read from the installed distributions
    split: dict[str, Any] = field(default_factory=dict)  # the row split verdicts used (spec.splits)
    # the first prompt of each template as `circuitspec prompts` prints it (engine.prompt_sample records)
    prompt_sample: list[dict[str, Any]] = field(default_factory=list)

    def versions(self) -> dict[str, str | None]:
        """The package versions to record (given ones, else the installed ones)."""
        return dict(self.packages) if self.packages is not None else package_versions()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions by distribution name (None when absent), without importing anything."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes ('' when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def _graph_text(graph: Any) -> tuple[str | None, str]:
    """The circuit as Mermaid (else DOT) text via ``circuitspec.graph.export``, if it is there."""
    if graph is None:
        return None, "mermaid"
    try:
        from circuitspec.graph import export
    except ImportError:
        return None, "mermaid"
    for fmt, names in (("mermaid", ("to_mermaid", "mermaid")), ("dot", ("to_dot", "dot"))):
        for name in names:
            render = getattr(export, name, None)
            if callable(render):
                try:
                    return str(render(graph)), fmt
                except Exception:  # a broken export must not lose the whole report
                    continue
    return None, "mermaid"


def _circuit(graph: Any) -> dict[str, Any] | None:
    """The component graph of a compiled circuit, or None (no graph, or it fails: the report stays)."""
    if graph is None:
        return None
    try:
        from circuitspec.graph.components import circuit_dict

        return circuit_dict(graph)
    except Exception:  # a broken drawing must not lose the whole report
        return None


def build_report_input(verification: Any) -> ReportInput:
    """Bundle a pipeline ``Verification`` (duck-typed) into a :class:`ReportInput`."""
    loaded = verification.hypothesis
    spec = getattr(loaded, "spec", loaded)
    path = getattr(loaded, "path", None) or getattr(loaded, "source", None) or ""
    sha = getattr(loaded, "sha256", None) or (file_sha256(path) if path else "")
    graph = getattr(verification, "graph", None)
    claim_specs = getattr(graph, "claims", None) or list(getattr(spec, "claims", []))
    graph_text, graph_format = _graph_text(graph)
    model = dict(getattr(verification, "model_identity", {}) or {})
    checkpoint = getattr(verification, "checkpoint", None)
    if checkpoint is not None:
        model.setdefault("checkpoint", checkpoint)
    return ReportInput(
        hypothesis_name=str(getattr(spec, "name", "") or Path(str(path)).stem),
        hypothesis_path=str(path),
        hypothesis_sha256=str(sha),
        model=model,
        seed=int(verification.seed),
        multiple_comparisons=str(verification.correction),
        outcomes=list(verification.outcomes),
        measurements=dict(getattr(verification, "measurements", {}) or {}),
        claims={c.id: c for c in claim_specs},
        description=str(getattr(spec, "description", "") or ""),
        checkpoint=checkpoint,
        graph_text=graph_text,
        graph_format=graph_format,
        circuit=_circuit(graph),
        total_seconds=getattr(verification, "seconds", None),
        split=dict(getattr(verification, "split", None) or {}),
        prompt_sample=list(getattr(verification, "prompt_sample", None) or []),
    )
