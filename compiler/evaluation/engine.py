"""Run every sample through the opened executions: in this process, a local process pool, or Ray.

The driver reads the data in chunks (lazily, so memory stays bounded by the chunks in flight),
hands each chunk to a worker and collects the records in sample order.  Each worker opens the
model and artifact once.  Records depend only on their sample, and the summary is computed from
them in sample order, so the result is the same bit for bit whichever way it runs.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor

from .data import EvalError, Sample
from .paths import EvalSpec, Record, Runners

CHUNK = 8  # samples per task: amortizes the hand-off, keeps the progress bar moving
IN_FLIGHT = 2  # chunks queued per worker


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_records(spec: EvalSpec, dataset, count: int, workers: int = 1, ray_address: str | None = None,
                progress=None, opened: Runners | None = None):
    """Yield one Record per sample 0..count-1, in order; ``progress(done)`` after each chunk.
    ``opened``: runners already open in this process, used when running here."""
    chunks = [(start, min(start + CHUNK, count)) for start in range(0, count, CHUNK)]
    if ray_address is not None:
        source = _ray_records(spec, dataset, chunks, ray_address, workers)
    elif workers <= 1:
        runners = opened or Runners(spec)
        source = ([runners.run(start + i, s) for i, s in enumerate(dataset.read(start, stop))]
                  for start, stop in chunks)
    else:
        source = _pool_records(spec, dataset, chunks, workers)
    done = 0
    for records in source:
        yield from records
        done += len(records)
        if progress is not None:
            progress(done)


# -- a local process pool -----------------------------------------------------------------------
_RUNNERS: Runners | None = None


def _init_worker(spec: EvalSpec) -> None:
    global _RUNNERS
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # one core per worker; the pool provides the parallelism
    _RUNNERS = Runners(spec)


def _run_chunk(start: int, samples: list[Sample]) -> list[Record]:
    return [_RUNNERS.run(start + i, s) for i, s in enumerate(samples)]


def _pool_records(spec: EvalSpec, dataset, chunks, workers: int):
    # spawn: a fork would copy onnxruntime's and BLAS's thread state into the children
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(spec,)) as pool:
        yield from _ordered(lambda start, samples: pool.submit(_run_chunk, start, samples).result,
                            dataset, chunks, workers)


def _ordered(submit, dataset, chunks, workers: int):
    """Submit chunks with at most IN_FLIGHT per worker queued; yield their results in order."""
    pending: deque = deque()
    for start, stop in chunks:
        pending.append(submit(start, dataset.read(start, stop)))
        if len(pending) >= IN_FLIGHT * workers:
            yield pending.popleft()()
    while pending:
        yield pending.popleft()()


# -- Ray ------------------------------------------------------------------------------------------
def _ray_records(spec: EvalSpec, dataset, chunks, address: str, workers: int):
    try:
        import ray
    except ImportError:
        raise EvalError("--ray needs Ray: pip install -e '.[cluster]'") from None
    started = not ray.is_initialized()
    if started:
        local = address == "local"
        ray.init(address=None if local else address, num_cpus=workers if local else None,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        count = workers if address == "local" else max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1)(_RayWorker)
        spec_ref = ray.put(spec)
        actors = [actor.remote(spec_ref) for _ in range(count)]
        turn = iter(range(len(chunks)))

        def submit(start, samples):
            ref = actors[next(turn) % len(actors)].run.remote(start, samples)
            return lambda: ray.get(ref)

        yield from _ordered(submit, dataset, chunks, len(actors))
    finally:
        if started:
            ray.shutdown()


class _RayWorker:
    def __init__(self, spec: EvalSpec):
        _init_worker(spec)

    def run(self, start: int, samples: list[Sample]) -> list[Record]:
        return _run_chunk(start, samples)
