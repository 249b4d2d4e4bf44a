"""One training process per run directory. Two `seqjax train` commands given the same
--run-dir (the same command typed twice, a job launched twice) both passed the check for
checkpoints while neither had saved one, then trained into one directory: one of them
stopped on the other's half-written checkpoint ("corrupted or truncated") and the other
left a history and checkpoints of two runs.

The lock is an exclusive `flock` on RUN/.lock, which the kernel releases when the process
ends however it ends, so a run killed with SIGKILL leaves nothing to clear before its
`--resume`. A finished run removes the file. With several processes, process 0 holds it
for all. Where the filesystem cannot lock (some network mounts) or Python has no `fcntl`
(Windows), the run goes on without the lock, as before.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


@contextlib.contextmanager
def hold_run_dir(run_dir: str) -> Iterator[None]:
    """Holds RUN/.lock (`run_dir` must exist) for the `with` block, or raises naming the
    process that holds it."""
    path = os.path.join(run_dir, LOCK_FILE)
    fd = _lock(path) if fcntl is not None else None
    try:
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # before the release: a waiting run then locks a new file
            os.close(fd)


def _lock(path: str) -> int | None:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _read(fd)
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ValueError(
                    f"run directory {os.path.dirname(path)!r} is in use by another training "
                    f"process ({holder or 'unknown'}); wait for it to end, or choose a new "
                    "--run-dir"
                ) from None
            return None  # this filesystem cannot lock
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:  # its holder removed it between our open and our lock
            same = False
        if same:
            with contextlib.suppress(OSError):  # who holds it, for the refusal; a full disk
                os.ftruncate(fd, 0)  # leaves it empty, and the lock holds all the same
                os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
            return fd
        os.close(fd)  # a file its last holder removed: lock the one now at `path`


def _read(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    return ""
