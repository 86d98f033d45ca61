"""Run a task over every sample: in this process, a local process pool, or Ray.

A task is a picklable object with ``open()`` (called once wherever it runs) and ``run(start,
samples) -> result``.  The driver reads the data in chunks (lazily, so memory stays bounded by the
chunks in flight), hands each chunk to a worker and yields the results in sample order.  Two tasks
use it: evaluation (``EvalTask``: a Record per sample, from the model and artifact each worker
opens once) and calibration (passes/quantize/calibration.py's ``CalibrationTask``: the observers of
a chunk, merged exactly by the caller).  Results depend only on their samples and are consumed
in sample order, so the outcome is the same bit for bit whichever way it runs.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .data import EvalError

CHUNK = 8  # samples per task: amortizes the hand-off, keeps the progress bar moving
IN_FLIGHT = 2  # chunks queued per worker


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


#: Seconds of work left below which a pool is not worth starting: each worker spawns a Python,
#: imports numpy, onnxruntime and tcc and opens the task (about a second each on a quiet machine).
POOL_PAYS_FROM = 4.0


def map_chunks(task, dataset, count: int, workers: int = 1, ray_address: str | None = None, chunk: int = CHUNK,
               adaptive: bool = False, chosen=None):
    """Yield ``task.run(start, dataset.read(start, stop))`` for consecutive chunks of samples
    0..count-1, in order: here (workers <= 1), in a local process pool, or on Ray.

    ``adaptive`` (workers > 1 not asked for explicitly): run the first chunk here, and start the
    pool for the rest only if they would take longer than POOL_PAYS_FROM seconds here.  Results
    depend only on their samples, so the choice does not change them.  ``chosen(executor)`` is
    told where the chunks ran: "in process", "process pool" or "ray".
    """
    chunks = [(start, min(start + chunk, count)) for start in range(0, count, chunk)]
    if ray_address is not None:
        _tell(chosen, "ray")
        yield from _ray_chunks(task, dataset, chunks, ray_address, workers)
        return
    if workers > 1 and adaptive and len(chunks) > 1:
        task.open()
        started = time.perf_counter()
        (start, stop), chunks = chunks[0], chunks[1:]
        yield task.run(start, dataset.read(start, stop))
        if (time.perf_counter() - started) * len(chunks) < POOL_PAYS_FROM:
            workers = 1
    if workers <= 1:
        _tell(chosen, "in process")
        task.open()
        yield from (task.run(start, dataset.read(start, stop)) for start, stop in chunks)
    else:
        _tell(chosen, "process pool")
        yield from _pool_chunks(task, dataset, chunks, workers)


def _tell(chosen, executor: str) -> None:
    if chosen is not None:
        chosen(executor)


# -- a local process pool -----------------------------------------------------------------------
_TASK = None
UNGUARDED = ("workers > 1 start processes that import your script again, and the script started the "
             "evaluation itself while being imported: put the call under `if __name__ == \"__main__\":` "
             "(or pass workers=1)")


def _check_not_bootstrapping() -> None:
    """A worker the pool spawns imports the parent's main script; a script without a main guard
    starts a pool again there, and that worker would wait forever on its own pool.  Stop it with
    one line (the parent then reports the broken pool with the same advice)."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(f"tcc: {UNGUARDED}")


def _init_worker(task) -> None:
    global _TASK
    if isinstance(task, str):  # the pool's workers read the task from a file (see _pool_chunks)
        with open(task, "rb") as f:
            task = pickle.load(f)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # one core per worker; the pool provides the parallelism
    # BLAS is loaded by now (numpy came with the task), so the variables above no longer reach it:
    # limit its pool itself, or two workers' spinning BLAS threads oversubscribe the cores.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    task.open()
    _TASK = task


def _run_chunk(start: int, samples: list):
    assert _TASK is not None
    return _TASK.run(start, samples)


def _pool_chunks(task, dataset, chunks, workers: int):
    _check_not_bootstrapping()
    # spawn: a fork would copy onnxruntime's and BLAS's thread state into the children
    context = multiprocessing.get_context("spawn")
    # The task (a model and an artifact: megabytes) goes through a file, not the start-up pipe:
    # multiprocessing writes a worker's start-up data while holding the pipe's read end itself, so a
    # worker that exits before reading it all (the unguarded script above) would block the write forever.
    try:
        with tempfile.TemporaryDirectory(prefix="tcc-eval-") as folder:
            path = os.path.join(folder, "task.pickle")
            with open(path, "wb") as f:
                pickle.dump(task, f, protocol=pickle.HIGHEST_PROTOCOL)
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                     initargs=(path,)) as pool:
                yield from _ordered(lambda start, samples: pool.submit(_run_chunk, start, samples).result,
                                    dataset, chunks, workers)
    except BrokenProcessPool:
        raise EvalError(f"a worker process died before finishing its samples; if this runs from a script, "
                        f"{UNGUARDED}") from None


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
def _ray_chunks(task, dataset, chunks, address: str, workers: int):
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
        task_ref = ray.put(task)
        actors = [actor.remote(task_ref) for _ in range(count)]
        turn = iter(range(len(chunks)))

        def submit(start, samples):
            ref = actors[next(turn) % len(actors)].run.remote(start, samples)
            return lambda: ray.get(ref)

        yield from _ordered(submit, dataset, chunks, len(actors))
    finally:
        if started:
            ray.shutdown()


class _RayWorker:
    def __init__(self, task):
        _init_worker(task)

    def run(self, start: int, samples: list):
        return _run_chunk(start, samples)
