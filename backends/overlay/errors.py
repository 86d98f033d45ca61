"""Errors of the overlay backend."""
from tcc.ir.errors import TccError


class BackendError(TccError):
    """The quantized module cannot be mapped onto the overlay (names the op and its location)."""

    #: The result name of the op the overlay cannot run, and why (set by ``unsupported``): the
    #: compile then runs that op on the host instead (hetero.py).
    op_name: str | None = None
    reason: str | None = None


def unsupported(op, why: str) -> BackendError:
    where = f" (loc {op.loc!r})" if op.loc else ""
    error = BackendError(f"the overlay cannot run op {op.kind} %{op.results[0].name}{where}: {why}")
    error.op_name, error.reason = op.results[0].name, why
    return error
