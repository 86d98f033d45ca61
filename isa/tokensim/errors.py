"""The token simulator's error type."""
from tcc.ir.errors import TccError


class TokenSimError(TccError):
    """The simulated design cannot run this input (accumulator overflow, malformed artifact)."""
