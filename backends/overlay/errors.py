"""Errors of the overlay backend."""
from tcc.ir.errors import TccError


class BackendError(TccError):
    """The quantized module cannot be mapped onto the overlay (names the op and its location)."""


def unsupported(op, why: str) -> BackendError:
    where = f" (loc {op.loc!r})" if op.loc else ""
    return BackendError(f"the overlay cannot run op {op.kind} %{op.results[0].name}{where}: {why}")
