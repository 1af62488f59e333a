"""Where a case store keeps what, and how a file gets there safely.

A store is a folder::

    CASE_DIR/
      kmsforensics-store.json        what the store is: committed batches and their files
                                     (size and SHA-256), schemas, ingests, loader versions
      kmsforensics-store.lock        the writers' lock (who holds it, as JSON)
      activity/day=2026-03-02/batch-000001.parquet
      kms/day=2026-03-02/batch-000001.parquet
      actiontrail/day=2026-03-02/batch-000001.parquet   (nested objects as JSON text)
      keys/kms/day=2026-03-02/batch-000001.npy          (hashes of the de-duplication keys)
      manifest/batch-000001.parquet  one row per evidence file, with its SHA-256
      issues/batch-000001.parquet    every record or field not taken as is

Only the files that ``kmsforensics-store.json`` lists for a committed batch belong to
the store; anything else under those folders is the leftover of a batch a crash cut
short (removed by the next writer, never read).

Examples
--------
>>> from kmsforensics.store.layout import batch_name, day_folder
>>> day_folder("kms", "2026-03-02") + "/" + batch_name(7)
'kms/day=2026-03-02/batch-000007.parquet'
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..errors import StoreError, StoreIntegrityError

STORE_FILE = "kmsforensics-store.json"
LOCK_FILE = "kmsforensics-store.lock"
STORE_FORMAT = "kmsforensics-case-store"
#: 2: every committed file listed with its size and SHA-256; batch numbers reserved.
STORE_VERSION = 2
#: The frames kept per day, and the column that places a row in its day.
FRAMES: dict[str, str] = {"activity": "time", "kms": "time", "actiontrail": "eventTime"}
#: The de-duplication key of each source (as :func:`kmsforensics.load` uses it).
DEDUPE_KEYS: dict[str, tuple[str, str, str]] = {
    "kms": ("request_id", "time", "api_name"),
    "actiontrail": ("eventId", "eventTime", "eventName"),
}
#: Folders of a store that hold batch files (a folder with these and no store file is a
#: damaged store).
DATA_FOLDERS = ("activity", "kms", "actiontrail", "keys", "manifest", "issues", "scratch")
NO_DAY = "none"


def is_store(path: str | os.PathLike[str]) -> bool:
    """Tell whether ``path`` is a case store folder (it holds ``kmsforensics-store.json``).

    Examples
    --------
    >>> is_store(".")
    False
    """
    return (Path(path) / STORE_FILE).is_file()


def looks_like_store(path: str | os.PathLike[str]) -> bool:
    """Tell whether ``path`` is a folder laid out as a store but without its store file.

    Such a folder is a damaged store (its ``kmsforensics-store.json`` was lost): it must
    not be read as evidence.
    """
    root = Path(path)
    if not root.is_dir() or is_store(root):
        return False
    if (root / LOCK_FILE).exists() or (root / f"{STORE_FILE}.tmp").exists():
        return any((root / name).is_dir() for name in DATA_FOLDERS)
    if (root / "manifest").is_dir() and any((root / "manifest").glob("batch-*.parquet")):
        return True
    return any(any((root / name).glob("day=*/batch-*")) for name in FRAMES)


def day_folder(frame: str, day: str) -> str:
    """Return the folder (relative to the store) of one frame's day."""
    return f"{frame}/day={day}"


def batch_name(number: int, suffix: str = ".parquet", part: int | None = None) -> str:
    """Return the file name of a batch's file (``part``: of a file read in chunks)."""
    return f"batch-{number:06d}{'' if part is None else f'-{part:04d}'}{suffix}"


def days_of(times: pd.Series) -> np.ndarray:
    """UTC day of each time, as ``YYYY-MM-DD`` text (``none`` for a missing time)."""
    values = times.to_numpy("datetime64[ns]")
    days = np.datetime_as_string(values.astype("datetime64[D]"), unit="D").astype(object)
    days[np.isnat(values)] = NO_DAY
    return days


# -- the store file ----------------------------------------------------------------------------


def new_info() -> dict[str, Any]:
    """Return the store file of an empty store."""
    return {
        "format": STORE_FORMAT,
        "store_version": STORE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "loader_versions": [__version__],
        "next_batch": 1,
        "batches": [],
        "schemas": {},
        "ingests": [],
    }


def read_info(root: Path) -> dict[str, Any]:
    """Read ``kmsforensics-store.json``, checking that it is a store this version reads."""
    path = root / STORE_FILE
    try:
        info: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreIntegrityError(str(path), f"the store file cannot be read ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != STORE_FORMAT:
        raise StoreError(f"{root}: {STORE_FILE} is not the file of a kmsforensics case store")
    version = info.get("store_version", 0)
    if version > STORE_VERSION:
        raise StoreError(
            f"{root} is a case store of version {version}; this kmsforensics "
            f"({__version__}) reads up to version {STORE_VERSION}: upgrade kmsforensics"
        )
    if version < STORE_VERSION:
        raise StoreError(
            f"{root} is a case store of version {version}, which does not list its files "
            "with their SHA-256, so it cannot be checked: ingest the evidence again into a "
            "new folder (kmsforensics ingest EVIDENCE... --out NEW_DIR)"
        )
    return info


# -- safe writes -------------------------------------------------------------------------------


def write_durably(path: Path, data: bytes | memoryview) -> None:
    """Write a file under a temporary name, flush it to disk, then rename it into place."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temporary, path)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the renames into it) to disk."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def commit_info(root: Path, info: dict[str, Any]) -> None:
    """Replace the store file atomically (the commit point of every change)."""
    data = json.dumps(info, indent=1, default=str).encode("utf-8")
    write_durably(root / STORE_FILE, data)
    sync_folder(root)


def sha256_file(path: Path) -> str:
    """Return the SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
