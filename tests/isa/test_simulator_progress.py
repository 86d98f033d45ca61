"""Machine.run's progress callback: called every PROGRESS_EVERY instructions and at halt, with a
growing pc, and the run is the same with or without it."""
import numpy as np
import pytest

import tcc.isa.simulator.run as simulator_run
from tcc.isa.assembler import assemble
from tcc.isa.encoding import encode_program
from tcc.isa.errors import SimulatorTrap
from tcc.isa.simulator import Machine
from tcc.isa.target import load_target

TARGET = load_target()
PROGRAM = encode_program(assemble("setr sys.layer, 1\n" + "nop\n" * 40 + "setr sys.layer, 2\nnop\nhalt\n"))


def simulate(**options):
    machine = Machine(TARGET, np.arange(256, dtype=np.uint8))
    return machine, machine.run(PROGRAM, **options)


def test_progress_is_called_every_n_instructions_and_at_halt(monkeypatch):
    monkeypatch.setattr(simulator_run, "PROGRESS_EVERY", 7)
    calls = []
    machine, result = simulate(progress=lambda pc, total: calls.append((pc, total)))
    n = len(PROGRAM)
    assert calls == [(pc, n) for pc in range(7, n, 7)] + [(n, n)]
    plain_machine, plain = simulate()
    assert result == plain and np.array_equal(machine.dram, plain_machine.dram)


def test_progress_and_max_instructions_together(monkeypatch):
    monkeypatch.setattr(simulator_run, "PROGRESS_EVERY", 7)
    for limit, reported in [(20, [7, 14]), (14, [7]), (3, [])]:
        calls = []
        with pytest.raises(SimulatorTrap, match=f"executed max_instructions = {limit} "):
            simulate(max_instructions=limit, progress=lambda pc, total, calls=calls: calls.append(pc))
        assert calls == reported
