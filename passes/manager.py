"""Pass pipelines: parse ``name{opt=value},name`` specs, run passes, verify, dump and time them."""
from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field, fields
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
    known = {f.name: f for f in fields(cls)}
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


def parse_pipeline(spec: str | list[str] | tuple[str, ...]) -> list[Pass]:
    """``"dce,tile{size=4}"`` (or a list of such items) -> pass instances."""
    text = spec if isinstance(spec, str) else ",".join(spec)
    passes: list[Pass] = []
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


@dataclass
class PassManager:
    passes: list[Pass]
    verify_each: bool = True
    dump_after: set[str] | str = field(default_factory=set)  # pass names, or "all"
    dump_dir: Path | None = None
    timings: list[tuple[str, float]] = field(default_factory=list)
    _dumped: int = 0

    def wants_dump(self, name: str) -> bool:
        return self.dump_after == "all" or name in self.dump_after

    def dump(self, module: Module, stage: str) -> Path:
        from tcc.ir.fileio import write_atomic

        folder = Path(self.dump_dir) if self.dump_dir else Path(".")
        path = folder / f"{self._dumped:02d}-{stage}.tir"
        write_atomic(path, print_module(module))
        self._dumped += 1
        return path

    def run(self, module: Module) -> Module:
        for p in self.passes:
            start = time.perf_counter()
            p.apply(module)
            self.timings.append((p.spec(), time.perf_counter() - start))
            if self.verify_each:
                try:
                    verify(module)
                except VerifyError as exc:
                    path = Path(tempfile.mkdtemp(prefix="tcc-ice-")) / f"after-{p.name}.tir"
                    path.write_text(print_module(module))
                    raise InternalError(f"internal compiler error: the IR is invalid after pass "
                                        f"{p.spec()!r}: {exc}\n(the IR after that pass is in {path}; "
                                        f"please report it)") from None
            if self.wants_dump(p.name):
                self.dump(module, p.name)
        return module

    def timing_report(self) -> str:
        total = sum(t for _, t in self.timings) or 1e-12
        # A pass with many options (quantize{calib=...,...}) keeps its name and the options' start.
        names = [spec if len(spec) <= 48 else spec[:44] + "...}" for spec, _ in self.timings]
        width = max([len(name) for name in names] + [20])
        lines = [f"{'pass':<{width}} {'wall (ms)':>10} {'share':>7}"]
        for name, (_, t) in zip(names, self.timings):
            lines.append(f"{name:<{width}} {t * 1e3:>10.2f} {100 * t / total:>6.1f}%")
        lines.append(f"{'total':<{width}} {total * 1e3:>10.2f} {100.0:>6.1f}%")
        return "\n".join(lines)
