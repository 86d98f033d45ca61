"""What a pass is: a named unit that mutates a module in place and returns nothing."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from tcc.ir import Module


@dataclass
class Pass:
    """Subclasses set ``name`` and implement ``apply``; options are dataclass fields,
    written in pipelines as ``name{field=value,...}``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def apply(self, module: Module) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def spec(self) -> str:
        opts = ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))
        return f"{self.name}{{{opts}}}" if opts else self.name
