"""The sparse backend's error type (a user error: the CLI prints it and exits 2)."""
from tcc.ir.errors import TccError


class SparseError(TccError):
    """A model or budget the sparse dataflow target cannot take: an op no module implements,
    a layer shape the modules do not support, or a budget no configuration fits."""
