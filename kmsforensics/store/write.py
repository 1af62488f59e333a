"""``kf.ingest``: evidence parsed in bounded batches and committed to a case store.

An ingest takes the store's writer lock (:mod:`.lock`) for its whole run, so writers
never interleave. Then, holding it:

1. it removes every file under the store's folders that no committed batch lists (the
   leftovers of a batch a crash cut short), so nothing uncommitted is ever adopted;
2. for each batch it reserves a batch number in ``kmsforensics-store.json`` first, so
   a number is never used twice, even by a batch that never commits;
3. it writes each file of the batch under a temporary name, flushes it to disk and
   renames it into place, noting its size and SHA-256;
4. it commits the batch by replacing ``kmsforensics-store.json`` (flushed, then
   renamed): the batch, its files, their sizes and hashes, the schemas. Readers only see
   what that file lists.

A kill at any point leaves the store as it was after the last commit.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .._version import __version__
from ..calls import count_calls
from ..case import Case
from ..errors import ParseWarning, StoreError, UnreadableEvidenceError
from ..evidence import DEFAULT_MAX_BYTES, EvidenceFile, discover
from ..schema import MANIFEST_COLUMNS, MANIFEST_COUNTS
from .chunks import Chunk, estimate_size, renumber, split_lines
from .columns import (
    conform,
    plain,
    read_table,
    rewritten,
    share_with_sources,
    share_within,
    with_aliases,
)
from .fusion import (
    KEY_COLUMNS,
    FileKeys,
    HashedKeys,
    Keys,
    Latest,
    hashes,
    in_requests,
    involved,
    keys_of,
    same_records,
    supplier_keys,
    union,
)
from .layout import (
    DATA_FOLDERS,
    DEDUPE_KEYS,
    FRAMES,
    LOCK_FILE,
    STORE_FILE,
    batch_name,
    commit_info,
    day_folder,
    days_of,
    is_store,
    new_info,
    read_info,
    sha256_file,
    sync_folder,
    write_durably,
)
from .lock import writer_lock
from .read import _unreadable, committed_files, read_parquet, schema_of

#: Decompressed evidence (estimated) parsed in one batch.
BATCH_BYTES = 256 * 1024 * 1024
#: zstd level of the store's Parquet files (higher levels save ~2% for twice the time).
ZSTD_LEVEL = 1
#: How long an ingest waits for another one writing to the same store, by default.
LOCK_WAIT = 600.0
_PROVENANCE = ["source_file", "source_record", "source_item"]
#: Parses a batch: files (path -> SHA-256) and the loader's options -> a Case.
Parser = Callable[..., Case]
_PARSERS: list[Parser] = []


def set_parser(parse: Parser) -> None:
    """Give ingest the function that parses a batch of files (the loader's ``load_hashed``).

    :mod:`kmsforensics` sets it when it is imported, so the store never imports the
    loader. ``parse(files, strict=..., max_bytes=..., column_map=...)`` takes a dict
    of file path -> SHA-256 and returns a :class:`~kmsforensics.Case`.

    Examples
    --------
    >>> import kmsforensics as kf
    >>> _parser() is kf.loader.load_hashed
    True
    """
    _PARSERS[:] = [parse]


def _parser() -> Parser:
    if not _PARSERS:
        raise StoreError("kf.ingest has no parser: import kmsforensics (it sets the loader's)")
    return _PARSERS[0]


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
    leftovers_removed : int
        Files of batches that never committed (a crash), removed before writing.
    seconds : float
        Wall time of the ingest.
    """

    store: str
    files_added: int = 0
    files_already_in_store: int = 0
    events_added: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    batches: list[int] = field(default_factory=list)
    leftovers_removed: int = 0
    seconds: float = 0.0


def ingest(
    *sources: str | os.PathLike[str],
    out: str | os.PathLike[str],
    progress: bool = True,
    batch_bytes: int = BATCH_BYTES,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    column_map: dict[str, str] | None = None,
    wait: float | None = LOCK_WAIT,
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
    wait : float or None, default 600
        Seconds to wait for another ingest writing to the same store (None: as long as
        it takes); then :class:`~kmsforensics.StoreLockedError` names it.

    Returns
    -------
    IngestReport

    Examples
    --------
    >>> import kmsforensics as kf
    >>> kf.ingest("evidence/", out="case-store").files_added  # doctest: +SKIP
    695
    """
    started = time.perf_counter()
    root = Path(out)
    _check_folder(root, locked=False)  # before the lock file is made: refuse at once
    root.mkdir(parents=True, exist_ok=True)
    report = IngestReport(str(out), events_added=dict.fromkeys(FRAMES, 0))
    with writer_lock(root, wait):
        _check_folder(root, locked=True)  # again, now that no other writer can change it
        store = _StoreWriter(root)
        report.leftovers_removed = store.remove_leftovers()
        store.fuse_pending()  # a batch an earlier ingest committed but could not fuse
        caught = _ingest(store, sources, report, progress, batch_bytes, strict, max_bytes,
                         column_map)  # fmt: skip
        report.seconds = time.perf_counter() - started
        store.record_ingest(report, [str(s) for s in sources])
    if any(issubclass(w.category, ParseWarning) for w in caught):
        warnings.warn(
            f"kmsforensics.ingest: some records or files were not taken as they are; see "
            f"kf.open({str(out)!r}).issues and .manifest",
            ParseWarning,
            stacklevel=2,
        )
    return report


def _ingest(
    store: _StoreWriter,
    sources: Sequence[str | os.PathLike[str]],
    report: IngestReport,
    progress: bool,
    batch_bytes: int,
    strict: bool,
    max_bytes: int,
    column_map: dict[str, str] | None,
) -> list[warnings.WarningMessage]:
    found = discover(sources)
    files = [ef for ef in found if ef.on_disk]
    known, listed = store.known_files()
    todo: list[_Todo] = []
    copies = [_special_row(ef) for ef in found if _is_special(ef) and ef.display not in listed]
    if copies and strict:
        raise UnreadableEvidenceError(copies[0]["path"], copies[0]["reason"])
    for ef in files:
        digest = sha256_file(ef.path)
        if digest in known:
            report.files_already_in_store += 1
            if ef.display not in listed:  # same content, another name: listed, not read
                copies.append(_copy_row(ef.display, digest, ef.path, known[digest]))
                listed.add(ef.display)
            continue
        known[digest] = ef.display
        listed.add(ef.display)
        todo.append(_Todo(ef.path, ef.display, digest, _estimate(ef.path)))
    bar = tqdm(
        total=sum(item.size for item in todo),
        unit="B",
        unit_scale=True,
        desc="kmsforensics.ingest",
        disable=not progress,
        leave=False,
    )
    options = {"strict": strict, "max_bytes": max_bytes, "column_map": column_map}
    load = _parser()
    scratch = store.root / "scratch"

    def units() -> Iterator[_Unit]:
        """Yield the batches to parse; a file larger than a batch as chunks, split when due."""
        for number, batch in enumerate(_batches(todo, batch_bytes)):
            chunks = None
            if len(batch) == 1 and batch[0].size > batch_bytes:
                folder = scratch / f"split-{number:06d}"
                chunks = split_lines(batch[0].path, batch_bytes, folder, column_map)
            if not chunks:
                yield _Unit(batch)
                continue
            for i, chunk in enumerate(chunks):
                yield _Unit(batch, chunk, first=i == 0, last=i == len(chunks) - 1)

    def parse(unit: _Unit) -> Case:
        if unit.chunk is None:
            return load({item.display: item.digest for item in unit.files}, **options)
        case = load({str(unit.chunk.path): unit.files[0].digest}, **options)
        unit.chunk.path.unlink(missing_ok=True)  # parsed: its scratch space is free again
        return case

    # One recording of warnings for both threads (catch_warnings is not thread-safe).
    with bar, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ParseWarning)
        chunked: _ChunkedFile | None = None
        for unit, case in _ahead(parse, units()):  # batch N+1 parsed while N is written
            if unit.chunk is None:
                written = store.append(case)
                report.files_added += len(case.manifest)
            else:
                if unit.first:
                    chunked = store.begin_chunks(unit.files[0])
                assert chunked is not None
                store.add_chunk(chunked, unit.chunk, case)
                if not unit.last:
                    del case
                    continue
                written = store.end_chunks(chunked)
                chunked = None
                shutil.rmtree(unit.chunk.path.parent, ignore_errors=True)  # this file's chunks
                report.files_added += 1
            del case
            report.batches.append(written.number)
            report.duplicates += written.duplicates
            for name, rows in written.rows.items():
                report.events_added[name] += rows
            bar.update(sum(item.size for item in unit.files))
    shutil.rmtree(scratch, ignore_errors=True)
    if copies:
        report.batches.append(store.append_manifest(pd.DataFrame(copies)))
    for seen in caught:  # what is not about the evidence is shown as it would have been
        if not issubclass(seen.category, ParseWarning):
            warnings.warn_explicit(seen.message, seen.category, seen.filename, seen.lineno)
    return list(caught)


_T = TypeVar("_T")
_R = TypeVar("_R")


def _ahead(work: Callable[[_T], _R], items: Iterable[_T]) -> Iterator[tuple[_T, _R]]:
    """Yield ``(item, work(item))`` in order, the next item's work done meanwhile in a thread.

    At most two results exist at a time: the one the caller holds and the one being made.
    The items are produced in the caller's thread; an error of ``work`` is raised when
    its result is due.

    Examples
    --------
    >>> [r for _, r in _ahead(lambda x: x * 2, range(4))]
    [0, 2, 4, 6]
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kmsforensics-ingest") as pool:
        pending: tuple[_T, Future[_R]] | None = None
        for item in items:
            future = pool.submit(work, item)
            if pending is not None:
                done, pending = pending, None
                yield done[0], done[1].result()
                del done
            pending = (item, future)
        if pending is not None:
            yield pending[0], pending[1].result()


def _check_folder(root: Path, locked: bool) -> None:
    """Refuse a folder that is neither a store, nor empty, nor a store begun and cut short.

    Without the lock, a folder with a lock file may be a store another ingest is making
    right now: it is checked again once the lock is held.
    """
    if not root.exists() or is_store(root):
        return
    if not root.is_dir():
        raise StoreError(f"{root} is a file, not a folder: choose a folder for the case store")
    entries = {p.name for p in root.iterdir()}
    if not locked and LOCK_FILE in entries:
        return
    if entries - {LOCK_FILE, f".{STORE_FILE}.tmp"}:
        raise StoreError(
            f"{root} exists and is not a kmsforensics case store"
            + (" (it has a lock file: a damaged store?)" if LOCK_FILE in entries else "")
            + "; choose an empty or new folder for --out"
        )


@dataclass
class _Todo:
    path: Path
    display: str
    digest: str
    size: int


@dataclass
class _Unit:
    """What one parse reads: a batch of files, or one chunk of a file larger than a batch."""

    files: list[_Todo]
    chunk: Chunk | None = None
    first: bool = False
    last: bool = False


@dataclass
class _ChunkedFile:
    """A file read in chunks, written as one batch: what its chunks added so far."""

    item: _Todo
    number: int
    manifests: list[pd.DataFrame] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)
    rows: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    parts: int = 0


@dataclass
class _Written:
    number: int
    duplicates: int
    rows: dict[str, int]


@dataclass
class _Part:
    manifest: pd.DataFrame
    activity: pd.DataFrame
    rows: dict[str, int]
    duplicates: int


class _StoreWriter:
    """Appends batches to a store (the writer lock held); commits each in the store file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if is_store(root):
            self.info = read_info(root)
        else:
            self.info = new_info()
            commit_info(root, self.info)  # an empty store opens from now on
        self.schemas: dict[str, pa.Schema | None] = {
            name: schema_of(self.info, name) for name in FRAMES
        }
        self.files: dict[str, list[Any]] = {}  # the batch being written: path -> size, hash
        self.in_memory: dict[str, pa.Table] = {}  # activity files written, not fused yet
        self.new_activity: list[str] = []  # their names
        self.replaced: dict[str, str] = {}  # stored files this batch rewrote: old -> new
        self.file_keys: dict[str, FileKeys] = {}  # activity file -> its keys' hashes
        self.folders: set[Path] = set()

    # -- what the store holds -----------------------------------------------------------------

    def committed(self) -> set[str]:
        return {path for batch in self.info["batches"] for path in batch["files"]}

    def remove_leftovers(self) -> int:
        """Remove every file under the data folders that no committed batch lists."""
        keep = self.committed()
        removed = 0
        for name in DATA_FOLDERS:
            folder = self.root / name
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*"), reverse=True):
                relative = path.relative_to(self.root).as_posix()
                if path.is_dir():
                    if not any(path.iterdir()):
                        path.rmdir()
                elif relative not in keep:
                    path.unlink()
                    removed += 1
        return removed

    def known_files(self) -> tuple[dict[str, str], set[str]]:
        """Return SHA-256 -> the name a file was first listed under, and every name listed."""
        paths = [p for p in committed_files(self.info) if p.startswith("manifest/")]
        manifest = read_parquet(self.root, paths, None)
        if not len(manifest):
            return {}, set()
        named = manifest.dropna(subset=["sha256"]).drop_duplicates("sha256")
        first = dict(zip(named["sha256"], named["path"].astype(str), strict=True))
        return first, set(manifest["path"].astype(str))

    # -- writing a batch ----------------------------------------------------------------------

    def reserve(self) -> int:
        """Take the next batch number for good (committed before any file is written)."""
        number = int(self.info["next_batch"])
        self.info["next_batch"] = number + 1
        commit_info(self.root, self.info)
        self.files, self.folders = {}, set()
        return number

    def put(self, relative: str, data: bytes | memoryview) -> None:
        """Write one file of the batch durably and note its size and SHA-256."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(path, data)
        self.files[relative] = [len(data), hashlib.sha256(data).hexdigest()]
        self.folders.add(path.parent)

    def put_table(self, relative: str, table: pa.Table) -> None:
        """Write a table as Parquet (zstd; dictionary pages only for repeating text).

        Parquet's dictionary encoding of columns of distinct values (request ids, keys,
        addresses) costs time and bytes; it is kept for text whose values repeat.
        """
        sink = pa.BufferOutputStream()
        coded = [f.name for f in table.schema if _repeats(table.column(f.name))]
        pq.write_table(
            table, sink, compression="zstd", compression_level=ZSTD_LEVEL, use_dictionary=coded
        )
        self.put(relative, memoryview(sink.getvalue()))

    def commit(self, number: int, facts: dict[str, Any]) -> None:
        """Commit the batch: its files (size, SHA-256), facts, schemas, rewritten files.

        Stored files its fusion rewrote (:meth:`fuse_written`) are listed, in the same
        commit, under their new names, and removed after it.
        """
        for folder in self.folders:
            sync_folder(folder)
        rewritten = self._move_rewritten()
        self.info["batches"].append(
            {
                "number": number,
                "committed": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": dict(sorted(self.files.items())),
                "facts": facts,
                "fused": True,  # with the store, file by file, before this commit
            }
        )
        self.info["schemas"] = {
            name: base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")
            for name, schema in self.schemas.items()
            if schema is not None
        }
        self._count_calls()
        commit_info(self.root, self.info)
        for old in rewritten:
            (self.root / old).unlink(missing_ok=True)
            self.file_keys.pop(old, None)

    def _move_rewritten(self) -> list[str]:
        """List stored files rewritten by this batch's fusion under their batches instead."""
        for batch in self.info["batches"]:
            for old in [p for p in batch["files"] if p in self.replaced]:
                del batch["files"][old]
                new = self.replaced[old]
                batch["files"][new] = self.files.pop(new)
        rewritten, self.replaced = list(self.replaced), {}
        return rewritten

    def _count_calls(self) -> None:
        """Count the store's calls (distinct ``call_id``, pairs across batches once)."""
        files = {**committed_files(self.info), **self.files}
        calls = [self._read(p, ["call_id"]) for p in files if p.startswith("activity/")]
        calls = [t for t in calls if "call_id" in t.column_names]
        if calls:
            ids = pa.concat_tables(calls).column("call_id").to_pandas()
            self.info["calls"] = count_calls(pd.DataFrame({"call_id": ids}))

    def append_manifest(self, rows: pd.DataFrame) -> int:
        """Commit a batch of manifest rows alone (files listed but not read); its number."""
        number = self.reserve()
        manifest = rows.reindex(columns=list(MANIFEST_COLUMNS))
        for column in MANIFEST_COUNTS:
            manifest[column] = manifest[column].astype("Int64")
        self.put_table(f"manifest/{batch_name(number)}", _table(manifest))
        self.commit(number, _facts(pd.DataFrame()))
        return number

    def append(self, case: Case) -> _Written:
        """Write and commit one batch: the frames of one load."""
        number = self.reserve()
        part = self._write_part(number, None, case.kms, case._actiontrail_text, case.activity,
                                case.manifest.copy())  # fmt: skip
        self.put_table(f"manifest/{batch_name(number)}", _table(part.manifest))
        issues = case.issues.astype({"source_file": object})
        self.put_table(f"issues/{batch_name(number)}", _table(issues))
        self.fuse_written(number, None)
        self.commit(number, _facts(part.activity))
        return _Written(number, part.duplicates, part.rows)

    def begin_chunks(self, item: _Todo) -> _ChunkedFile:
        """Begin the batch of one file read in chunks (:meth:`add_chunk` each, then end)."""
        return _ChunkedFile(item, self.reserve())

    def add_chunk(self, state: _ChunkedFile, chunk: Chunk, case: Case) -> None:
        """Write the frames of one chunk of a file as a part of its batch."""
        item, number = state.item, state.number
        state.parts += 1
        i = state.parts
        offset = chunk.first_line - 1
        kms, at, activity = (
            renumber(frame, item.display, offset)
            for frame in (case.kms, case._actiontrail_text, case.activity)
        )
        manifest = case.manifest.assign(path=item.display)
        part = self._write_part(number, i, kms, at, activity, manifest)
        issues = renumber(case.issues, item.display, offset).astype({"source_file": object})
        if len(issues):
            self.put_table(f"issues/{batch_name(number, part=i)}", _table(issues))
        self.fuse_written(number, i)
        state.manifests.append(part.manifest)
        state.facts.append(_facts(part.activity))
        state.rows.update(part.rows)
        state.duplicates += part.duplicates

    def end_chunks(self, state: _ChunkedFile) -> _Written:
        """Write the file's manifest row and commit its batch."""
        manifest = _whole_file(pd.concat(state.manifests, ignore_index=True), state.item)
        self.put_table(f"manifest/{batch_name(state.number)}", _table(manifest))
        self.commit(state.number, _merged_facts(state.facts))
        return _Written(state.number, state.duplicates, dict(state.rows))

    def _write_part(
        self,
        number: int,
        part: int | None,
        kms: pd.DataFrame,
        at: pd.DataFrame,
        activity: pd.DataFrame,
        manifest: pd.DataFrame,
    ) -> _Part:
        """Drop what the store holds already, then write the frames by day."""
        dropped: Counter[str] = Counter()
        drops = []
        for source, frame in (("kms", kms), ("actiontrail", at)):
            repeated = self._repeated(source, frame, number, part)
            dropped.update(frame.loc[repeated, "source_file"].astype(str).tolist())
            drops.append(_provenance(frame[repeated], source))
        if dropped:
            kms = kms[~_seen_rows(kms, drops[0])]
            at = at[~_seen_rows(at, drops[1])]
            gone = pd.concat(drops, ignore_index=True)
            activity = activity[~_seen_rows(activity, gone, activity=True)]
            _count_duplicates(manifest, dropped)
        rows, written = {}, {}
        for name, frame in (("kms", kms), ("actiontrail", at)):
            rows[name], written[name] = self._write_days(name, frame, number, part)
        rows["activity"], days = self._write_days("activity", activity, number, part, written)
        self.in_memory.update(dict(days.values()))
        self.new_activity += [relative for relative, _ in days.values()]
        return _Part(manifest, activity, rows, sum(dropped.values()))

    def _repeated(
        self, source: str, frame: pd.DataFrame, number: int, part: int | None
    ) -> np.ndarray:
        """Rows whose (id, time, name) the store already holds; writes the new keys."""
        key, when, name = DEDUPE_KEYS[source]
        if not len(frame):
            return np.zeros(0, dtype=bool)
        hashes = _key_hashes(frame, key, when, name)
        has_key = frame[key].notna().to_numpy() & (frame[key].astype(object) != "").to_numpy()
        repeated = np.zeros(len(frame), dtype=bool)
        for day, in_day in _day_rows(frame[when]):
            rows = in_day[has_key[in_day]]
            folder = f"keys/{day_folder(source, day)}"
            old = self._read_keys(folder)
            new = hashes[rows]
            repeated[rows] = np.isin(new, old)
            fresh = np.unique(new[~repeated[rows]])
            if len(fresh):
                buffer = io.BytesIO()
                np.save(buffer, fresh)
                self.put(f"{folder}/{batch_name(number, '.npy', part)}", buffer.getbuffer())
        return repeated

    def _read_keys(self, folder: str) -> np.ndarray:
        held = [*committed_files(self.info), *self.files]  # this batch's earlier parts too
        parts = [np.load(self.root / p) for p in held if p.rsplit("/", 1)[0] == folder]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)

    def _write_days(
        self,
        name: str,
        frame: pd.DataFrame,
        number: int,
        part: int | None,
        sources: dict[str, dict[str, tuple[str, pa.Table]]] | None = None,
    ) -> tuple[int, dict[str, tuple[str, pa.Table]]]:
        """Write a frame's rows by day; return its row count and, per day, file and table.

        ``sources`` (for the activity frame): per source, the day files just written,
        whose columns activity rows may refer to instead of repeating them.
        """
        table = _table(frame)
        self.schemas[name] = _unify(self.schemas[name], table.schema)  # even with no rows
        written: dict[str, tuple[str, pa.Table]] = {}
        if not len(frame):
            return 0, written
        table = conform(table, self.schemas[name])
        for day, in_day in _day_rows(frame[FRAMES[name]]):
            mask = np.zeros(table.num_rows, dtype=bool)
            mask[in_day] = True
            rows = table.filter(pa.array(mask))  # (take is far slower on chunked columns)
            relative = f"{day_folder(name, day)}/{batch_name(number, part=part)}"
            same_day = {s: files[day] for s, files in (sources or {}).items() if day in files}
            self.put_frame(relative, rows, same_day)
            written[day] = (relative, rows)
        return len(frame), written

    def put_frame(
        self, relative: str, table: pa.Table, sources: dict[str, tuple[str, pa.Table]]
    ) -> None:
        """Write a day file, each value once (:mod:`.columns`): references to repeats."""
        shared, same = share_within(table)
        shared, from_sources = share_with_sources(shared, sources)
        self.put_table(relative, with_aliases(shared, same, from_sources))

    def fuse_pending(self) -> None:
        """Fuse the batches not fused with the store yet, as ``kf.load`` fuses its files.

        Each batch was fused on its own when it was parsed; a KMS call and its
        ActionTrail event, or a role's KMS rows and the events that name it, may be in
        different batches. Only the stored rows the new batches can change are fused
        again with them (:mod:`.fusion`), read column by column. An activity file whose
        values change is written under a new name, and one commit of the store file
        puts the new files in place of the old ones (removed after it) and marks the
        batches fused, so a crash leaves the store as it was before or after the
        fusion; a batch a crash left unfused is fused by the next ingest.
        """
        pending = [b for b in self.info["batches"] if not b.get("fused", True)]
        if not pending:
            return
        new_files = [p for b in pending for p in b["files"] if p.startswith("activity/")]
        old = [p for p in committed_files(self.info) if p.startswith("activity/")]
        old = [p for p in old if p not in new_files]
        generation = self.reserve()
        replaced = self._fuse(new_files, old, f"{generation:06d}") if new_files else {}
        self._replace(replaced, [b["number"] for b in pending])

    def fuse_written(self, number: int, part: int | None) -> None:
        """Fuse the activity files just written (by one load) with the store as it is now.

        The store as it is now: the committed activity files (those this batch rewrote
        already, under their new names) and the earlier parts of this batch. A stored
        file whose values change is rewritten under a new name and listed in its place
        by this batch's commit; a part of this batch is replaced at once.
        """
        new_files, self.new_activity = self.new_activity, []
        view = {p for p in committed_files(self.info) if p not in self.replaced}
        view |= set(self.replaced.values()) | set(self.files)
        old = sorted(p for p in view if p.startswith("activity/") and p not in new_files)
        if new_files and old:  # (one load alone was fused whole by the loader)
            tag = f"{number:06d}" if part is None else f"{number:06d}-{part:04d}"
            for before, after in self._fuse(new_files, old, tag).items():
                stored = next((c for c, n in self.replaced.items() if n == before), None)
                self.file_keys.pop(before, None)
                if before in self.files:  # written by this batch: replaced at once
                    del self.files[before]
                    (self.root / before).unlink(missing_ok=True)
                    if stored is not None:  # a stored file this batch rewrote before
                        self.replaced[stored] = after
                else:
                    self.replaced[before] = after
        self.in_memory = {}

    def _fuse(self, new_files: list[str], old: list[str], tag: str) -> dict[str, str]:
        """Fuse new activity files with the old ones; write what changes (names: ``tag``)."""
        from ..normalize.fusion import FUSE_READS, FUSED_COLUMNS, fuse

        schema = self.schemas["activity"]
        wanted = [c for c in FUSE_READS if schema is not None and c in schema.names]
        if schema is None or "call_id" not in wanted:
            return {}
        projected = pa.schema([schema.field(c) for c in wanted])
        key_columns = [c for c in KEY_COLUMNS if c in schema.names]
        parts = [conform(self._new_rows(p, wanted), projected) for p in new_files]
        new = pa.concat_tables(parts)
        chosen, suppliers = self._involved(old, key_columns, keys_of(new))
        taken: list[tuple[str, pa.Table, np.ndarray, np.ndarray]] = []
        for i, relative in enumerate(old):
            write = chosen.get(relative)
            rows = np.zeros(0, dtype=np.int64) if write is None else np.flatnonzero(write)
            extra = suppliers.get(i, np.zeros(0, dtype=np.int64))
            if not len(rows) and not len(extra):
                continue
            table = conform(self._read(relative, wanted), projected)
            selected = np.zeros(table.num_rows, dtype=bool)
            selected[rows] = True
            selected[extra] = True
            selected = same_records(table, selected)
            picked = np.flatnonzero(selected)
            written = np.isin(picked, rows)
            taken.append((relative, table.take(pa.array(picked)), picked, written))
        subset = pa.concat_tables([new, *(t for _, t, _, _ in taken)])
        fused = fuse(subset.unify_dictionaries().combine_chunks())
        replaced: dict[str, str] = {}
        offset = 0
        for relative, part in zip(new_files, parts, strict=True):
            values = fused.slice(offset, part.num_rows)
            offset += part.num_rows
            changes = _changes(part, values, None, wanted, FUSED_COLUMNS)
            if changes:
                replaced[relative] = self._rewrite(relative, changes, tag)
        for relative, part, picked, written in taken:
            values = fused.slice(offset, part.num_rows)
            offset += part.num_rows
            if written.any():
                stored = self._read(relative, [c for c in FUSED_COLUMNS if c in wanted])
                changes = _changes(stored, values, (picked, written), wanted, FUSED_COLUMNS)
                if changes:
                    replaced[relative] = self._rewrite(relative, changes, tag)
        return replaced

    def _new_rows(self, relative: str, columns: list[str]) -> pa.Table:
        """Return a new activity file's columns (from memory when this ingest wrote it)."""
        table = self.in_memory.get(relative)
        if table is None:
            return self._read(relative, columns)
        return table.select([c for c in columns if c in table.column_names])

    def _involved(
        self, old: list[str], key_columns: list[str], new: Keys
    ) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray]]:
        """Find the stored rows the new rows can change, and those that can name them.

        Returns file -> rows to fuse again (with all rows of their request ids), and
        file number -> the latest rows that can name them or the new rows. One pass
        over the key columns of every stored file, and another only when the rows found
        bring request ids or keys to look up that the new rows did not have.
        """
        chosen: dict[str, np.ndarray] = {}
        latest = Latest()
        requests, searched = (
            new.requests,
            Keys(needed_keys=new.needed_keys, needed_principals=new.needed_principals),
        )
        extra_requests, extra = new.requests[:0], searched
        first = True
        while (
            first or len(extra_requests) or len(extra.needed_keys) or len(extra.needed_principals)
        ):
            found = []
            hashed_new, hashed_extra = HashedKeys.of(new if first else Keys()), HashedKeys.of(extra)
            hashed_requests = hashes(extra_requests)
            for i, relative in enumerate(old):
                table, index = None, self.file_keys.get(relative)
                if index is None:  # first seen by this ingest: read once, its hashes kept
                    table = self._read(relative, key_columns)
                    index = self.file_keys[relative] = FileKeys.of(table)
                look = (
                    index.may_involve(hashed_new) if first else index.may_request(hashed_requests)
                )
                supply = index.may_supply(hashed_extra)
                if not look and not supply:  # no row of it can be found: not read
                    continue
                table = self._read(relative, key_columns) if table is None else table
                rows = chosen.get(relative, np.zeros(table.num_rows, dtype=bool))
                if look:
                    rows = rows | (
                        involved(table, new) if first else in_requests(table, extra_requests)
                    )
                    if rows.any():
                        chosen[relative] = rows
                        found.append(keys_of(table, rows))
                if supply:
                    latest.add(i, supplier_keys(table, extra))
            first = False
            everything = Keys()
            for keys in found:
                everything.requests = union(everything.requests, keys.requests)
                everything.need(keys)
            extra_requests = _without(everything.requests, requests)
            requests = union(requests, extra_requests)
            extra = Keys(
                needed_keys=_without(everything.needed_keys, searched.needed_keys),
                needed_principals=_without(
                    everything.needed_principals, searched.needed_principals
                ),
            )
            searched.need(extra)
        return chosen, latest.chosen()

    def _rewrite(self, relative: str, changes: dict[str, pa.Array], tag: str) -> str:
        """Write an activity file with changed fused columns under a new name; that name."""
        table = rewritten(self.root, relative, changes)
        where, _, name = relative.rpartition("/")
        renamed = f"{where}/{name.split('.')[0]}.fused-{tag}.parquet"
        self.put_table(renamed, table)
        return renamed

    def _replace(self, replaced: dict[str, str], fused: list[int]) -> None:
        """Commit the rewritten files in place of the old ones; mark the batches fused."""
        for folder in self.folders:
            sync_folder(folder)
        for batch in self.info["batches"]:
            for old, new_name in replaced.items():
                if old in batch["files"]:
                    del batch["files"][old]
                    batch["files"][new_name] = self.files[new_name]
            if batch["number"] in fused:
                batch["fused"] = True
        self._count_calls()
        commit_info(self.root, self.info)
        for old in replaced:
            (self.root / old).unlink(missing_ok=True)
            self.file_keys.pop(old, None)
        self.files, self.folders = {}, set()

    def _read(self, relative: str, columns: list[str] | None) -> pa.Table:
        """Read one committed Parquet file; a damaged one is named, not raised raw."""
        try:
            return read_table(self.root, relative, columns)
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(self.root, [relative], committed_files(self.info), exc) from None

    def record_ingest(self, report: IngestReport, sources: list[str]) -> None:
        entry = asdict(report)
        entry.update(
            at=datetime.now(UTC).isoformat(timespec="seconds"),
            loader_version=__version__,
            sources=sources,
        )
        self.info["ingests"].append(entry)
        self.info["loader_versions"] = sorted({*self.info["loader_versions"], __version__})
        commit_info(self.root, self.info)


# -- helpers ---------------------------------------------------------------------------------


def _without(values: pa.Array, known: pa.Array) -> pa.Array:
    """Return the values that are not in ``known``."""
    if not len(values) or not len(known):
        return values
    return values.filter(pc.invert(pc.is_in(values, value_set=known)))


def _repeats(column: pa.ChunkedArray) -> bool:
    """Tell whether a text column's values repeat (most rows share a value; sampled)."""
    if not (
        pa.types.is_dictionary(column.type)
        or pa.types.is_string(column.type)
        or pa.types.is_large_string(column.type)
    ):
        return False
    n = len(column)
    if n < 64:
        return True
    sample = plain(column.take(pa.array(np.linspace(0, n - 1, min(n, 2048)).astype(np.int64))))
    return pc.count_distinct(sample).as_py() * 4 < len(sample)


def _changes(
    stored: pa.Table,
    fused: pa.Table,
    rows: tuple[np.ndarray, np.ndarray] | None,
    wanted: list[str],
    columns: Sequence[str],
) -> dict[str, pa.Array]:
    """Return the fused columns of a file whose values change: name -> its new column.

    ``fused`` holds the file's rows (``rows`` None) or, for a stored file, the rows
    ``rows[0]`` of it, of which only those marked in ``rows[1]`` take the new values.
    """
    changes: dict[str, pa.Array] = {}
    for name in columns:
        if name not in wanted:
            continue
        old = plain(stored.column(name))
        new = plain(fused.column(name))
        if new.type != old.type:
            new = new.cast(old.type)
        if rows is not None:
            picked, written = rows
            index = np.arange(len(old))
            index[picked[written]] = len(old) + np.flatnonzero(written)
            new = pa.concat_arrays([old, new]).take(pa.array(index))
        if not old.equals(new):
            changes[name] = new
    return changes


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


def _is_special(ef: EvidenceFile) -> bool:
    """Tell whether discovery found a FIFO, socket, device or broken link (never opened)."""
    return not ef.members and not ef.regular


def _special_row(ef: EvidenceFile) -> dict[str, Any]:
    """Return the manifest row of a path that is not a regular file: skipped, with why."""
    return {
        "path": ef.display,
        "sha256": None,
        "bytes": 0,
        "format": "unknown",
        "records_read": 0,
        "records_loaded": 0,
        "records_rejected": 0,
        "duplicates": 0,
        "status": "skipped",
        "reason": ef.problem or "not a regular file: not read",
    }


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


def _merged_facts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the facts of a batch written in parts."""
    starts = [p["start"] for p in parts if p["start"]]
    ends = [p["end"] for p in parts if p["end"]]
    return {
        "kms": sum(p["kms"] for p in parts),
        "actiontrail": sum(p["actiontrail"] for p in parts),
        "calls": sum(p.get("calls", 0) for p in parts),
        "start": min(starts, key=pd.Timestamp) if starts else None,
        "end": max(ends, key=pd.Timestamp) if ends else None,
        "accounts": sorted({a for p in parts for a in p["accounts"]}),
    }


def _whole_file(rows: pd.DataFrame, item: _Todo) -> pd.DataFrame:
    """Return the manifest row of a file read in chunks (one row per chunk given)."""
    whole = rows.iloc[[0]].copy()
    for column in ("records_read", "records_loaded", "records_rejected", "duplicates",
                   "decompressed_bytes"):  # fmt: skip
        if column in rows:
            whole[column] = rows[column].sum()
    with open(item.path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    whole["sha256"] = item.digest
    whole["bytes"] = item.path.stat().st_size
    if "compression" in whole:
        whole["compression"] = "gzip" if gzipped else "none"
    read, loaded, rejected, duplicates = (
        int(whole[c].iloc[0])
        for c in ("records_read", "records_loaded", "records_rejected", "duplicates")
    )
    if not read:
        whole["status"] = "empty"
    elif rejected and not loaded:
        whole["status"] = "rejected"
    elif rejected or "partial" in set(rows["status"].astype(str)):
        whole["status"] = "partial"
    elif duplicates and not loaded:
        whole["status"] = "duplicates-only"
    else:
        whole["status"] = "loaded"  # as kf.load sets it for the whole file
    if "reason" in rows:
        reasons = [r for r in dict.fromkeys(rows["reason"].dropna().astype(str)) if r]
        whole["reason"] = "; ".join(reasons) if reasons else whole["reason"]
    return whole


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


def _day_rows(times: pd.Series) -> list[tuple[str, np.ndarray]]:
    """Return each UTC day of ``times`` (as :func:`~.layout.days_of` names it) and its rows.

    Days come in the order of their names, rows in their order in ``times``; one sort
    of the day numbers, rather than a pass over every row per day.

    Examples
    --------
    >>> times = pd.Series(pd.to_datetime(["2026-03-02 10:00", None, "2026-03-01 09:00",
    ...                                   "2026-03-02 23:59"], utc=True))
    >>> [(day, rows.tolist()) for day, rows in _day_rows(times)]
    [('2026-03-01', [2]), ('2026-03-02', [0, 3]), ('none', [1])]
    """
    values = times.to_numpy("datetime64[ns]")
    numbers = values.astype("datetime64[D]").view("int64")
    order = np.argsort(numbers, kind="stable")
    starts = np.flatnonzero(np.r_[True, numbers[order][1:] != numbers[order][:-1]])
    groups = np.split(order, starts[1:]) if len(order) else []
    named = [(days_of(times.iloc[rows[:1]])[0], rows) for rows in groups]
    return sorted(named, key=lambda pair: pair[0])


def _estimate(path: Path) -> int:
    return max(estimate_size(path), 1)


def _batches(files: Sequence[_Todo], limit: int) -> Iterator[list[_Todo]]:
    """Group files into batches of about ``limit`` bytes; a larger file is a batch alone."""
    batch: list[_Todo] = []
    size = 0
    for item in files:
        if batch and (size + item.size > limit or item.size > limit):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.size
    if batch:
        yield batch
