"""The case store: evidence parsed once into Parquet, partitioned by source and day.

``kf.ingest(EVIDENCE..., out=CASE_DIR)`` (or ``kmsforensics ingest``) reads the
evidence in bounded batches with :func:`kmsforensics.load` (the same parsing and
normalising code, so the same rows) and appends each batch to the store::

    CASE_DIR/
      kmsforensics-store.json        what the store is: loader versions, ingests, batches
      activity/day=2026-03-02/batch-000001.parquet
      kms/day=2026-03-02/batch-000001.parquet
      actiontrail/day=2026-03-02/batch-000001.parquet   (nested objects as JSON text)
      keys/kms/day=2026-03-02/batch-000001.npy          (hashes of the de-duplication keys)
      manifest/batch-000001.parquet  one row per evidence file, with its SHA-256
      issues/batch-000001.parquet    every record or field not taken as is
      schema/<frame>.arrow           the union of the columns of every batch

Every file of a batch carries the batch number, and the batch counts only once
``kmsforensics-store.json`` says it is committed (written last, atomically): a batch
cut short by a crash is ignored and overwritten by the next ingest.

Re-ingesting evidence whose SHA-256 is already in the manifest does nothing; new files
are appended. An event already in the store (same id, time and name) is counted as a
duplicate of its file, as :func:`kmsforensics.load` does within one load; the keys are
kept per day (duplicates share their time, so their day), so memory follows the busiest
day, not the case.

``kf.load(CASE_DIR)`` opens the store without reading the events: each frame is read
the first time it is asked for, and ``case.between(start, end)`` reads only those days
(and row groups) — the filter is pushed down to Parquet.

Examples
--------
>>> import kmsforensics as kf
>>> report = kf.ingest(kf.datasets.path("vendor-samples"), out="case-store",
...                    progress=False)  # doctest: +SKIP
>>> case = kf.load("case-store")  # doctest: +SKIP
>>> case.between("2026-03-02", "2026-03-03").activity  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ._version import __version__
from .calls import count_calls
from .case import Case, TimeLike, focus_mask, records_behind, to_utc
from .errors import ParseWarning, StoreError
from .evidence import DEFAULT_MAX_BYTES, discover
from .normalize.values import to_frame
from .schema import ISSUES_COLUMNS, MANIFEST_COLUMNS, MANIFEST_COUNTS

STORE_FILE = "kmsforensics-store.json"
STORE_FORMAT = "kmsforensics-case-store"
STORE_VERSION = 1
#: The frames kept per day, and the column that places a row in its day.
FRAMES: dict[str, str] = {"activity": "time", "kms": "time", "actiontrail": "eventTime"}
#: The de-duplication key of each source (as :func:`kmsforensics.load` uses it).
DEDUPE_KEYS: dict[str, tuple[str, str, str]] = {
    "kms": ("request_id", "time", "api_name"),
    "actiontrail": ("eventId", "eventTime", "eventName"),
}
#: Decompressed evidence (estimated) parsed in one batch.
BATCH_BYTES = 256 * 1024 * 1024
_NO_DAY = "none"
_PROVENANCE = ["source_file", "source_record", "source_item"]


@dataclass
class IngestReport:
    """What one ``kf.ingest`` did.

    Attributes
    ----------
    store : str
        The case store folder.
    files_added : int
        Evidence files parsed into the store by this ingest.
    files_already_in_store : int
        Files not read because their SHA-256 is already in the store's manifest; one
        under a name the manifest does not list yet is added to it with status ``copy``.
    events_added : dict
        Rows added per frame (``kms``, ``actiontrail``, ``activity``).
    duplicates : int
        Events dropped because the store (or this ingest) already held them.
    batches : list of int
        The batch numbers written.
    seconds : float
        Wall time of the ingest.
    """

    store: str
    files_added: int = 0
    files_already_in_store: int = 0
    events_added: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    batches: list[int] = field(default_factory=list)
    seconds: float = 0.0


def is_store(path: str | os.PathLike[str]) -> bool:
    """Tell whether ``path`` is a case store folder (it holds ``kmsforensics-store.json``)."""
    return (Path(path) / STORE_FILE).is_file()


# -- writing ------------------------------------------------------------------------------


def ingest(
    *sources: str | os.PathLike[str],
    out: str | os.PathLike[str],
    progress: bool = True,
    batch_bytes: int = BATCH_BYTES,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    column_map: dict[str, str] | None = None,
) -> IngestReport:
    """Parse evidence into a case store (Parquet by source and day), in bounded batches.

    Parameters
    ----------
    *sources : str or path-like
        Files, folders and globs, as for :func:`kmsforensics.load`.
    out : str or path-like
        The case store folder: created if missing, appended to if it exists.
    progress : bool, default True
        Show a progress bar (bytes of evidence).
    batch_bytes : int, default 256 MiB
        Decompressed evidence parsed at a time; memory follows this, not the input.
    strict, max_bytes, column_map
        As for :func:`kmsforensics.load`.

    Returns
    -------
    IngestReport

    Examples
    --------
    >>> import kmsforensics as kf
    >>> kf.ingest("evidence/", out="case-store").files_added  # doctest: +SKIP
    695
    """
    from .loader import load

    started = time.perf_counter()
    store = _StoreWriter(Path(out))
    report = IngestReport(str(out), events_added=dict.fromkeys(FRAMES, 0))
    files = [ef for ef in discover(sources) if ef.on_disk]
    known, listed = store.known_files()
    todo: list[tuple[Path, str, int]] = []
    copies = []
    for ef in files:
        digest = _sha256(ef.path)
        if digest in known:
            report.files_already_in_store += 1
            if ef.display not in listed:  # same content, another name: listed, not read
                copies.append(_copy_row(ef.display, digest, ef.path, known[digest]))
                listed.add(ef.display)
            continue
        known[digest] = ef.display
        listed.add(ef.display)
        todo.append((ef.path, ef.display, _estimate(ef.path)))
    bar = tqdm(
        total=sum(size for _, _, size in todo),
        unit="B",
        unit_scale=True,
        desc="kmsforensics.ingest",
        disable=not progress,
        leave=False,
    )
    caught: list[warnings.WarningMessage] = []
    with bar:
        for batch in _batches(todo, batch_bytes):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always", ParseWarning)
                case = load(
                    *[path for path, _, _ in batch],
                    strict=strict,
                    progress=False,
                    max_bytes=max_bytes,
                    column_map=column_map,
                )
            caught.extend(seen)
            written = store.append(case)
            report.batches.append(written.number)
            report.files_added += len(case.manifest)
            report.duplicates += written.duplicates
            for name, rows in written.rows.items():
                report.events_added[name] += rows
            bar.update(sum(size for _, _, size in batch))
            del case
    if report.batches:
        store.fuse_activity()  # calls and names across batches, as kf.load gives them
    if copies:
        report.batches.append(store.append_manifest(pd.DataFrame(copies)))
    report.seconds = time.perf_counter() - started
    store.record_ingest(report, [str(s) for s in sources])
    if any(issubclass(w.category, ParseWarning) for w in caught):
        warnings.warn(
            f"kmsforensics.ingest: some records or files were not taken as they are; see "
            f"kf.load({str(out)!r}).issues and .manifest",
            ParseWarning,
            stacklevel=2,
        )
    return report


@dataclass
class _Written:
    number: int
    duplicates: int
    rows: dict[str, int]


class _StoreWriter:
    """Appends batches to a store; commits each by rewriting the store file last."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if root.exists() and any(root.iterdir()) and not is_store(root):
            raise StoreError(
                f"{root} exists and is not a kmsforensics case store; choose an empty or "
                "new folder for --out"
            )
        root.mkdir(parents=True, exist_ok=True)
        self.info = read_info(root) if is_store(root) else _new_info()
        self.schemas = {name: _read_schema(root, name) for name in FRAMES}

    def known_files(self) -> tuple[dict[str, str], set[str]]:
        """Return SHA-256 -> the name a file was first listed under, and every name listed."""
        manifest = _read_batches(self.root / "manifest", self.info["batches"])
        if not len(manifest):
            return {}, set()
        named = manifest.dropna(subset=["sha256"]).drop_duplicates("sha256")
        first = dict(zip(named["sha256"], named["path"].astype(str), strict=True))
        return first, set(manifest["path"].astype(str))

    def append_manifest(self, rows: pd.DataFrame) -> int:
        """Commit a batch of manifest rows alone (files listed but not read); its number."""
        number = self.info["batches"] + 1
        manifest = rows.reindex(columns=list(MANIFEST_COLUMNS))
        for column in MANIFEST_COUNTS:
            manifest[column] = manifest[column].astype("Int64")
        pq.write_table(_table(manifest), _batch_file(self.root / "manifest", number))
        self.info.setdefault("batch_facts", {})[str(number)] = _facts(pd.DataFrame())
        self.info["batches"] = number
        self._commit()
        return number

    def append(self, case: Case) -> _Written:
        number = self.info["batches"] + 1
        kms, at, activity = case.kms, case._actiontrail_text, case.activity
        manifest = case.manifest.copy()
        dropped: Counter[str] = Counter()
        drops = []
        for source, frame in (("kms", kms), ("actiontrail", at)):
            repeated = self._repeated(source, frame, number)
            dropped.update(frame.loc[repeated, "source_file"].astype(str).tolist())
            drops.append(_provenance(frame[repeated], source))
        if dropped:
            kms = kms[~self._seen_rows(kms, drops[0])]
            at = at[~self._seen_rows(at, drops[1])]
            gone = pd.concat(drops, ignore_index=True)
            activity = activity[~self._seen_rows(activity, gone, activity=True)]
            _count_duplicates(manifest, dropped)
        rows = {}
        for name, frame in (("activity", activity), ("kms", kms), ("actiontrail", at)):
            rows[name] = self._write_days(name, frame, number)
        pq.write_table(_table(manifest), _batch_file(self.root / "manifest", number))
        issues = case.issues.astype({"source_file": object})
        pq.write_table(_table(issues), _batch_file(self.root / "issues", number))
        for name, schema in self.schemas.items():
            if schema is not None:
                (self.root / "schema").mkdir(exist_ok=True)
                (self.root / "schema" / f"{name}.arrow").write_bytes(schema.serialize())
        self.info.setdefault("batch_facts", {})[str(number)] = _facts(activity)
        self.info["batches"] = number
        self._commit()
        return _Written(number, sum(dropped.values()), rows)

    # -- de-duplication against the store ---------------------------------------------------

    def _repeated(self, source: str, frame: pd.DataFrame, number: int) -> np.ndarray:
        """Rows whose (id, time, name) the store already holds; records the new keys."""
        key, when, name = DEDUPE_KEYS[source]
        if not len(frame):
            return np.zeros(0, dtype=bool)
        hashes = _key_hashes(frame, key, when, name)
        has_key = frame[key].notna().to_numpy() & (frame[key].astype(object) != "").to_numpy()
        days = _days(frame[when])
        repeated = np.zeros(len(frame), dtype=bool)
        for day in np.unique(days):
            rows = np.flatnonzero((days == day) & has_key)
            folder = self.root / "keys" / source / f"day={day}"
            old = _read_keys(folder, self.info["batches"])
            new = hashes[rows]
            repeated[rows] = np.isin(new, old)
            fresh = np.unique(new[~repeated[rows]])
            if len(fresh):
                folder.mkdir(parents=True, exist_ok=True)
                np.save(_batch_file(folder, number, ".npy"), fresh)
        return repeated

    @staticmethod
    def _seen_rows(frame: pd.DataFrame, gone: pd.DataFrame, activity: bool = False) -> np.ndarray:
        """Rows of ``frame`` whose provenance is in ``gone`` (and source, for activity)."""
        if not len(gone) or not len(frame):
            return np.zeros(len(frame), dtype=bool)
        keys = [*_PROVENANCE, "source"] if activity else _PROVENANCE
        mine = _provenance(frame, None)
        if activity:
            mine["source"] = frame["source"].astype(str).to_numpy()
        marks = gone[keys].drop_duplicates().assign(_gone=True)
        marked = mine[keys].merge(marks, how="left", on=keys)
        return marked["_gone"].notna().to_numpy()

    # -- writing days ---------------------------------------------------------------------

    def _write_days(self, name: str, frame: pd.DataFrame, number: int) -> int:
        table = _table(frame)
        self.schemas[name] = _unify(self.schemas[name], table.schema)  # even with no rows
        if not len(frame):
            return 0
        table = _conform(table, self.schemas[name])
        days = _days(frame[FRAMES[name]])
        for day in np.unique(days):
            folder = self.root / name / f"day={day}"
            folder.mkdir(parents=True, exist_ok=True)
            part = table.filter(pa.array(days == day))
            pq.write_table(part, _batch_file(folder, number), compression="zstd")
        return len(frame)

    def fuse_activity(self) -> None:
        """Fuse the two logs over the whole store, as ``kf.load`` does over its files.

        Each batch was fused on its own when it was loaded; a KMS call and its
        ActionTrail event, or a role's KMS rows and the events that name it, may be in
        different batches. The fused columns (``call_id``, names and their source) are
        computed again from the columns fusion reads, and the activity files whose
        values change are rewritten (a temporary file, then renamed).
        """
        from .normalize.fusion import FUSE_READS, FUSED_COLUMNS, fuse

        schema = self.schemas["activity"]
        folder = self.root / "activity"
        if schema is None or not folder.is_dir():
            return
        files = [
            f for day in sorted(folder.glob("day=*")) for f in _committed(day, self.info["batches"])
        ]
        wanted = [c for c in FUSE_READS if c in schema.names]
        if not files or "call_id" not in wanted:
            return
        parts = [
            _conform(pq.read_table(f, columns=wanted), pa.schema([schema.field(c) for c in wanted]))
            for f in files
        ]
        fused = fuse(pa.concat_tables(parts).unify_dictionaries().combine_chunks())
        offset = 0
        for path, part in zip(files, parts, strict=True):
            new = fused.slice(offset, part.num_rows)
            offset += part.num_rows
            changed = [c for c in FUSED_COLUMNS if c in wanted and not _same(new[c], part[c])]
            if not changed:
                continue
            table = pq.read_table(path)
            for name in changed:
                index = table.schema.get_field_index(name)
                values = _as_type(new[name].combine_chunks(), table.schema.field(name).type)
                table = table.set_column(index, table.schema.field(name), values)
            temporary = path.with_suffix(".parquet.tmp")
            pq.write_table(table, temporary, compression="zstd")
            os.replace(temporary, path)
        self.info["calls"] = count_calls(pd.DataFrame({"call_id": fused["call_id"].to_numpy()}))
        self._commit()

    def record_ingest(self, report: IngestReport, sources: list[str]) -> None:
        entry = asdict(report)
        entry.update(
            at=datetime.now(UTC).isoformat(timespec="seconds"),
            loader_version=__version__,
            sources=sources,
        )
        self.info["ingests"].append(entry)
        self.info["loader_versions"] = sorted({*self.info["loader_versions"], __version__})
        self._commit()

    def _commit(self) -> None:
        target = self.root / STORE_FILE
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.info, indent=2, default=str))
        os.replace(temporary, target)


def _same(left: pa.ChunkedArray, right: pa.ChunkedArray) -> bool:
    """Tell whether two columns hold the same values (dictionary or plain)."""

    def plain(values: pa.ChunkedArray) -> pa.Array:
        values = values.combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        return values.cast(pa.large_string()) if pa.types.is_string(values.type) else values

    return bool(plain(left).equals(plain(right)))


def _as_type(values: pa.Array, wanted: pa.DataType) -> pa.Array:
    """Cast fused values to a store column's type (dictionaries re-encoded)."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_dictionary(wanted):
        encoded = values.cast(wanted.value_type).dictionary_encode()
        return encoded.cast(wanted)
    return values.cast(wanted)


def _copy_row(name: str, digest: str, path: Path, original: str) -> dict[str, Any]:
    """Return the manifest row of a file the store already holds under another name."""
    return {
        "path": name,
        "sha256": digest,
        "bytes": path.stat().st_size,
        "format": "copy",
        "records_read": 0,
        "records_loaded": 0,
        "records_rejected": 0,
        "duplicates": 0,
        "status": "copy",
        "reason": f"same content (SHA-256) as {original}, already in the store: not read again",
    }


def _new_info() -> dict[str, Any]:
    return {
        "format": STORE_FORMAT,
        "store_version": STORE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "loader_versions": [__version__],
        "batches": 0,
        "ingests": [],
    }


def read_info(root: Path) -> dict[str, Any]:
    """Read ``kmsforensics-store.json``, checking that it is a store this version reads."""
    info: dict[str, Any] = json.loads((root / STORE_FILE).read_text())
    if info.get("format") != STORE_FORMAT or info.get("store_version", 0) > STORE_VERSION:
        raise StoreError(
            f"{root} is a store of format {info.get('format')!r} version "
            f"{info.get('store_version')!r}; this kmsforensics ({__version__}) reads "
            f"{STORE_FORMAT!r} up to version {STORE_VERSION}: upgrade kmsforensics"
        )
    return info


def _count_duplicates(manifest: pd.DataFrame, dropped: Counter[str]) -> None:
    """Move events the store already held from loaded to duplicates, file by file."""
    counts = manifest["path"].map(dropped).fillna(0).astype("int64")
    manifest["records_loaded"] -= counts
    manifest["duplicates"] += counts
    only = (counts > 0) & (manifest["records_loaded"] == 0) & (manifest["status"] == "loaded")
    manifest.loc[only, "status"] = "duplicates-only"


def _provenance(frame: pd.DataFrame, source: str | None) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "source_file": frame["source_file"].astype(str).to_numpy(),
            "source_record": frame["source_record"].astype("Int64").fillna(-1).to_numpy("int64"),
            "source_item": frame["source_item"].astype("Int64").fillna(-1).to_numpy("int64")
            if "source_item" in frame
            else np.full(len(frame), -1),
        }
    )
    out["source"] = source or ""
    return out


def _key_hashes(frame: pd.DataFrame, key: str, when: str, name: str) -> np.ndarray:
    keys = pd.DataFrame(
        {
            "key": frame[key].astype(object).to_numpy(),
            "time": frame[when].to_numpy("datetime64[ns]").view("int64"),
            "name": frame[name].astype(object).to_numpy(),
        }
    )
    return pd.util.hash_pandas_object(keys, index=False).to_numpy()


def _days(times: pd.Series) -> np.ndarray:
    """UTC day of each time, as ``YYYY-MM-DD`` text (``none`` for a missing time)."""
    values = times.to_numpy("datetime64[ns]")
    days = np.datetime_as_string(values.astype("datetime64[D]"), unit="D").astype(object)
    days[np.isnat(values)] = _NO_DAY
    return days


def _table(frame: pd.DataFrame) -> pa.Table:
    """Arrow table of a frame, in types every batch agrees on.

    Categoricals get 32-bit codes; a column with no value at all (Arrow type ``null``)
    is text, as every such column of the frames is.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    for i, f in enumerate(table.schema):
        wanted = f.type
        if pa.types.is_null(f.type):
            wanted = pa.large_string()
        elif pa.types.is_dictionary(f.type):
            values = pa.string() if pa.types.is_null(f.type.value_type) else f.type.value_type
            wanted = pa.dictionary(pa.int32(), values)
        if wanted != f.type:
            table = table.set_column(i, f.name, table.column(i).cast(wanted))
    return table


def _unify(old: pa.Schema | None, new: pa.Schema) -> pa.Schema:
    """Columns of earlier batches, then new ones; a column empty so far takes its type."""
    if old is None:
        return new
    fields = [
        new.field(f.name) if pa.types.is_null(f.type) and f.name in new.names else f for f in old
    ]
    fields += [f for f in new if f.name not in old.names]
    return pa.schema(fields)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Give a table every column of ``schema``, in its order and types (nulls where absent)."""
    columns = []
    for f in schema:
        if f.name in table.column_names:
            column = table.column(f.name)
            columns.append(column if column.type == f.type else column.cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _batch_file(folder: Path, number: int, suffix: str = ".parquet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"batch-{number:06d}{suffix}"


def _batch_number(path: Path) -> int:
    return int(path.name.split("-")[1].split(".")[0])


def _committed(folder: Path, batches: int, suffix: str = ".parquet") -> list[Path]:
    if not folder.is_dir():
        return []
    files = sorted(folder.glob(f"batch-*{suffix}"))
    return [f for f in files if _batch_number(f) <= batches]


def _read_keys(folder: Path, batches: int) -> np.ndarray:
    parts = [np.load(f) for f in _committed(folder, batches, ".npy")]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def _read_batches(folder: Path, batches: int) -> pd.DataFrame:
    files = _committed(folder, batches)
    if not files:
        return pd.DataFrame()
    return pd.concat([to_frame(pq.read_table(f)) for f in files], ignore_index=True)


def _read_schema(root: Path, name: str) -> pa.Schema | None:
    path = root / "schema" / f"{name}.arrow"
    return pa.ipc.read_schema(pa.py_buffer(path.read_bytes())) if path.is_file() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _estimate(path: Path) -> int:
    from .evidence import EvidenceFile
    from .loader import _content_estimate

    return max(_content_estimate(EvidenceFile(str(path), path)), 1)


def _batches(
    files: Sequence[tuple[Path, str, int]], limit: int
) -> Iterator[list[tuple[Path, str, int]]]:
    batch: list[tuple[Path, str, int]] = []
    size = 0
    for item in files:
        if batch and size + item[2] > limit:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item[2]
    if batch:
        yield batch


# -- reading --------------------------------------------------------------------------------


class Store:
    """A case store on disk: its days, and each frame read by day, column and time.

    Parameters
    ----------
    root : str or path-like
        The case store folder.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not is_store(self.root):
            raise StoreError(
                f"{self.root} is not a kmsforensics case store (no {STORE_FILE}); "
                "make one with kmsforensics ingest EVIDENCE... --out CASE_DIR"
            )
        self.info = read_info(self.root)
        self.batches: int = self.info["batches"]
        self.schemas = {name: _read_schema(self.root, name) for name in FRAMES}

    def days(self, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> list[str]:
        """Days (``YYYY-MM-DD``) that hold rows of any frame, within ``[start, end)``."""
        found: set[str] = set()
        for name in FRAMES:
            folder = self.root / name
            if folder.is_dir():
                found.update(p.name[4:] for p in folder.glob("day=*") if p.is_dir())
        lo = start.strftime("%Y-%m-%d") if start is not None else None
        hi = (end - pd.Timedelta(1)).strftime("%Y-%m-%d") if end is not None else None
        keep = [
            d
            for d in found
            if d == _NO_DAY or ((lo is None or d >= lo) and (hi is None or d <= hi))
        ]
        if start is not None or end is not None:
            keep = [d for d in keep if d != _NO_DAY]
        return sorted(keep)

    def columns(self, name: str) -> list[str]:
        """Return the columns of a frame (the union over every batch)."""
        schema = self.schemas[name]
        return list(schema.names) if schema is not None else []

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
        schema = self.schemas[name]
        if schema is None:
            return pd.DataFrame()
        files = [
            str(f)
            for day in days
            for f in _committed(self.root / name / f"day={day}", self.batches)
        ]
        wanted = list(schema.names) if columns is None else _with_needed(name, columns, schema)
        if not files:
            return to_frame(schema.empty_table().select(wanted))
        when = ds.field(FRAMES[name])
        condition = None
        if start is not None:
            condition = when >= pa.scalar(start.to_pydatetime(), pa.timestamp("ns", "UTC"))
        if end is not None:
            upper = when < pa.scalar(end.to_pydatetime(), pa.timestamp("ns", "UTC"))
            condition = upper if condition is None else condition & upper
        dataset = ds.dataset(files, schema=schema, format="parquet")
        table = dataset.to_table(columns=wanted, filter=condition, use_threads=True)
        frame = to_frame(table)
        if name == "activity" and len(frame) and "source" in frame:
            frame = _time_order(frame)
        return frame

    def manifest(self) -> pd.DataFrame:
        """Return the manifest of every committed batch (one row per evidence file)."""
        frame = _read_batches(self.root / "manifest", self.batches)
        return frame if len(frame) else pd.DataFrame(columns=list(MANIFEST_COLUMNS))

    def issues(self) -> pd.DataFrame:
        """Return the issues of every committed batch."""
        frame = _read_batches(self.root / "issues", self.batches)
        if not len(frame):
            return pd.DataFrame(columns=list(ISSUES_COLUMNS))
        return frame.astype({"source_file": object})


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


class StoreCase(Case):
    """A :class:`~kmsforensics.case.Case` over a case store: frames read when first asked for.

    Only the days within ``between`` and the ``columns`` asked for are read.
    """

    def __init__(
        self,
        store: Store,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        self.store = store
        self.start, self.end = start, end
        self.columns = list(columns) if columns is not None else None
        parameters = {
            "store": str(store.root),
            "loader_versions": store.info["loader_versions"],
            "batches": store.batches,
        }
        if start is not None or end is not None:
            parameters["between"] = (start, end)
        super().__init__(
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            store.issues(),
            store.manifest(),
            parameters,
        )

    def _frame(self, name: str) -> Any:
        if self._frames[name] is None:
            self._frames[name] = self.store.read(
                name, self.store.days(self.start, self.end), self.start, self.end, self.columns
            )
        return self._frames[name]

    def between(self, start: TimeLike = None, end: TimeLike = None) -> Case:
        """Return the case within ``[start, end)``, reading only those days (see Case)."""
        lo, hi = to_utc(start), to_utc(end)
        if self.start is not None:
            lo = self.start if lo is None else max(lo, self.start)
        if self.end is not None:
            hi = self.end if hi is None else min(hi, self.end)
        return StoreCase(self.store, lo, hi, self.columns)

    def focus(self, ref: str) -> Case:
        """Return the events that involve ``ref``, read day by day (see Case.focus)."""
        kept = []
        for day in self.store.days(self.start, self.end):
            rows = self.store.read_day("activity", day, self.start, self.end, self.columns)
            kept.append(rows[focus_mask(rows, ref)])
        activity = pd.concat(kept, ignore_index=True) if kept else self.activity.iloc[:0]
        return self._focused(activity, ref)

    def _focused(self, activity: pd.DataFrame, ref: str) -> Case:
        """Return the case of these activity rows, reading only their days' records."""
        days = sorted(set(_days(activity["time"]))) if len(activity) else []
        kms, at = records_behind(
            activity,
            self.store.read("kms", days, self.start, self.end, self.columns),
            self.store.read("actiontrail", days, self.start, self.end, self.columns),
        )
        return Case(
            kms, at, activity, self.issues, self.manifest, {**self.parameters, "focus": ref}
        )

    def summary(self) -> dict[str, Any]:
        """Return the facts a summary shows.

        For the whole case they come from the store file (each batch's counts, time
        range and accounts); for a slice three activity columns are read.
        """
        if self.engine == "pandas" and self._frames["activity"] is not None:
            return super().summary()  # in memory already
        known = self.store.info.get("batch_facts", {})
        batches = [known.get(str(n)) for n in range(1, self.store.batches + 1)]
        if self.start is None and self.end is None and all(batches):
            facts = _summary_of_batches(self.manifest, self.issues, batches)
            if "calls" in self.store.info:  # counted over every batch, pairs across them
                facts["calls"] = int(self.store.info["calls"])
            return facts
        head = self.store.read(
            "activity",
            self.store.days(self.start, self.end),
            self.start,
            self.end,
            ["time", "source", "account_id", "call_id"],
        )
        return _summary(self.manifest, self.issues, head)


def _facts(activity: pd.DataFrame) -> dict[str, Any]:
    """Return what a batch adds to the case's summary (kept in the store file)."""
    if not len(activity):
        return {"kms": 0, "actiontrail": 0, "calls": 0, "start": None, "end": None, "accounts": []}
    sources = activity["source"].astype(object).value_counts()
    times = activity["time"]
    return {
        "kms": int(sources.get("kms", 0)),
        "actiontrail": int(sources.get("actiontrail", 0)),
        "calls": count_calls(activity),
        "start": times.min().isoformat(),
        "end": times.max().isoformat(),
        "accounts": sorted(str(a) for a in activity["account_id"].dropna().unique()),
    }


def _summary_of_batches(
    manifest: pd.DataFrame, issues: pd.DataFrame, batches: list[Any]
) -> dict[str, Any]:
    facts = _summary(manifest, issues, pd.DataFrame())
    starts = [pd.Timestamp(b["start"]) for b in batches if b["start"]]
    ends = [pd.Timestamp(b["end"]) for b in batches if b["end"]]
    facts["events"] = {
        "kms": sum(b["kms"] for b in batches),
        "actiontrail": sum(b["actiontrail"] for b in batches),
    }
    facts["calls"] = sum(b.get("calls", b["kms"] + b["actiontrail"]) for b in batches)
    facts["start"] = min(starts) if starts else None
    facts["end"] = max(ends) if ends else None
    facts["accounts"] = len({a for b in batches for a in b["accounts"]})
    return facts


def _summary(manifest: pd.DataFrame, issues: pd.DataFrame, head: pd.DataFrame) -> dict[str, Any]:
    formats = manifest.groupby("format", observed=True).size().to_dict()
    statuses = manifest.groupby("status", observed=True).size().to_dict()
    sources = head["source"].astype(object).value_counts() if len(head) else pd.Series()
    times = head["time"] if len(head) else pd.Series(dtype="datetime64[ns, UTC]")
    return {
        "files": len(manifest),
        "files_by_status": {str(k): int(v) for k, v in statuses.items()},
        "files_by_format": {str(k): int(v) for k, v in formats.items()},
        "events": {
            "kms": int(sources.get("kms", 0)),
            "actiontrail": int(sources.get("actiontrail", 0)),
        },
        "calls": count_calls(head) if len(head) else 0,
        "start": times.min() if len(times) else None,
        "end": times.max() if len(times) else None,
        "accounts": int(head["account_id"].dropna().nunique()) if len(head) else 0,
        "issues": len(issues),
    }


def open_store(
    root: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
) -> StoreCase:
    """Open a case store as a lazy :class:`Case` (used by ``kf.load(CASE_DIR)``)."""
    return StoreCase(Store(root), to_utc(start), to_utc(end), columns)
