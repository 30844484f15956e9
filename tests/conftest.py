"""Suite-wide settings: two pytest workers share two cores, so each runs torch on one thread."""

import os

os.environ.setdefault("CIRCUITSPEC_THREADS", "1")

from pathlib import Path

import pytest

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"


@pytest.fixture(scope="session")
def toy():
    """The bundled toy hypothesis compiled against its loaded model: ``(graph, loaded, rows)``."""
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis, load_rows

    hypothesis = load_hypothesis(TOY)
    loaded = load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)
    graph = compile_hypothesis(hypothesis, shape=loaded.shape)
    return graph, loaded, load_rows(hypothesis.spec.data, hypothesis.base_dir)


@pytest.fixture
def tiny_matrix_hypothesis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tests/helpers/tiny_matrix.py``'s hypothesis written to a fresh working folder (the cwd)."""
    from tests.helpers.tiny_matrix import HYPOTHESIS

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny_matrix.yaml"
    path.write_text(HYPOTHESIS)
    return path


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster with 2 CPUs (2 workers), shared by one test module's tests (the Ray test
    modules run on one xdist worker, so one cluster at a time on the 2 cores)."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'circuitspec[ray]')")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
