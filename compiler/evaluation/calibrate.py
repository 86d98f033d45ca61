"""The quantizer's work on the evaluation engine: calibration (the samples of a calibration file
streamed in chunks, never all in memory, observed in parallel workers -- a local process pool or
Ray -- and merged in sample order by passes/quantize/calibration.py, exactly as a serial run would)
and mixed precision's sensitivity sweep (passes/quantize/sensitivity.py: one lowered run per layer
and format, spread over the workers, results in job order)."""
from __future__ import annotations

from tcc.passes.quantize.calibration import CHUNK, CalibrationTask, Executor, check_samples_file
from tcc.passes.quantize.sensitivity import Mapper, SensitivityTask

from .data import open_dataset
from .engine import map_chunks


def calibration_executor(path: str, workers: int = 1, ray_address: str | None = None,
                         max_samples: int = 0) -> Executor:
    """The executor the quantize pass calibrates with: ``path`` is read lazily, chunk by chunk."""

    def run(task: CalibrationTask, module):
        check_samples_file(path, module)  # the serial loader's messages for a malformed file
        dataset = open_dataset(path, {v.name: v.type.shape for v in module.inputs})
        count = min(len(dataset), max_samples) if max_samples else len(dataset)
        return count, map_chunks(task, dataset, count, workers, ray_address, chunk=CHUNK)

    return run


class _Jobs:
    """A list of jobs read like a dataset."""

    def __init__(self, jobs: list):
        self.jobs = jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def read(self, start: int, stop: int) -> list:
        return self.jobs[start:stop]


def sweep_mapper(workers: int = 1, ray_address: str | None = None) -> Mapper:
    """The mapper the mixed-precision pass measures sensitivities with: a job per chunk, so the
    workers stay busy to the end (each job is a whole lowering and a run over the samples)."""

    def run(task: SensitivityTask, jobs: list):
        return map_chunks(task, _Jobs(jobs), len(jobs), workers, ray_address, chunk=1)

    return run
