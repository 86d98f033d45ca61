"""Writing output files: the one place that decides how an output path is written.

A regular file (or a new one) is written atomically: a temporary file in the target folder, then a
rename, so no reader ever sees a half-written artifact or dump and a failed write (full disk)
leaves the old file intact.  A symlink keeps being a link: its target is replaced atomically.  A
path that is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO) is written through, as
``open(path, "wb")`` would, instead of being replaced by a regular file.  ``-`` is standard output.
"""
from __future__ import annotations

import os
import secrets
import stat
import sys
from pathlib import Path

STDOUT = "-"


def write_atomic(path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` by the rules above, with the mode ``open(path, "w")`` would leave:
    an existing file keeps its permission bits, a new one gets 0666 minus the umask."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"write_atomic writes str or bytes, not {type(data).__name__}")
    if str(path) == STDOUT:
        _write_stdout(payload)
        return
    path = Path(path)
    if _is_special(path):  # appending: /dev/stdout may be a file the shell opened with >>
        with open(path, "ab") as f:
            f.write(payload)
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
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


#: Names of an open file descriptor: ``/dev/stdout`` is a link to whatever the shell opened as
#: standard output, possibly a regular file opened with ``>>``, which must not be replaced.
_DESCRIPTOR_PATHS = ("/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/")


def _is_special(path: Path) -> bool:
    """A path that names a stream rather than a file: an existing device, FIFO or socket, or an open
    file descriptor (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``)."""
    if str(path).startswith(_DESCRIPTOR_PATHS):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _write_stdout(payload: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (some embedders): bytes that are text still go through
        sys.stdout.write(bytes(payload).decode("utf-8", "surrogateescape"))
    else:
        buffer.write(payload)
        buffer.flush()


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
