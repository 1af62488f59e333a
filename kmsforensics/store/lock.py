"""One writer at a time: an exclusive lock on the store's lock file.

The lock is an ``flock`` on ``kmsforensics-store.lock``: the operating system releases
it when the holder exits, however it exits (``kill -9`` included), so a crash never
leaves a store locked. The holder writes who it is into the file (pid, host, time,
command), and a writer that cannot get the lock names it in
:class:`~kmsforensics.StoreLockedError`. ``flock`` works on local file systems and on
NFS v4; keep a store that several machines write on storage with working locks.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> with writer_lock(folder, wait=0):
...     holder(folder)["pid"] == os.getpid()
True
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ..errors import StoreLockedError
from .layout import LOCK_FILE


def holder(root: Path) -> dict[str, object]:
    """Return who holds (or last held) the lock of a store, as it wrote itself down."""
    try:
        found = json.loads((root / LOCK_FILE).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


@contextmanager
def writer_lock(root: Path, wait: float | None) -> Iterator[None]:
    """Hold the store's writer lock; wait up to ``wait`` seconds (None: as long as needed).

    Raises
    ------
    StoreLockedError
        When another process still holds it after ``wait`` seconds.
    """
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if wait is not None and waited >= wait:
                    raise StoreLockedError(str(root), holder(root), round(waited, 1)) from None
                time.sleep(0.1)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
