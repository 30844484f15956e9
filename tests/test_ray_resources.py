"""What a model group declares to Ray (no Ray needed): parameter bounds against real counts, the GPU
rule, the refusal of a group no node can hold, and error cells for a job that never came back."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from circuitspec.distributed.jobs import Job, ModelGroup, error_outcomes
from circuitspec.distributed.ray_backend import _check_feasible
from circuitspec.distributed.resources import BASE_BYTES, group_resources, parameter_count
from circuitspec.errors import CircuitSpecError
from circuitspec.graph.shapes import shape_for
from circuitspec.spec.schema import ModelSpec

GPT2_SMALL_PARAMETERS = 124_439_808  # OpenAI's GPT-2 small (tied embeddings), as Hugging Face counts it


def test_the_parameter_bound_holds_for_gpt2_and_the_loaded_toy_model(toy) -> None:
    gpt2 = parameter_count(shape_for(ModelSpec(name="gpt2")))
    assert GPT2_SMALL_PARAMETERS <= gpt2 <= 2 * GPT2_SMALL_PARAMETERS  # an upper bound, not a wild one
    graph, loaded, _ = toy
    actual = sum(p.numel() for p in loaded.model.parameters())  # the weights as loaded, counted by torch
    assert actual <= parameter_count(graph.shape) <= 3 * actual


def test_memory_follows_size_and_dtype_and_gpus_follow_the_device() -> None:
    shape = shape_for(ModelSpec(name="gpt2"))
    f32 = group_resources(shape, ModelSpec(name="gpt2"))
    f16 = group_resources(shape, ModelSpec(name="gpt2", dtype="float16"))
    assert (
        f32["memory"] - BASE_BYTES == 2 * (f16["memory"] - BASE_BYTES) == 2 * 2 * 2 * parameter_count(shape)
    )
    assert f32["num_cpus"] == 1 and f32["num_gpus"] == 0  # device auto on a CPU-only cluster
    assert group_resources(shape, ModelSpec(name="gpt2"), cluster_gpus=1)["num_gpus"] == 1
    assert group_resources(shape, ModelSpec(name="gpt2", device="cuda:0"))["num_gpus"] == 1
    assert group_resources(shape, ModelSpec(name="gpt2", device="cpu"), cluster_gpus=8)["num_gpus"] == 0


def _fake_ray(*nodes: dict) -> SimpleNamespace:
    return SimpleNamespace(nodes=lambda: [{"Alive": True, "Resources": node} for node in nodes])


def test_a_group_no_node_can_hold_is_refused_before_it_runs() -> None:
    job = Job(0, "big.yaml", "/", label="checkpoint final")
    group = ModelGroup("k", [job], {"num_cpus": 1.0, "num_gpus": 0.0, "memory": 40 * 2**30})
    _check_feasible(_fake_ray({"CPU": 2, "memory": 64 * 2**30}), [group])  # fits: no error
    with pytest.raises(CircuitSpecError) as error:
        _check_feasible(
            _fake_ray({"CPU": 16, "memory": 8 * 2**30}, {"CPU": 2, "memory": 16 * 2**30}), [group]
        )
    assert str(error.value) == (
        "checkpoint final: no node of the Ray cluster has 1 CPU, 0 GPU and 40.0 GiB of memory free "
        "for this model"
    )


def test_a_job_that_never_came_back_is_an_error_cell_for_every_claim(toy) -> None:
    graph = toy[0]
    outcomes = error_outcomes(graph, "the Ray worker running it died on both tries")
    assert [o.claim_id for o in outcomes] == [c.id for c in graph.claims]
    assert {o.verdict for o in outcomes} == {"error"}
    assert all(o.estimate is None and o.reason.endswith("died on both tries") for o in outcomes)
    behaviour = next(o for o in outcomes if o.claim_id == "does_substitution")
    assert (behaviour.statistic, behaviour.expectation) == ("success_rate", "success_rate >= 0.9")
