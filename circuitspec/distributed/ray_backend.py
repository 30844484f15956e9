"""Running model groups as Ray tasks: connecting, declaring resources, retrying a dead worker once.

Ray is imported only inside these functions (never when the CLI starts). One Ray task per model
group (:class:`~circuitspec.distributed.jobs.ModelGroup`): the task loads the model once and runs every
job for it. Tasks rather than actors because Ray reuses a task's worker process for the next task,
so torch and TransformerLens are imported once per worker, not once per model; a task whose worker
dies (killed, out of memory) is retried once by Ray (``max_retries=1``), and a second death makes
every job of the group an error cell while the other groups land as they finish.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from circuitspec.errors import CircuitSpecError

from .jobs import Job, JobResult, ModelGroup, run_group

__all__ = ["LOCAL", "MAX_RETRIES", "cluster_gpus", "connect", "import_ray", "probe", "run_groups"]

LOCAL = "local"  # `--ray` without an address: start a local cluster on this machine's cores
MAX_RETRIES = 1  # a group whose worker dies is run once more, then reported as error cells
INSTALL_HINT = "pip install 'circuitspec[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or the one-line error naming the extra to install."""
    try:
        import ray
    except ModuleNotFoundError:
        raise CircuitSpecError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def connect(address: str | None) -> Iterator[Any]:
    """Ray, connected: to ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``), else a local
    cluster with one CPU per core here. A connection already open (a test's, a notebook's) is used as
    it is and left open; one opened here is shut down on leaving."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    try:
        if address in (None, LOCAL):  # "local": a new cluster, never one `ray start` left running
            ray.init(address=LOCAL, num_cpus=os.cpu_count() or 1, **options)
        else:
            ray.init(address=address, **options)
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError: Ray's own words, one line
        where = "a local Ray cluster" if address in (None, LOCAL) else f"the Ray cluster at {address}"
        raise CircuitSpecError(f"cannot start or reach {where}: {' '.join(str(exc).split())}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def probe(address: str | None, timeout_s: float = 5.0) -> None:
    """A one-line error when ``HOST:PORT`` (or ``ray://HOST:PORT``) does not answer: Ray itself keeps
    retrying an unreachable head for minutes before it gives up."""
    if address in (None, LOCAL, "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not (host and port.isdigit()):
        raise CircuitSpecError(f"--ray-address {address!r}: write auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise CircuitSpecError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (is `ray start` running?)"
        ) from None


def cluster_gpus(ray: Any) -> float:
    """GPUs in the connected cluster (0 on a CPU-only one)."""
    return float(ray.cluster_resources().get("GPU", 0.0))


def _check_feasible(ray: Any, groups: Sequence[ModelGroup]) -> None:
    """Refuse up front a group no node can hold (Ray would wait for it forever)."""
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    for group in groups:
        need = group.resources
        fits = any(
            node.get("CPU", 0) >= need["num_cpus"]
            and node.get("GPU", 0) >= need["num_gpus"]
            and node.get("memory", float("inf")) >= need["memory"]
            for node in nodes
        )
        if not fits:
            gib = need["memory"] / 2**30
            raise CircuitSpecError(
                f"{group.jobs[0].label}: no node of the Ray cluster has {need['num_cpus']:g} CPU, "
                f"{need['num_gpus']:g} GPU and {gib:.1f} GiB of memory free for this model"
            )


def _group_task(jobs: Sequence[Job], run: Callable[..., Any] | None) -> list[JobResult]:
    return run_group(jobs, run)


def _dead(group: ModelGroup, exc: BaseException) -> list[JobResult]:
    """The group's jobs as error cells after its worker died on both tries."""
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    why = "killed for memory" if "OutOfMemory" in type(exc).__name__ else "died"
    reason = (
        f"the Ray worker running it {why} on both tries ({type(exc).__name__}: {' '.join(first.split())})"
    )
    return [JobResult(job.index, error=reason) for job in group.jobs]


def run_groups(
    ray: Any,
    groups: Sequence[ModelGroup],
    run: Callable[..., Any] | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> dict[int, JobResult]:
    """Every group as one Ray task with its resources; results by job index as they land
    (``on_result`` is called for each, in completion order)."""
    _check_feasible(ray, groups)
    task = ray.remote(_group_task)
    pending: dict[Any, ModelGroup] = {}
    for group in groups:
        need = group.resources
        options = {
            "num_cpus": need["num_cpus"],
            "num_gpus": need["num_gpus"],
            "memory": int(need["memory"]),
            "max_retries": MAX_RETRIES,
            "retry_exceptions": False,
        }
        pending[task.options(**options).remote(group.jobs, run)] = group
    results: dict[int, JobResult] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        group = pending.pop(done[0])
        try:
            landed = ray.get(done[0])
        except ray.exceptions.RayError as exc:  # the worker died twice (or Ray lost the task)
            landed = _dead(group, exc)
        for result in landed:
            results[result.index] = result
            if on_result is not None:
                on_result(result)
    return results
