"""Shared by the benchmark scripts: best-of-N wall time."""
import time


def best_of(repeat, fn):
    """(fastest wall time in seconds over ``repeat`` calls, the last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result
