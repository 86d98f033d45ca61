"""The overlay's instruction-set simulator: the executable specification of docs/overlay-machine.md.

``Machine(target, dram_image).run(words) -> RunResult``; outputs are read from
``machine.dram`` (an (N, bytes) image simulates N samples at once: ``machine.batch_dram``); ``run_cores`` runs one stream per core over shared DRAM (``multicore.py``).  One ``@impl`` function per instruction (``impl_*.py``), a cycle model with
byte-range hazards (``timing.py``) and per-layer counters (``counters.py``).
"""
from .machine import IMPLS, MachineState
from .multicore import Multicore, run_cores
from .run import Event, Machine, RunResult

__all__ = ["IMPLS", "Event", "Machine", "MachineState", "Multicore", "RunResult", "run_cores"]
