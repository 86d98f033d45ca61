"""Load compiled artifacts and run them on the simulator (or the reference interpreter)."""
from .session import NodeArg, Session

#: First bytes of each artifact kind: the overlay's (.tcc, backends/overlay/artifact.py) and the
#: sparse dataflow target's (backends/sparse) and the overlay's with host partitions
#: (backends/overlay/hetero_artifact.py).
MAGICS = {b"TCCARTF\0": "overlay", b"TCCSPRS\0": "sparse", b"TCCHETR\0": "heterogeneous"}


def artifact_kind(path) -> str | None:
    """'overlay', 'sparse', or None when PATH is not a tcc artifact (or cannot be read)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    return MAGICS.get(head)


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
