"""The CLI's pass-pipeline hooks: the mixed-precision plan after its pass, and on a terminal a status
line per pass and progress bars.  Loaded by the commands that run passes, not with the CLI."""
from __future__ import annotations

import sys

import click

from tcc.passes import PassInstrumentation


class PlanPrinter(PassInstrumentation):
    """The mixed-precision choices (table and Pareto front) go to stderr after that pass."""

    def after_pass(self, p, module) -> None:
        from tcc.passes.quantize import MixedPrecision

        if isinstance(p, MixedPrecision) and p.plan is not None:
            click.echo(p.plan.format_report(), err=True)


class TerminalProgress(PassInstrumentation):
    """On a terminal: a status line per pass and a progress bar for long work (calibration samples,
    sensitivity runs, overlay compilation), so a long stage does not look like a hang."""

    def __init__(self):
        self.done_passes, self.total_passes = 0, 0
        self.bar, self.label = None, None

    def before_pipeline(self, module, passes) -> None:
        self.done_passes, self.total_passes = 0, len(passes)

    def before_pass(self, p, module) -> None:
        self.done_passes += 1
        click.echo(f"pass {self.done_passes}/{self.total_passes}: {p.name}", err=True)

    def after_pass(self, p, module) -> None:
        self._finish()

    def progress(self, label: str, done: int, total: int) -> None:
        if self.bar is None or label != self.label:
            self._finish()
            if total < 2:
                return
            self.bar, self.label = click.progressbar(length=total, label=label, file=sys.stderr), label
        self.bar.update(done - self.bar.pos)
        if done >= total:
            self._finish()

    def _finish(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()
            self.bar = None
