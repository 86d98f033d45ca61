"""Calibration through the evaluation engine: the samples of a calibration file streamed in chunks
(never all in memory), observed in parallel workers (a local process pool or Ray), and merged in
sample order by passes/quantize/calibration.py, exactly as a serial run would."""
from __future__ import annotations

from tcc.passes.quantize.calibration import CHUNK, CalibrationTask, Executor, check_samples_file

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
