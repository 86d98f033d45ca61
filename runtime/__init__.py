"""Load compiled artifacts and run them on the simulator (or the reference interpreter)."""
from .session import NodeArg, Session

__all__ = ["NodeArg", "Session"]
