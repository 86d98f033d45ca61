"""Front-end and system instructions: nop, setr, sync, halt, mode.

``mode`` costs ``mode_switch`` compute cycles even when the array is already in that mode.
"""
from __future__ import annotations

from ..table import REGISTER_INDEX
from .machine import Barrier, Effect, MachineState, impl

ALL_UNITS = 0b111


@impl("nop")
def nop(m: MachineState):
    return None


@impl("setr")
def setr(m: MachineState, reg: str, value: int):
    m.regs[REGISTER_INDEX[reg]] = value
    return None


@impl("sync")
def sync(m: MachineState, wait: int):
    return Barrier(wait)


@impl("halt")
def halt(m: MachineState):
    m.halted = True
    return Barrier(ALL_UNITS)


@impl("mode")
def mode(m: MachineState, to: str):
    m.mode = to
    return Effect(m.target.mode_switch, ())


@impl("barrier")
def barrier(m: MachineState):
    m.halted = m.stop_at_barrier  # a multi-core run resumes every core once all reach it (multicore.py)
    return Barrier(ALL_UNITS)
