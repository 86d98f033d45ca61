"""Atomic file writes: a temporary file in the target folder, then a rename, so no reader ever
sees a half-written artifact or dump."""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


def write_atomic(path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically, with the mode ``open(path, "w")`` would leave: an
    existing file keeps its permission bits, a new one gets 0666 minus the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            except FileNotFoundError:
                pass
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _create_temporary(path: Path) -> tuple[int, Path]:
    # Not tempfile.mkstemp: it creates files 0600. os.open with 0666 lets the kernel apply the
    # umask, as for any new file, without reading the process-wide umask (os.umask is not thread-safe).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
