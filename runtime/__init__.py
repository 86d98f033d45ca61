"""Load compiled artifacts and run them on the simulator (or the reference interpreter)."""
from tcc.backends.artifact import artifact_kind

from .session import NodeArg, Session


def open_session(path):
    """A session for either artifact kind, chosen by the file's magic bytes."""
    if artifact_kind(path) == "sparse":
        from .sparse_session import SparseSession

        return SparseSession(path)
    if artifact_kind(path) == "heterogeneous":
        from .hetero_session import HeteroSession

        return HeteroSession(path)
    return Session(path)


__all__ = ["NodeArg", "Session", "artifact_kind", "open_session"]
