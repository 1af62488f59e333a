"""``kf.load``: evidence files in, a typed :class:`~kmsforensics.case.Case` out.

The steps, for each file in a stable (sorted) order:

1. read it, fingerprint it (SHA-256) and decompress it within the size bound
   (threads: hashing and inflating release the GIL, so many files use every core);
2. sniff its shape and split it into records (the shape registry,
   :mod:`kmsforensics.formats`);
3. in batches, classify every record and hand it to its kind (the record-kind
   registry, :mod:`kmsforensics.sources`): envelopes are unwrapped, sources
   extracted with duckdb (:mod:`kmsforensics.extract`) and typed;

and at the end drop duplicate events (same ``eventId`` / ``request_id``, time and
name), build the activity frame, and reconcile the counts of every file.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from . import formats
from ._version import __version__
from .case import Case
from .errors import (
    DecompressionLimitError,
    KmsForensicsError,
    LogParseError,
    ParseWarning,
    UnknownFormatError,
    UnreadableEvidenceError,
)
from .evidence import (
    DEFAULT_MAX_BYTES,
    DEFLATE_MAX_RATIO,
    GZIP_MAGIC,
    ZIP_EMPTY_MAGIC,
    ZIP_MAGIC,
    EvidenceFile,
    discover,
    gunzip,
    inflate_head,
)
from .extract import Extracted, Extractor
from .formats import RECORDS_SCHEMA, SHAPES, Split, sniff, stream
from .formats.encoding import foreign_bom, to_utf8
from .formats.fast import count_by_file, fast_path_ok, read_json_arrays
from .formats.jsontext import split_json_array
from .formats.stream import LinePieces
from .issues import IssueLog
from .normalize import combine_activity
from .normalize.values import combine_encoded, encode_batch, share_text, to_frame
from .schema import MANIFEST_COLUMNS, MANIFEST_COUNTS, TEXT_COLUMNS
from .sources import Options
from .sources import sources as source_kinds

#: Decompressed JSON text handed to one extraction batch.
BATCH_BYTES = 128 * 1024 * 1024
#: Above this many chunks (one a file, for small files) a batch's records are joined
#: into one chunk before extraction (a copy of at most BATCH_BYTES), as duckdb's
#: memory grows with the number of chunks it scans (about 100 KB each: 50 MB at
#: most). A batch of 1,000-event OSS files (about 100 chunks) is not copied.
MAX_CHUNKS = 512
#: Records extracted at once; the typing of one slice overlaps the next one's extraction.
SLICE_ROWS = 250_000
#: Content (decompressed, estimated) and files read ahead of the extraction.
PREFETCH_BYTES = 128 * 1024 * 1024
PREFETCH_FILES = 256
_HEAD_BYTES = 65536
#: Seconds a load runs before its progress bar appears.
_PROGRESS_DELAY = 0.5
#: The frames of a case, by source label, in the order activity rows are combined.
CASE_SOURCES: tuple[str, ...] = ("kms", "actiontrail")


@dataclass
class Prepared:
    """A file read, fingerprinted and split (or deferred to the fast array reader)."""

    ef: EvidenceFile
    issues: IssueLog
    sha256: str = ""
    size: int = 0
    decompressed: int | None = None
    compression: str = "none"
    shape: str | None = None
    reason: str = ""
    split: Split | None = None
    deferred: bool = False
    archive: bool = False
    damage: str | None = None
    estimate: int = 0
    #: A large gzip JSON-lines file, read piece by piece (its pieces are not listed).
    pieces: LinePieces | None = None


#: Openers tried by :func:`load` before it reads evidence: each takes the sources and
#: the options and returns a Case, or None when the sources are not its kind. The case
#: store registers one for its folders (``kf.load(CASE_DIR)``, kept one release), the
#: dask engine one for ``engine="dask"``; the loader imports neither.
OPENERS: list[Callable[[Sequence[str | os.PathLike[str]], dict[str, Any]], Case | None]] = []


@dataclass
class _Counts:
    read: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)


def load(
    *sources: str | os.PathLike[str],
    strict: bool = False,
    progress: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    column_map: dict[str, str] | None = None,
    workers: int | None = None,
    engine: str = "pandas",
    columns: Sequence[str] | None = None,
    assume_timezone: str | None = None,
) -> Case:
    """Load KMS access logs and ActionTrail events into a :class:`Case`.

    Parameters
    ----------
    *sources : str or path-like
        Files, folders (walked recursively) and globs (``**`` allowed). Plain, gzip
        and zip files; every supported shape, recognised by content, in any mix.
    strict : bool, default False
        False: every bad record is kept in ``case.issues`` and the rest loads.
        True: the first bad record raises :class:`~kmsforensics.LogParseError` and
        a file that is not a supported log raises
        :class:`~kmsforensics.UnknownFormatError`.
    progress : bool, default True
        Show a progress bar (tqdm) when loading takes more than a moment.
    max_bytes : int, default 8 GiB
        Bound on the decompressed size of one file; beyond it
        :class:`~kmsforensics.DecompressionLimitError` is raised.
    column_map : dict, optional
        Renames for CSV header names (for example a console download's headers to
        the log's own field names).
    workers : int, optional
        Threads for reading and parsing; default: every core.
    engine : {"pandas", "dask"}, default "pandas"
        ``"dask"``: the frames are dask DataFrames, one partition per day, computed on
        the active ``dask.distributed`` Client (or a local cluster). Evidence is first
        ingested into a temporary case store.
    columns : list of str, optional
        On a case store: read only these columns (with time, source and provenance).
        A case store given to ``kf.load`` is opened for one more release, with a
        ``FutureWarning``: use :func:`kmsforensics.open`.
    assume_timezone : str, optional
        The zone (IANA name, such as ``"Asia/Shanghai"``) of times written without
        one, as in console exports in local time. By default they are read as UTC,
        and ``case.issues`` has a note for each file that has such times.

    Returns
    -------
    Case

    Examples
    --------
    >>> import kmsforensics as kf
    >>> case = kf.load(kf.datasets.path("vendor-samples"), progress=False)  # doctest: +SKIP
    >>> case.activity[["time", "source", "identity_type", "action"]].head()  # doctest: +SKIP
    """
    if not sources:
        raise ValueError("kf.load needs at least one file, folder or glob")
    if engine not in ("pandas", "dask"):
        raise ValueError(f"engine must be 'pandas' or 'dask', not {engine!r}")
    options = {"strict": strict, "progress": progress, "max_bytes": max_bytes,
               "column_map": column_map, "engine": engine, "columns": columns}  # fmt: skip
    if engine != "pandas" and assume_timezone is not None:
        raise ValueError(
            "assume_timezone is not yet passed to the case store: load with "
            "engine='pandas', or convert the times before ingesting"
        )
    for opener in OPENERS:  # a case store, or another engine, before reading evidence
        opened = opener(sources, options)
        if opened is not None:
            return opened
    if engine != "pandas":
        raise ValueError(f"engine={engine!r} is not available (is its module installed?)")
    if columns is not None:
        raise ValueError("columns= applies to a case store (kf.load(CASE_DIR, columns=...))")
    zone = _checked_zone(assume_timezone)
    return _load(sources, strict, progress, max_bytes, column_map, workers, {}, zone)


def load_hashed(
    files: dict[str, str],
    *,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    column_map: dict[str, str] | None = None,
) -> Case:
    """Load files whose SHA-256 the caller has computed already (``kf.ingest``'s entry point).

    Parameters
    ----------
    files : dict
        File path -> SHA-256 of its bytes; each file is read once and not hashed again.
    strict, max_bytes, column_map
        As for :func:`load`.
    """
    return _load(list(files), strict, False, max_bytes, column_map, None, files)


def _load(
    sources: Sequence[str | os.PathLike[str]],
    strict: bool,
    progress: bool,
    max_bytes: int,
    column_map: dict[str, str] | None,
    workers: int | None,
    known: dict[str, str],
    assume_timezone: str | None = None,
) -> Case:
    workers = workers or os.cpu_count() or 1
    files = discover(sources)
    issues = IssueLog()  # a strict load raises the first problem of each batch itself
    con = duckdb.connect(config={"threads": workers, "autoinstall_known_extensions": False})
    con.execute("SET enable_progress_bar = false")
    try:
        options = Options(assume_timezone=assume_timezone)
        loader = _Loader(con, issues, strict, max_bytes, column_map, workers, options)
        loader.known_sha256 = known
        return loader.run(files, progress)
    finally:
        con.close()


class _Loader:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        issues: IssueLog,
        strict: bool,
        max_bytes: int,
        column_map: dict[str, str] | None,
        workers: int,
        options: Options | None = None,
    ) -> None:
        self.con = con
        self.issues = issues
        self.strict = strict
        self.max_bytes = max_bytes
        self.column_map = column_map
        self.workers = workers
        self.options = options or Options()
        self.known_sha256: dict[str, str] = {}  # path -> SHA-256 computed by the caller
        #: AAP configuration exports found among the evidence (see _keep_aap_config).
        self.aap_config: list[pa.Table] = []
        self.extractor = Extractor(con, issues)
        #: Typed tables and activity tables of each source, batch by batch.
        self.typed: dict[str, list[pa.Table]] = {label: [] for label in CASE_SOURCES}
        self.activity: dict[str, list[pa.Table]] = {label: [] for label in CASE_SOURCES}
        self.pending: list[Future[None]] = []
        self.typing: ThreadPoolExecutor
        self.counts = _Counts()
        self.prepared: list[Prepared] = []

    # -- the whole load -------------------------------------------------------------

    def run(self, files: Sequence[EvidenceFile], progress: bool) -> Case:
        batch: list[Prepared] = []
        batch_bytes = 0
        limit = BATCH_BYTES
        bar = tqdm(
            total=len(files),
            unit="file",
            desc="kmsforensics.load",
            disable=not progress,
            delay=_PROGRESS_DELAY,
            leave=False,
        )
        with bar, ThreadPoolExecutor(1) as self.typing:
            try:
                for item in self._prepare_all(files):
                    self.prepared.append(item)
                    self.issues.extend(item.issues)
                    for part in self._pieces(item):
                        batch.append(part)
                        batch_bytes += part.decompressed or 0
                        if batch_bytes >= limit:
                            self._flush(batch)
                            batch, batch_bytes = [], 0
                    if item.split is not None or item.deferred:
                        batch.append(item)
                        batch_bytes += item.decompressed or item.estimate
                    if batch_bytes >= limit:
                        self._flush(batch)
                        batch, batch_bytes = [], 0
                    bar.update(1)
            except KmsForensicsError:
                if self.strict:  # a problem in the files before this one comes first
                    self._flush(batch)
                raise
            self._flush(batch)
            for future in self.pending:
                future.result()
        return self._finish()

    def _prepare_all(self, files: Sequence[EvidenceFile]) -> Iterator[Prepared]:
        """Prepare files in threads, ahead of use, yielding them in order.

        Up to :data:`PREFETCH_BYTES` of content are read ahead, so the
        next batch is being read and split while the current one is extracted.
        """
        with ThreadPoolExecutor(self.workers) as pool:
            window: list[tuple[Future[Prepared], int]] = []
            in_flight = 0
            for ef in files:
                size = _content_estimate(ef)
                window.append((pool.submit(self._prepare, ef), size))
                in_flight += size
                while window and (in_flight > PREFETCH_BYTES or len(window) > PREFETCH_FILES):
                    future, done = window.pop(0)
                    in_flight -= done
                    yield future.result()
            for future, _ in window:
                yield future.result()

    def _prepare(self, ef: EvidenceFile) -> Prepared:
        item = Prepared(ef, IssueLog(self.strict))
        if ef.problem is not None:
            return self._not_read(item, ef.problem)
        try:
            raw = ef.raw_bytes(self.max_bytes)
        except UnreadableEvidenceError as exc:
            return self._not_read(item, exc.reason)
        item.sha256 = self.known_sha256.get(ef.display) or hashlib.sha256(raw).hexdigest()
        item.size = len(raw)
        if raw[:4] in (ZIP_MAGIC, ZIP_EMPTY_MAGIC):
            item.archive = True
            return item
        gzipped = raw[:2] == GZIP_MAGIC
        item.compression = "gzip" if gzipped else "none"
        head = inflate_head(raw, _HEAD_BYTES) if gzipped else raw[:_HEAD_BYTES]
        first = sniff(head, self.column_map).shape
        if (
            first is not None
            and formats.get(first).fast
            and ef.on_disk
            and fast_path_ok(str(ef.path))
            and foreign_bom(head) is None
            and len(raw) * (DEFLATE_MAX_RATIO if gzipped else 1) <= self.max_bytes
        ):
            item.shape, item.deferred = first, True
            item.estimate = (
                max(int.from_bytes(raw[-4:], "little"), len(raw)) if gzipped else len(raw)
            )
            return item
        if (
            first == "json-lines"
            and gzipped
            and len(raw) >= stream.STREAM_MIN_BYTES
            and foreign_bom(head) is None
        ):
            item.shape = first
            item.pieces = LinePieces(raw, ef.display, self.max_bytes, self.strict)
            return item
        data = self._content(item, raw, item.issues)
        item.decompressed = len(data)
        sniffed = sniff(data[:_HEAD_BYTES], self.column_map)
        item.shape, item.reason = sniffed.shape, sniffed.reason
        if sniffed.shape is None:
            if self.strict:
                raise UnknownFormatError(ef.display, sniffed.reason, SHAPES)
            return item
        shape = formats.get(sniffed.shape)
        item.split = shape.split(data, ef.display, item.issues, sniffed, self.column_map or {})
        return item

    def _pieces(self, item: Prepared) -> Iterator[Prepared]:
        """Yield the pieces of a file read piece by piece, each as a part to extract.

        The next piece is inflated and split on another thread while the caller
        extracts this one. At the end the file's size and any damage are set on
        ``item`` (the parts share its name and are counted under it).
        """
        if item.pieces is None:
            return
        pieces = iter(item.pieces)
        with ThreadPoolExecutor(1) as reader:
            ahead = reader.submit(next, pieces, None)
            while (found := ahead.result()) is not None:
                ahead = reader.submit(next, pieces, None)
                split, size, issues = found
                self.issues.extend(issues)
                yield Prepared(item.ef, issues, split=split, decompressed=size)
        item.decompressed, item.damage = item.pieces.decompressed, item.pieces.damage
        item.split = Split("json-lines", "line", RECORDS_SCHEMA.empty_table(), 0)
        item.pieces = None
        if item.damage is not None:
            if self.strict:
                raise LogParseError(item.ef.display, None, item.damage)
            self.issues.add(item.ef.display, None, "note", None, item.damage)

    def _not_read(self, item: Prepared, reason: str) -> Prepared:
        """List a file that is not read (raise, with ``strict``), fingerprinted if it can be."""
        if self.strict:
            raise UnreadableEvidenceError(item.ef.display, reason)
        item.reason = reason
        if item.ef.regular:
            with contextlib.suppress(UnreadableEvidenceError, DecompressionLimitError, OSError):
                raw = item.ef.raw_bytes(self.max_bytes)
                item.sha256, item.size = hashlib.sha256(raw).hexdigest(), len(raw)
        return item

    def _content(self, item: Prepared, raw: bytes, issues: IssueLog) -> bytes:
        """Decompress a file's bytes (if gzip), within the bound; report any damage."""
        if raw[:2] != GZIP_MAGIC:
            if len(raw) > self.max_bytes:
                raise DecompressionLimitError(item.ef.display, self.max_bytes)
            return to_utf8(raw, item.ef.display, issues)
        data, item.damage = gunzip(raw, self.max_bytes, item.ef.display)
        if item.damage is not None:
            if self.strict:
                raise LogParseError(item.ef.display, None, item.damage)
            issues.add(item.ef.display, None, "note", None, item.damage)
        return to_utf8(data, item.ef.display, issues)

    # -- batches --------------------------------------------------------------------

    def _flush(self, batch: list[Prepared]) -> None:
        """Extract a batch; with ``strict``, raise its first problem (file, then record order)."""
        self._extract_batch(batch)
        if self.strict:
            self.issues.raise_first_problem({p.ef.display: i for i, p in enumerate(self.prepared)})

    def _extract_batch(self, batch: list[Prepared]) -> None:
        if not batch:
            return
        deferred = [p for p in batch if p.deferred]
        parts = self._read_deferred(deferred)
        for item in batch:
            if any(item is d for d in deferred):
                continue
            assert item.split is not None
            self.counts.read[item.ef.display] += item.split.read
            records = item.split.records
            if records.num_rows:
                parts.append(
                    records.add_column(
                        0, "source_file", _constant(item.ef.display, records.num_rows)
                    )
                )
        parts = [p for p in parts if p.num_rows]
        for item in batch:  # the records (and the content under them) are not needed again
            if item.split is not None:
                item.split.records = RECORDS_SCHEMA.empty_table()
        if not parts:
            return
        records = pa.concat_tables(parts)
        if records.column("json").num_chunks > MAX_CHUNKS:  # many small files
            records = records.combine_chunks()
        del parts
        # A large batch (one big file, say) is extracted slice by slice, so that one
        # slice is typed on the other core while duckdb extracts the next.
        for start in range(0, records.num_rows, SLICE_ROWS):
            extracted = self.extractor.run(records.slice(start, SLICE_ROWS))
            self.counts.read.update(extracted.extra_records)
            self._keep_aap_config(extracted)
            if self.strict:  # the first problem must surface first: no overlap
                self._normalize(extracted)
            else:  # type this slice while the next one is read and extracted
                self.pending.append(self.typing.submit(self._normalize, extracted))
            del extracted

    def _normalize(self, extracted: Extracted) -> None:
        """Type one batch and map it to activity rows (runs on one thread, in order).

        Both are dictionary-encoded straight away (every text column but ids and raw
        JSON), so a batch's repeated strings are held once, not once per row; text
        columns the activity rows repeat from the typed rows (ids, addresses) share
        the typed rows' copy (:func:`~kmsforensics.normalize.values.share_text`).
        """
        for label in CASE_SOURCES:
            source = source_kinds()[label]
            raws = extracted.raw.pop(label, [])
            while raws:
                typed = source.normalise(raws.pop(0), self.issues, self.options)
                activity = encode_batch(source.activity(typed), TEXT_COLUMNS)
                typed = share_text(encode_batch(typed, TEXT_COLUMNS))
                self.activity[label].append(share_text(activity, typed))
                self.typed[label].append(typed)
                del typed, activity
        extracted.raw.clear()  # the raw columns are not needed again
        _release_freed_memory()

    def _read_deferred(self, items: list[Prepared]) -> list[pa.Table]:
        """Split JSON arrays on disk with the fast reader; fall back file by file."""
        if not items:
            return []
        tables = []
        for compression in sorted({p.compression for p in items}):
            group = [p for p in items if p.compression == compression]
            tables.extend(self._read_arrays(group, compression))
        return tables

    def _read_arrays(self, items: list[Prepared], compression: str) -> list[pa.Table]:
        tables = []
        bulk = read_json_arrays(self.con, [str(p.ef.path) for p in items], compression)
        for item in items:
            if bulk is None:
                table = read_json_arrays(self.con, [str(item.ef.path)], compression)
                if table is not None:
                    tables.append(table)
                    self.counts.read[item.ef.display] += table.num_rows
                    item.split = Split("json-array", "index", RECORDS_SCHEMA.empty_table(), 0)
                    continue
                tables.append(self._read_exactly(item))
            else:
                item.split = Split("json-array", "index", RECORDS_SCHEMA.empty_table(), 0)
        if bulk is not None:
            tables.append(bulk)
            self.counts.read.update(count_by_file(bulk))
        return tables

    def _read_exactly(self, item: Prepared) -> pa.Table:
        """Read a JSON array the fast reader refused, naming each damaged element."""
        data = self._content(item, item.ef.raw_bytes(self.max_bytes), self.issues)
        item.decompressed = len(data)
        item.split = split_json_array(data, item.ef.display, self.issues)
        item.deferred = False
        self.counts.read[item.ef.display] += item.split.read
        records = item.split.records
        return records.add_column(0, "source_file", _constant(item.ef.display, records.num_rows))

    # -- the end: dedupe, activity, manifest ---------------------------------------------

    def _finish(self) -> Case:
        frames: dict[str, pa.Table] = {}
        parts = []
        for label in CASE_SOURCES:
            source = source_kinds()[label]
            typed = combine_encoded(self.typed[label])
            if typed is None:
                typed = encode_batch(source.empty(self.issues, self.options), TEXT_COLUMNS)
            typed, keep = self._dedupe(typed, *source.dedupe)
            activity = combine_encoded(self.activity[label])
            if activity is None:
                activity = encode_batch(source.activity(typed), TEXT_COLUMNS)
            parts.append(_kept(activity, keep))
            frames[label] = typed
            self.typed[label], self.activity[label] = [], []
        # only `frames` and `parts` hold the tables now: to_frame frees each column
        # as it converts it (self_destruct), if nothing else holds its buffers
        del typed, activity, keep
        aap_exports = _concat(self.aap_config)
        manifest = self._manifest(frames, aap_exports)
        frames["activity"], order = combine_activity(parts)
        del parts
        case = Case(
            to_frame(frames.pop("kms")),
            to_frame(frames.pop("actiontrail")),
            _reordered(to_frame(frames.pop("activity")), order),
            _sorted_issues(self.issues.frame(), manifest),
            manifest,
            {
                "loader_version": __version__,
                "strict": self.strict,
                "max_bytes": self.max_bytes,
                "column_map": self.column_map,
                "assume_timezone": self.options.assume_timezone,
            },
            aap_exports.to_pandas() if aap_exports is not None else None,
        )
        self._warn(case)
        return case

    def _dedupe(
        self, table: pa.Table, key: str, time: str, name: str
    ) -> tuple[pa.Table, pa.Array | None]:
        """Drop repeated events; return the table and the mask of kept rows (None: all)."""
        keys = table.column(key)
        if pc.count_distinct(keys).as_py() == pc.count(keys).as_py():
            return table, None  # no id appears twice: nothing to drop or to note
        frame = table.select([key, time, name, "source_file", "source_record"]).to_pandas()
        # "first" means first in discovery order (files sorted), whichever reader read it
        rank = {item.ef.display: i for i, item in enumerate(self.prepared)}
        frame["_rank"] = frame["source_file"].astype(str).map(rank)
        frame = frame.sort_values(["_rank", "source_record"], kind="stable")
        has_key = frame[key].notna() & (frame[key] != "")
        repeated = has_key & frame.duplicated(key, keep=False)
        frame["_content"] = ""
        frame.loc[repeated, "_content"] = _content_digests(table, frame.index[repeated])
        same = frame[has_key].duplicated([key, time, name, "_content"], keep="first")
        duplicate = pd.Series(False, index=frame.index)
        duplicate[same.index] = same
        if duplicate.any():
            self.counts.duplicates.update(frame.loc[duplicate, "source_file"].tolist())
        clash = frame[has_key & ~duplicate]
        clash = clash[clash.duplicated(key, keep=False)]
        for _, group in clash.groupby(key, sort=False):
            first = group.iloc[0]
            for index, row in group.iloc[1:].iterrows():
                if (row[time], row[name]) == (first[time], first[name]):
                    fields = ", ".join(_differing(table, first.name, index)) or "?"
                    what = f"has the same time and name but different content ({fields})"
                else:
                    what = "is also used by a different event"
                self.issues.add(
                    row["source_file"],
                    int(row["source_record"]),
                    "note",
                    key,
                    f"{key} {row[key]!r} {what} "
                    f"({first['source_file']}, record {first['source_record']}); both kept",
                )
        keep = pa.array(~duplicate.sort_index().to_numpy())
        return table.filter(keep), keep

    def _keep_aap_config(self, extracted: Extracted) -> None:
        """Keep the AAP configuration exports of a batch (a record kind of their own).

        They are saved KMS API responses, not log records: they go to
        ``case.aap_exports`` as JSON text with their provenance, for ``kf.aap_config``.
        """
        self.aap_config += [t for t in extracted.aap_config if t.num_rows]

    def _manifest(
        self, frames: dict[str, pa.Table], aap_exports: pa.Table | None = None
    ) -> pd.DataFrame:
        loaded: Counter[str] = Counter()
        kinds: dict[str, set[str]] = {}
        for name in aap_exports.column("source_file").to_pylist() if aap_exports else []:
            loaded[name] += 1
            kinds.setdefault(name, set()).add("aap-config")
        for label, table in frames.items():
            if not table.num_rows:
                continue
            files = table.column("source_file").combine_chunks()
            sls = (
                pc.is_valid(table.column("__topic__")).combine_chunks()
                if "__topic__" in table.column_names
                else pa.array([False] * table.num_rows)
            )
            counts = (
                pa.table({"f": files, "s": sls})
                .group_by(["f", "s"])
                .aggregate([([], "count_all")])
                .to_pylist()
            )
            for row in counts:
                loaded[row["f"]] += row["count_all"]
                kinds.setdefault(row["f"], set()).add(label + ("-sls" if row["s"] else ""))
        rejected = self.issues.rejected_by_file()
        rows = []
        for item in self.prepared:
            name = item.ef.display
            read = self.counts.read[name]
            row = {
                "path": name,
                "sha256": item.sha256,
                "bytes": item.size,
                "format": _format(item, kinds.get(name, set())),
                "records_read": read,
                "records_loaded": loaded[name],
                "records_rejected": rejected[name],
                "duplicates": self.counts.duplicates[name],
                "status": "",
                "compression": item.compression,
                "decompressed_bytes": item.decompressed,
                "record_unit": item.split.record_unit if item.split else None,
                "reason": item.reason or (item.damage or ""),
            }
            row["status"] = _status(item, row)
            if item.split is not None and read != (
                row["records_loaded"] + row["records_rejected"] + row["duplicates"]
            ):
                self.issues.add(
                    name,
                    None,
                    "note",
                    None,
                    "internal check failed: records read do not equal loaded + "
                    "rejected + duplicates; please report this file to the "
                    "kmsforensics maintainers",
                )
            rows.append(row)
        frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
        for column in MANIFEST_COUNTS:
            frame[column] = frame[column].astype("Int64")
        return frame

    def _warn(self, case: Case) -> None:
        skipped = case.manifest[case.manifest["status"] == "skipped"]
        counts = self.issues.counts()
        if not (len(skipped) or counts["record"] or counts["field"]):
            return
        parts = []
        if counts["record"]:
            files = len(self.issues.rejected_by_file())
            parts.append(f"{counts['record']:,} records not loaded (in {files:,} files)")
        if counts["field"]:
            parts.append(f"{counts['field']:,} fields left empty or repaired")
        if len(skipped):
            names = ", ".join(skipped["path"].head(3))
            more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
            parts.append(f"{len(skipped):,} files skipped as not a supported log ({names}{more})")
        warnings.warn(
            "kmsforensics.load: " + "; ".join(parts) + ". See case.issues and case.manifest.",
            ParseWarning,
            stacklevel=3,
        )


#: Columns that do not tell two copies of an event apart (where and how each came).
_NOT_CONTENT = frozenset(
    {"source_file", "source_record", "source_item", "owner_id", "ingestion_time"}
)


def _content_columns(table: pa.Table) -> list[str]:
    """Return the columns of an event's content: not provenance, not SLS envelope fields."""
    return [n for n in table.column_names if n not in _NOT_CONTENT and not n.startswith("__")]


def _content_digests(table: pa.Table, rows: pd.Index) -> list[str]:
    """Digest each given row's content: copies are duplicates only if these match."""
    subset = table.select(_content_columns(table)).take(pa.array(rows.to_numpy()))
    frame = subset.to_pandas().astype(str)
    hashed = pd.util.hash_pandas_object(frame, index=False)
    return [f"{h:016x}" for h in hashed.tolist()]


def _differing(table: pa.Table, first: int, other: int) -> list[str]:
    """Name the content columns whose values differ between two rows."""
    names = _content_columns(table)
    a, b = (table.select(names).slice(i, 1).to_pylist()[0] for i in (first, other))
    return [n for n in names if a[n] != b[n]][:8]


def _sorted_issues(issues: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """Order issues like the manifest (file order), then by record; file-wide rows first."""
    order = {path: i for i, path in enumerate(manifest["path"])}
    rank = issues["source_file"].map(order).fillna(-1)
    keys = pd.DataFrame({"rank": rank, "record": issues["source_record"].fillna(-1)})
    return issues.loc[keys.sort_values(["rank", "record"], kind="stable").index].reset_index(
        drop=True
    )


def _content_estimate(ef: EvidenceFile) -> int:
    """Guess a file's decompressed size cheaply (gzip trailer), to pace the read-ahead."""
    if not ef.on_disk:
        return 0
    try:
        with open(ef.path, "rb") as fh:
            magic = fh.read(2)
            size = fh.seek(0, os.SEEK_END)
            if magic != GZIP_MAGIC or size < 18:
                return size
            fh.seek(-4, os.SEEK_END)
            return max(int.from_bytes(fh.read(4), "little"), size)
    except OSError:
        return 0


def _constant(value: str, length: int) -> pa.DictionaryArray:
    """Return a column holding one string ``length`` times, without copying it."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(length, dtype=np.int32)), pa.array([value], pa.string())
    )


def _format(item: Prepared, kinds: set[str]) -> str:
    if item.archive:
        return "zip"
    if item.shape is None:
        return "unknown"
    return item.shape + (":" + "+".join(sorted(kinds)) if kinds else "")


def _status(item: Prepared, row: dict[str, object]) -> str:
    if item.archive:
        return "archive"
    if item.split is None:
        return "skipped"
    if not row["records_read"]:
        return "empty"
    if row["records_rejected"] and not row["records_loaded"]:
        return "rejected"
    if row["records_rejected"] or item.damage:
        return "partial"
    if row["duplicates"] and not row["records_loaded"]:
        return "duplicates-only"
    return "loaded"


def _libc_malloc_trim() -> Callable[[int], int] | None:
    """Return glibc's ``malloc_trim``, or None where the C library has none."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    return trim


_MALLOC_TRIM = _libc_malloc_trim()


def _release_freed_memory() -> None:
    """Give the memory freed by a typed slice back to the system.

    A slice's raw columns and duckdb's work are freed once it is typed, but the
    allocators keep the pages for the thread that freed them (mimalloc for Arrow,
    glibc's per-thread arenas for duckdb and numpy), so a load's RSS grows by
    freed memory other threads cannot reuse: about 150 MB on a million ActionTrail
    events (peak RSS as benchmarks/bench_load.py measures it).
    """
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _reordered(frame: pd.DataFrame, order: pa.Array) -> pd.DataFrame:
    """Take the rows of ``frame`` in ``order``, column by column (``frame`` is emptied).

    Each column is dropped from ``frame`` as soon as its reordered copy is made, so
    at most one column is held twice, not the whole frame.
    """
    positions = order.to_numpy()
    columns: dict[str, pd.Series] = {}
    for name in list(frame.columns):
        columns[name] = frame[name].take(positions).reset_index(drop=True)
        del frame[name]
    return pd.DataFrame(columns, copy=False)


def _kept(table: pa.Table, keep: pa.Array | None) -> pa.Table:
    return table if keep is None else table.filter(keep)


def _concat(tables: list[pa.Table]) -> pa.Table | None:
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


def _checked_zone(name: str | None) -> str | None:
    """Check an IANA zone name early, with a message that says what is expected."""
    if name is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"assume_timezone={name!r} is not a known time zone; give an IANA name "
            "such as 'Asia/Shanghai' or 'UTC'"
        ) from exc
    return name
