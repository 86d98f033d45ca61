"""Pass pipelines: parse ``name{opt=value},name`` specs, run passes, verify, dump and time them."""
from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path

from tcc.ir import Module, print_module, verify
from tcc.ir.errors import InternalError, PipelineError, VerifyError

from .base import Pass
from .registry import PASSES

_ITEM = re.compile(r"\s*([A-Za-z0-9_-]+)\s*(?:\{([^}]*)\})?\s*(?:,|$)")


def _coerce(text: str, default):
    if isinstance(default, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{text!r} is not a boolean")
        return text.lower() in ("true", "1")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return text


def make_pass(name: str, options: dict[str, str] | None = None) -> Pass:
    if name not in PASSES:
        raise PipelineError(f"unknown pass {name!r}; known passes: {', '.join(sorted(PASSES))}")
    cls = PASSES[name]
    known = {f.name: f for f in fields(cls) if f.init}
    kwargs = {}
    for key, text in (options or {}).items():
        if key not in known:
            raise PipelineError(f"pass {name!r} has no option {key!r}"
                                + (f"; its options: {', '.join(known)}" if known else ""))
        default = cls().__dict__[key]
        try:
            kwargs[key] = _coerce(text, default)
        except ValueError as exc:
            raise PipelineError(f"pass {name!r} option {key!r}: {exc}") from None
    return cls(**kwargs)


def parse_pipeline(spec) -> list[Pass]:
    """``"dce,tile{size=4}"`` -> pass instances. A list or tuple may mix such text items (registered
    names, pipelines typed by people) with configured ``Pass`` objects, which are kept as they are:
    options from program values go in as objects, never through text."""
    if not isinstance(spec, str):
        passes: list[Pass] = []
        for item in spec:
            passes.extend([item] if isinstance(item, Pass) else parse_pipeline(item))
        return passes
    text = spec
    passes = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if not m or m.end() == pos:
            raise PipelineError(f"cannot parse pass pipeline at {text[pos:]!r} (expected name or name{{opt=value}})")
        options = {}
        if m.group(2):
            for item in m.group(2).split(","):
                if "=" not in item:
                    raise PipelineError(f"pass option {item!r} is not key=value")
                key, value = item.split("=", 1)
                options[key.strip()] = value.strip()
        passes.append(make_pass(m.group(1), options))
        pos = m.end()
    return passes


class PassInstrumentation:
    """Hooks the pass manager calls around every pass (MLIR's ``PassInstrumentation``): timing, IR
    dumps, verification and a front end's progress display are instrumentations, so no pass needs
    to know about any of them. Subclasses override the hooks they need."""

    def before_pipeline(self, module: Module, passes: list[Pass]) -> None:
        """Called once before the first pass."""

    def before_pass(self, p: Pass, module: Module) -> None:
        """Called before ``p`` runs."""

    def after_pass(self, p: Pass, module: Module) -> None:
        """Called after ``p`` ran (hooks run in registration order)."""

    def progress(self, label: str, done: int, total: int) -> None:
        """A long pass (or stage) has done ``done`` of ``total`` units of the work ``label`` names."""

    def phase(self, name: str, seconds: float) -> None:
        """A stage after the pipeline (a backend's placement, layouts, code emission...) took ``seconds``."""

    def part(self, p: Pass, name: str, seconds: float) -> None:
        """A part of the running pass ``p`` (``Pass.timed``) took ``seconds``."""


#: Timing records whose name starts with this are parts of the pass recorded before them: listed
#: under it, not added to the total.
PART = "  - "


class Timing(PassInstrumentation):
    """Wall time of each pass, as (pass spec, seconds) appended to ``records``, each followed by
    its timed parts (``PART`` + name, seconds; repeated parts summed)."""

    def __init__(self, records: list[tuple[str, float]]):
        self.records = records
        self._start = 0.0
        self._parts: dict[str, float] = {}

    def before_pass(self, p: Pass, module: Module) -> None:
        self._start = time.perf_counter()
        self._parts = {}

    def part(self, p: Pass, name: str, seconds: float) -> None:
        self._parts[name] = self._parts.get(name, 0.0) + seconds

    def after_pass(self, p: Pass, module: Module) -> None:
        self.records.append((p.spec(), time.perf_counter() - self._start))
        self.records.extend((PART + name, seconds) for name, seconds in self._parts.items())

    def phase(self, name: str, seconds: float) -> None:
        self.records.append((name, seconds))


class VerifyEach(PassInstrumentation):
    """Verify the IR after each pass; invalid IR is tcc's bug: say which pass, keep the IR."""

    def after_pass(self, p: Pass, module: Module) -> None:
        try:
            verify(module)
        except VerifyError as exc:
            path = Path(tempfile.mkdtemp(prefix="tcc-ice-")) / f"after-{p.name}.tir"
            path.write_text(print_module(module))
            raise InternalError(f"internal compiler error: the IR is invalid after pass "
                                f"{p.spec()!r}: {exc}\n(the IR after that pass is in {path}; "
                                f"please report it)") from None


#: The names DumpIR gives its files (``03-fold-constants.tir``): what ``tcc --dump-dir`` may overwrite.
DUMP_NAME = re.compile(r"\d{2,}-.+\.tir")


class DumpIR(PassInstrumentation):
    """Write the textual IR after the passes named in ``after`` ("all": every pass; "import": the
    IR before the first pass) to ``folder``, numbered in order (names matching ``DUMP_NAME``)."""

    def __init__(self, after: set[str] | str, folder: Path | None = None):
        self.after, self.folder, self.count = after, Path(folder) if folder else Path("."), 0

    def wants(self, name: str) -> bool:
        return self.after == "all" or name in self.after

    def dump(self, module: Module, stage: str) -> Path:
        from tcc.ir.fileio import write_atomic

        path = self.folder / f"{self.count:02d}-{stage}.tir"
        write_atomic(path, print_module(module))
        self.count += 1
        return path

    def before_pipeline(self, module: Module, passes: list[Pass]) -> None:
        if self.wants("import"):
            self.dump(module, "import")

    def after_pass(self, p: Pass, module: Module) -> None:
        if self.wants(p.name):
            self.dump(module, p.name)


@dataclass
class PassManager:
    """Runs ``passes`` in order; around each, the instrumentations: timing (``timings``), verification
    (``verify_each``), dumps (``dump_after``, ``dump_dir``), then ``instrumentations`` in order."""

    passes: list[Pass]
    verify_each: bool = True
    dump_after: set[str] | str = field(default_factory=set)  # pass names, "import", or "all"
    dump_dir: Path | None = None
    instrumentations: list[PassInstrumentation] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def hooks(self) -> list[PassInstrumentation]:
        hooks: list[PassInstrumentation] = [Timing(self.timings)]
        if self.verify_each:
            hooks.append(VerifyEach())
        if self.dump_after:
            hooks.append(DumpIR(self.dump_after, self.dump_dir))
        return hooks + list(self.instrumentations)

    def run(self, module: Module) -> Module:
        hooks = self.hooks()

        def progress(label: str, done: int, total: int) -> None:
            for hook in hooks:
                hook.progress(label, done, total)

        def part(p: Pass, name: str, seconds: float) -> None:
            for hook in hooks:
                hook.part(p, name, seconds)

        for hook in hooks:
            hook.before_pipeline(module, self.passes)
        for p in self.passes:
            for hook in hooks:
                hook.before_pass(p, module)
            p.progress_sink = progress
            p.part_sink = partial(part, p)
            try:
                p.apply(module)
            finally:
                p.progress_sink = p.part_sink = None
            for hook in hooks:
                hook.after_pass(p, module)
        return module

    def timing_report(self) -> str:
        return format_timings(self.timings)


def format_timings(records: list[tuple[str, float]]) -> str:
    """A table of (pass spec or backend phase, seconds) records with each one's share of the total."""
    total = sum(t for name, t in records if not name.startswith(PART)) or 1e-12
    # A pass with many options (quantize{calib=...,...}) keeps its name and the options' start.
    names = [spec if len(spec) <= 48 else spec[:44] + "...}" for spec, _ in records]
    width = max([len(name) for name in names] + [20])
    lines = [f"{'pass / backend phase':<{width}} {'wall (ms)':>10} {'share':>7}"]
    for name, (_, t) in zip(names, records):
        lines.append(f"{name:<{width}} {t * 1e3:>10.2f} {100 * t / total:>6.1f}%")
    lines.append(f"{'total':<{width}} {total * 1e3:>10.2f} {100.0:>6.1f}%")
    return "\n".join(lines)
