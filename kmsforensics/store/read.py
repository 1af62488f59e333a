"""Reading a case store: only the files its store file lists, each checked.

Opening a store checks every committed file's size (one ``stat`` each, so a deleted or
truncated file is found at once); ``verify=True`` checks every SHA-256 as well. A file
that cannot be read as Parquet later (same size, changed bytes) is hashed then and
named in :class:`~kmsforensics.StoreIntegrityError`, never a raw Arrow error.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from ..errors import StoreError, StoreIntegrityError
from ..normalize.values import to_frame
from ..schema import ACTIVITY_COLUMNS, ISSUES_COLUMNS, MANIFEST_COLUMNS
from .columns import conform, read_table
from .layout import FRAMES, NO_DAY, STORE_FILE, is_store, looks_like_store, read_info, sha256_file


def committed_files(info: dict[str, Any]) -> dict[str, list[Any]]:
    """Return every committed file of a store: relative path -> [size, SHA-256]."""
    return {path: facts for batch in info["batches"] for path, facts in batch["files"].items()}


def schema_of(info: dict[str, Any], name: str) -> pa.Schema | None:
    """Return a frame's schema (the union of every batch's columns) from the store file."""
    text = info.get("schemas", {}).get(name)
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text))) if text else None


def check_file(root: Path, relative: str, facts: Sequence[Any], full: bool) -> None:
    """Raise StoreIntegrityError when a committed file is missing or not what was written."""
    path = root / relative
    size, digest = facts
    try:
        found = path.stat().st_size
    except OSError:
        raise StoreIntegrityError(
            str(path), f"this file of the case store is missing ({size:,} bytes were committed)"
        ) from None
    if found != size:
        raise StoreIntegrityError(
            str(path), f"this file of the case store changed: {found:,} bytes, {size:,} committed"
        )
    if full and sha256_file(path) != digest:
        raise StoreIntegrityError(
            str(path), "this file of the case store changed: its SHA-256 is not the one committed"
        )


def read_parquet(
    root: Path,
    paths: Sequence[str],
    schema: pa.Schema | None,
    columns: Sequence[str] | None = None,
    condition: ds.Expression | None = None,
    hashes: dict[str, list[Any]] | None = None,
) -> pd.DataFrame:
    """Read committed Parquet files as one frame; an unreadable file is named, not raised raw."""
    if not paths:
        if schema is None:
            return pd.DataFrame()
        empty = schema.empty_table()
        return to_frame(empty.select(list(columns)) if columns is not None else empty)
    if schema is None:  # the manifest and issues: files without references
        try:
            dataset = ds.dataset([str(root / p) for p in paths], format="parquet")
            table = dataset.to_table(columns=columns, filter=condition, use_threads=True)
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(root, paths, hashes, exc) from None
        return to_frame(table)
    names = list(schema.names) if columns is None else list(columns)
    wanted = pa.schema([schema.field(c) for c in names])
    tables = []
    for relative in paths:
        try:
            table = read_table(root, relative, names)
            if condition is not None:
                table = table.filter(condition)
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(root, [relative], hashes, exc) from None
        tables.append(conform(table, wanted))
    return to_frame(pa.concat_tables(tables))


def _unreadable(
    root: Path, paths: Sequence[str], hashes: dict[str, list[Any]] | None, exc: Exception
) -> StoreIntegrityError:
    """Name the file behind a read error: the first whose SHA-256 is not the committed one."""
    for relative in paths:
        if hashes is not None and relative in hashes:
            try:
                check_file(root, relative, hashes[relative], full=True)
            except StoreIntegrityError as found:
                return found
    where = str(root / paths[0]) if len(paths) == 1 else f"{root} ({len(paths)} files)"
    return StoreIntegrityError(
        where,
        f"the case store cannot be read ({type(exc).__name__}: {exc})",
        "Check the store with kf.open(CASE_DIR, verify=True), which names the changed file",
    )


class Store:
    """A case store on disk: its days, and each frame read by day, column and time.

    Parameters
    ----------
    root : str or path-like
        The case store folder.
    verify : bool, default False
        Check the SHA-256 of every file (reads the whole store); sizes are always checked.

    Raises
    ------
    StoreIntegrityError
        A committed file is missing or changed, or the folder is a store without its
        store file.
    """

    def __init__(self, root: str | os.PathLike[str], verify: bool = False) -> None:
        self.root = Path(root)
        if not is_store(self.root):
            if looks_like_store(self.root):
                raise StoreIntegrityError(
                    str(self.root),
                    f"this folder is laid out as a case store but has no {STORE_FILE}",
                    "It is not evidence and cannot be opened as a store; restore "
                    f"{STORE_FILE} from a copy, or ingest the evidence again into a new folder",
                )
            raise StoreError(
                f"{self.root} is not a kmsforensics case store (no {STORE_FILE}); "
                "make one with kmsforensics ingest EVIDENCE... --out CASE_DIR"
            )
        self.info = read_info(self.root)
        self.files = committed_files(self.info)
        for relative, facts in self.files.items():
            check_file(self.root, relative, facts, verify)
        self.batches: int = len(self.info["batches"])
        self.schemas = {name: schema_of(self.info, name) for name in FRAMES}
        self.by_day: dict[str, dict[str, list[str]]] = {name: {} for name in FRAMES}
        for relative in self.files:
            frame, _, rest = relative.partition("/")
            if frame in FRAMES and rest.startswith("day="):
                day = rest.split("/", 1)[0][4:]
                self.by_day[frame].setdefault(day, []).append(relative)

    def days(self, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> list[str]:
        """Days (``YYYY-MM-DD``) that hold rows of any frame, within ``[start, end)``."""
        found = {day for days in self.by_day.values() for day in days}
        if start is None and end is None:
            return sorted(found)
        lo = start.strftime("%Y-%m-%d") if start is not None else None
        hi = (end - pd.Timedelta(1)).strftime("%Y-%m-%d") if end is not None else None
        return sorted(
            d for d in found if d != NO_DAY and (lo is None or d >= lo) and (hi is None or d <= hi)
        )

    def columns(self, name: str) -> list[str]:
        """Return the columns of a frame (the union over every batch)."""
        schema = self.schemas[name]
        return list(schema.names) if schema is not None else []

    def day_files(self, name: str, days: Sequence[str]) -> list[str]:
        """Return the committed files of one frame's days (relative to the store)."""
        return [p for day in days for p in self.by_day[name].get(day, [])]

    def read_day(
        self,
        name: str,
        day: str,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """One frame's rows of one day (in the order :func:`kmsforensics.load` gives)."""
        return self.read(name, [day], start, end, columns)

    def read(
        self,
        name: str,
        days: Sequence[str],
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """One frame's rows of the given days, with the time filter pushed to Parquet."""
        return read_frame(
            self.root,
            name,
            self.day_files(name, days),
            self.schemas[name],
            start,
            end,
            columns,
            self.files,
        )

    def manifest(self) -> pd.DataFrame:
        """Return the manifest of every committed batch (one row per evidence file)."""
        frame = self._batch_rows("manifest")
        return frame if len(frame) else pd.DataFrame(columns=list(MANIFEST_COLUMNS))

    def issues(self) -> pd.DataFrame:
        """Return the issues of every committed batch."""
        frame = self._batch_rows("issues")
        if not len(frame):
            return pd.DataFrame(columns=list(ISSUES_COLUMNS))
        return frame.astype({"source_file": object})

    def _batch_rows(self, folder: str) -> pd.DataFrame:
        paths = [p for p in self.files if p.startswith(f"{folder}/")]
        parts = [read_parquet(self.root, [p], None, hashes=self.files) for p in paths]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def read_frame(
    root: Path,
    name: str,
    paths: Sequence[str],
    schema: pa.Schema | None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    columns: Sequence[str] | None = None,
    hashes: dict[str, list[Any]] | None = None,
) -> pd.DataFrame:
    """Rows of one frame from these committed files, within ``[start, end)``.

    A function of its arguments only, so a dask worker reads a day as the case saw the
    store when it was opened.
    """
    if schema is None:  # a store with no batch yet
        return _nothing_yet(name)
    wanted = list(schema.names) if columns is None else _with_needed(name, columns, schema)
    when = ds.field(FRAMES[name])
    condition = None
    if start is not None:
        condition = when >= pa.scalar(start.to_pydatetime(), pa.timestamp("ns", "UTC"))
    if end is not None:
        upper = when < pa.scalar(end.to_pydatetime(), pa.timestamp("ns", "UTC"))
        condition = upper if condition is None else condition & upper
    frame = read_parquet(root, paths, schema, wanted, condition, hashes)
    if name == "activity" and len(frame) and "source" in frame:
        frame = _time_order(frame)
    return frame


def _nothing_yet(name: str) -> pd.DataFrame:
    """Return the frame of a store that has committed no batch yet (no rows)."""
    columns = ACTIVITY_COLUMNS if name == "activity" else (FRAMES[name], "source_file")
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame[FRAMES[name]] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def _with_needed(name: str, columns: Sequence[str], schema: pa.Schema) -> list[str]:
    """Return the columns asked for that the frame has, with its time, source and provenance."""
    needed = [FRAMES[name], "source", "source_file", "source_record", "source_item"]
    if name == "actiontrail":
        needed += ["eventId"]
    elif name == "kms":
        needed += ["request_id"]
    else:
        needed += ["request_id", "event_id"]
    wanted = [*needed, *columns]
    return [c for c in schema.names if c in wanted]


def _time_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort activity rows by time, KMS rows first at equal times, otherwise as stored."""
    stamps = frame["time"].to_numpy("datetime64[ns]").view("int64")
    later = (frame["source"].astype(object) == "actiontrail").to_numpy()
    order = np.lexsort((later, stamps))
    if (order == np.arange(len(order))).all():
        return frame
    return frame.take(order).reset_index(drop=True)
