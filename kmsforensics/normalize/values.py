"""Typed values from loose text: times, numbers, flags; compact column types.

Every parser returns the typed array and a mask of the values that were present
but could not be read, so that the caller reports them as issues instead of
dropping them silently.

Examples
--------
>>> import pyarrow as pa
>>> times, bad = parse_times(pa.array(["2023-07-04T01:52:55Z", "1688435575", "soon", None]))
>>> [str(t) for t in times.to_pylist()[:2]], bad.to_pylist()
(['2023-07-04 01:52:55+00:00', '2023-07-04 01:52:55+00:00'], [False, False, True, False])
>>> parse_flags(pa.array(["true", "False", "1", "maybe", None]))[0].to_pylist()
[True, False, True, None, None]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

UTC_NS = pa.timestamp("ns", tz="UTC")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
#: A text column becomes categorical when it has fewer distinct values than this
#: share of its rows.
CATEGORY_RATIO = 0.5


def present(values: pa.Array) -> pa.Array:
    """Return True where a text value is neither null nor empty."""
    return pc.fill_null(pc.not_equal(values, ""), False)


def blank_to_null(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Turn empty strings into nulls (cheaply for dictionary-encoded columns)."""
    if pa.types.is_dictionary(values.type):
        if isinstance(values, pa.ChunkedArray):
            return pa.chunked_array([blank_to_null(c) for c in values.chunks], values.type)
        blank = pc.indices_nonzero(pc.fill_null(pc.equal(values.dictionary, ""), False))
        if not len(blank):
            return values
        indices = pc.if_else(pc.is_in(values.indices, blank), None, values.indices)
        return pa.DictionaryArray.from_arrays(indices, values.dictionary)
    if not pc.any(pc.equal(values, "")).as_py():
        return values  # nothing to blank: no copy
    return pc.if_else(present(values), values, pa.scalar(None, values.type))


def per_value(
    values: pa.Array | pa.ChunkedArray, function: Callable[[pa.Array], pa.Array]
) -> pa.Array:
    """Apply ``function`` once per distinct value and map the results back to the rows.

    Log columns repeat few values, so this is far cheaper than working row by row.

    Examples
    --------
    >>> per_value(pa.array(["Kms", "Kms", None, "Sts"]), pc.utf8_lower).to_pylist()
    ['kms', 'kms', None, 'sts']
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = values if pa.types.is_dictionary(values.type) else values.dictionary_encode()
    return function(encoded.dictionary).take(encoded.indices)


def text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Plain text values of a (possibly dictionary-encoded) column."""
    return values.cast(pa.string()) if pa.types.is_dictionary(values.type) else values


def parse_times(values: pa.Array, assume_timezone: str | None = None) -> tuple[pa.Array, pa.Array]:
    """Parse ISO-8601 (any offset) or unix seconds/milliseconds (numbers or text).

    A time written without a zone is read in ``assume_timezone`` (UTC when
    ``None``; :func:`zoneless` tells which values had no zone).

    Returns the times as ``timestamp[ns, UTC]`` and a mask of present values that
    are not times: impossible dates (``2026-02-30``) and times outside the
    representable years 1677-2262 are bad values, never rolled over or raised.
    Fractions of a second are kept exactly, to the nanosecond.

    Examples
    --------
    >>> times, bad = parse_times(pa.array(
    ...     ["2026-02-30T10:00:00Z", "9999-12-31T23:59:59Z", "2026-03-01T10:00:00.250Z"]))
    >>> bad.to_pylist(), times.cast(pa.int64())[2].as_py() % 10**9  # nanoseconds
    ([True, True, False], 250000000)
    >>> parse_times(pa.array(["1688435575.25"]))[0].cast(pa.int64()).to_pylist()
    [1688435575250000000]
    >>> times, _ = parse_times(pa.array(["2020-12-01T11:54:59.366+0000", "1606823699366"]))
    >>> [str(t) for t in times.to_pylist()]
    ['2020-12-01 11:54:59.366000+00:00', '2020-12-01 11:54:59.366000+00:00']
    >>> times, _ = parse_times(pa.array(["2020-12-01 19:54:59"]), "Asia/Shanghai")
    >>> str(times[0])
    '2020-12-01 11:54:59+00:00'
    """
    values = values.cast(pa.string())
    times = pc.strptime(values, format="%Y-%m-%dT%H:%M:%SZ", unit="ns", error_is_null=True)
    times = _not_rolled_over(values, times.cast(UTC_NS))
    missing = pc.and_(pc.is_null(times), present(values))
    if pc.any(missing).as_py():
        times = _slow_times(values, times, missing, assume_timezone)
    bad = pc.and_(pc.is_null(times), present(values))
    return times, pc.fill_null(bad, False)


def _not_rolled_over(values: pa.Array, times: pa.Array) -> pa.Array:
    """Null the times whose text named a day the month does not have (Feb 30 -> Mar 2)."""
    suspect = pc.fill_null(pc.less_equal(pc.day(times), 3), False)
    if not pc.any(suspect).as_py():
        return times
    written = pc.utf8_slice_codeunits(values, 8, 10)
    rolled = pc.and_(suspect, pc.not_equal(written, pc.strftime(times, format="%d")))
    return pc.if_else(pc.fill_null(rolled, False), pa.scalar(None, UTC_NS), times)


#: Unix times: sign, whole seconds (or milliseconds), fraction; read exactly.
_UNIX_PARTS = r"^\s*(?P<sign>-?)(?P<whole>[0-9]{1,15})(?:\.(?P<frac>[0-9]*))?\s*$"
_MAX_SECONDS = 9_223_372_036  # int64 nanoseconds end in 2262


def zoneless(values: pa.Array) -> pa.Array:
    """Tell which values are written as a date and time without a zone (nor epoch).

    Examples
    --------
    >>> zoneless(pa.array(["2020-12-01 11:54:59", "2020-12-01T11:54:59Z",
    ...                    "2020-12-01T11:54:59+08:00", "1606823699", None])).to_pylist()
    [True, False, False, False, False]
    """
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    dated = pc.match_substring_regex(text, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")
    zoned = pc.match_substring_regex(text, _ZONE)
    return pc.fill_null(pc.and_(dated, pc.invert(zoned)), False)


#: A time zone at the end of a date and time: ``Z``, ``+08:00``, ``+0800``, ``-05``.
_ZONE = r"(?i)(z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def _slow_times(
    values: pa.Array, times: pa.Array, todo: pa.Array, assume_timezone: str | None = None
) -> pa.Array:
    ns = pc.fill_null(pc.cast(times, pa.int64()), 0).to_numpy(zero_copy_only=False).copy()
    valid = pc.is_valid(times).to_numpy(zero_copy_only=False).copy()
    idx = pc.indices_nonzero(todo).to_numpy()
    subset = values.take(pa.array(idx))
    unix_ns, unix_ok, numeric = _unix_ns(subset)
    ns[idx[numeric]] = unix_ns[numeric]
    valid[idx[numeric]] = unix_ok[numeric]
    if (~numeric).any():
        texts = subset.filter(pa.array(~numeric))
        local = np.zeros(len(texts), bool)
        if assume_timezone is not None:
            local = zoneless(texts).to_numpy(zero_copy_only=False)
        where = idx[~numeric]
        if (~local).any():
            iso_ns, iso_ok = _iso_ns(texts.filter(pa.array(~local)).to_pandas())
            ns[where[~local]], valid[where[~local]] = iso_ns, iso_ok
        if local.any():
            assert assume_timezone is not None
            local_ns, local_ok = _local_ns(
                texts.filter(pa.array(local)).to_pandas(), assume_timezone
            )
            ns[where[local]], valid[where[local]] = local_ns, local_ok
    return pa.array(np.where(valid, ns, 0), pa.int64(), mask=~valid).cast(UTC_NS)


def _unix_ns(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact nanoseconds of unix seconds (or milliseconds, from 1e11 on) in text.

    Returns the nanoseconds, which are in range, and which texts are numbers at all.
    """
    parts = pc.extract_regex(texts, _UNIX_PARTS)
    numeric = pc.is_valid(parts).to_numpy(zero_copy_only=False)
    whole = pc.fill_null(pc.cast(pc.struct_field(parts, "whole"), pa.int64()), 0).to_numpy(
        zero_copy_only=False
    )
    fraction = pc.fill_null(pc.struct_field(parts, "frac"), "")
    millis = whole >= 100_000_000_000
    seconds = np.where(millis, whole // 1000, whole)
    digits = pc.utf8_slice_codeunits(pc.utf8_rpad(fraction, 9, "0"), 0, 9)
    sub_ns = pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False)
    milli_digits = pc.utf8_slice_codeunits(pc.utf8_rpad(fraction, 6, "0"), 0, 6)
    sub_ms = pc.cast(milli_digits, pa.int64()).to_numpy(zero_copy_only=False)
    in_range = numeric & (seconds < _MAX_SECONDS)
    with np.errstate(over="ignore"):
        magnitude = np.where(
            millis,
            (whole % 1000) * 1_000_000 + sub_ms + seconds * 1_000_000_000,
            seconds * 1_000_000_000 + sub_ns,
        )
    negative = pc.fill_null(pc.equal(pc.struct_field(parts, "sign"), "-"), False)
    signed = np.where(negative.to_numpy(zero_copy_only=False), -magnitude, magnitude)
    return np.where(in_range, signed, 0), in_range, numeric


def _iso_ns(texts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Nanoseconds of ISO-8601 texts and which were valid times in range (never raises)."""
    try:
        parsed = pd.to_datetime(texts, utc=True, format="ISO8601", errors="coerce")
    except (ValueError, OverflowError):  # pandas gives up on the batch: value by value
        parsed = pd.Series([_one_iso(t) for t in texts], dtype="datetime64[us, UTC]")
    ok = (
        parsed.notna()
        & parsed.between(pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"))
    ).to_numpy(bool)
    out = np.zeros(len(texts), dtype="int64")
    if ok.any():
        inside = parsed[ok].astype("datetime64[ns, UTC]")
        out[ok] = inside.to_numpy("datetime64[ns]").astype("int64")
    return out, ok


def _local_ns(texts: pd.Series, zone: str) -> tuple[np.ndarray, np.ndarray]:
    """Nanoseconds of zoneless ISO-8601 texts read as local times in ``zone``."""
    parsed = pd.to_datetime(texts, format="ISO8601", errors="coerce")
    zoned = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    return _iso_ns_parsed(zoned.dt.tz_convert("UTC"))


def _iso_ns_parsed(parsed: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    ok = parsed.notna().to_numpy(bool)
    out = np.zeros(len(parsed), dtype="int64")
    if ok.any():
        inside = parsed[ok].astype("datetime64[ns, UTC]")
        out[ok] = inside.to_numpy("datetime64[ns]").astype("int64")
    return out, ok


def _one_iso(text: str) -> pd.Timestamp | None:
    try:
        value = pd.to_datetime(text, utc=True, format="ISO8601")
    except (ValueError, OverflowError):
        return None
    return None if value is pd.NaT else value


def parse_flags(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Parse ``true``/``false`` (any case, also ``1``/``0``, ``yes``/``no``) to booleans."""

    def read(distinct: pa.Array) -> pa.Array:
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(distinct.cast(pa.string())))
        is_true = pc.is_in(lowered, pa.array(_TRUE))
        is_false = pc.is_in(lowered, pa.array(_FALSE))
        return pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))

    flags = per_value(values, read)
    bad = pc.and_(present(values), pc.is_null(flags))
    return flags, pc.fill_null(bad, False)


def parse_numbers(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Parse numbers from text into ``target``; a bad or out-of-range value is null."""
    text = blank_to_null(pc.utf8_trim_whitespace(values.cast(pa.string())))
    try:
        numbers = pc.cast(text, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        series = pd.to_numeric(text.to_pandas(), errors="coerce")
        if pa.types.is_integer(target):
            info = np.iinfo(target.to_pandas_dtype())
            whole = series.notna() & (series % 1 == 0) & series.between(info.min, info.max)
            series = series.where(whole)
            numbers = pa.array(series.astype("Int64"), pa.int64()).cast(target)
        else:
            numbers = pa.array(series, pa.float64()).cast(target)
    bad = pc.and_(pc.is_valid(text), pc.is_null(numbers))
    return numbers, pc.fill_null(bad, False)


def compact_table(
    table: pa.Table, keep_text: frozenset[str] = frozenset(), every: bool = False
) -> pa.Table:
    """Dictionary-encode low-cardinality text columns (they become categoricals).

    With ``every``, all text columns but ``keep_text`` are encoded, whatever their
    cardinality (for tables whose parts must share column types).
    """

    def encode(name: str) -> pa.Array | pa.ChunkedArray:
        column = table.column(name)
        if (
            pa.types.is_string(column.type)
            and name not in keep_text
            and (every or _few_values(column))
        ):
            encoded = column.combine_chunks().dictionary_encode()
            if every or len(encoded.dictionary) < CATEGORY_RATIO * len(column):
                return encoded
        return column

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # compute releases the GIL
        arrays = list(pool.map(encode, table.column_names))
    return pa.Table.from_arrays(arrays, names=table.column_names)


#: Tables with fewer rows keep every text column categorical (it costs nothing there).
DISTINCT_MIN_ROWS = 10_000


def decode_distinct(table: pa.Table, min_rows: int = DISTINCT_MIN_ROWS) -> pa.Table:
    """Turn dictionary columns with mostly distinct values back into plain text.

    A categorical of nearly unique values (a fresh source address or STS key per
    event) costs more than the text itself, and pandas checks every category when it
    builds one; such columns become ``large_string`` (pandas ``str``), so the time
    and memory of a load do not grow with the number of distinct values. Columns
    with few values, and every column of a small table, stay categorical.

    Examples
    --------
    >>> t = pa.table({"ip": pa.array([str(i) for i in range(4)]).dictionary_encode(),
    ...               "api": pa.array(["Decrypt"] * 4).dictionary_encode()})
    >>> [str(f.type) for f in decode_distinct(t, min_rows=4).schema]
    ['large_string', 'dictionary<values=string, indices=int32, ordered=0>']
    """
    if table.num_rows < min_rows:
        return table
    for i, column in enumerate(table.schema):
        if not pa.types.is_dictionary(column.type):
            continue
        values = table.column(i)
        size = max((len(chunk.dictionary) for chunk in values.chunks), default=0)
        if size > CATEGORY_RATIO * table.num_rows:
            table = table.set_column(i, column.name, values.cast(pa.large_string()))
    return table


def encode_batch(table: pa.Table, keep_text: frozenset[str] = frozenset()) -> pa.Table:
    """Encode one batch of a load for keeping: categoricals, and text in Arrow's memory.

    Text columns but ``keep_text`` are dictionary-encoded. In a batch of at least
    :data:`DISTINCT_MIN_ROWS` rows, a column of mostly distinct values (a fresh address
    or STS key per event; told by a sample, then by its dictionary) is kept as
    ``large_string`` instead, straight away: its dictionary would be as large as the
    column, and unifying such dictionaries across batches costs more than the text.
    :func:`combine_encoded` joins the batches.
    Every text column is copied (duckdb hands results over in blocks shared by all
    their columns, so one column kept from a result would keep the whole result alive).

    Examples
    --------
    >>> t = pa.table({"ip": [str(i) for i in range(20_000)], "api": ["Decrypt"] * 20_000})
    >>> [str(f.type) for f in encode_batch(t).schema]
    ['large_string', 'dictionary<values=string, indices=int32, ordered=0>']
    """
    table = compact_table(table, keep_text, every=table.num_rows < DISTINCT_MIN_ROWS)
    for i, column in enumerate(table.schema):
        values = table.column(i)
        if pa.types.is_dictionary(column.type):
            size = max((len(chunk.dictionary) for chunk in values.chunks), default=0)
            if table.num_rows < DISTINCT_MIN_ROWS or size <= CATEGORY_RATIO * table.num_rows:
                continue
            table = table.set_column(i, column.name, values.cast(pa.large_string()))
        elif pa.types.is_string(column.type):  # a cast alone would share duckdb's buffer
            wide = [chunk.cast(pa.large_string()) for chunk in values.chunks]
            copy = pa.concat_arrays(wide) if wide else pa.array([], pa.large_string())
            table = table.set_column(i, column.name, copy)  # one copy, one chunk
    return table


def share_text(table: pa.Table, *held: pa.Table) -> pa.Table:
    """Point plain text columns at equal columns already held, so one copy serves both.

    A ``large_string`` column of ``table`` whose values equal (exactly, nulls alike) a
    ``large_string`` column of ``held`` or an earlier column of ``table`` is replaced by
    that column: the values and types are unchanged, only the memory is shared. A
    batch's activity rows repeat many ActionTrail columns (ids, addresses, session
    names), and some ActionTrail columns repeat each other (``keyId`` and
    ``requestParameters.KeyId``); :func:`encode_batch` copies each of them.

    Examples
    --------
    >>> ids = pa.array(["e-1", "e-2"], pa.large_string())
    >>> typed = pa.table({"eventId": ids})
    >>> rows = pa.table({"event_id": pa.array(["e-1", "e-2"], pa.large_string())})
    >>> shared = share_text(rows, typed)
    >>> shared.column("event_id").chunk(0).buffers()[2].address == ids.buffers()[2].address
    True
    """
    seen: dict[tuple[int, int], list[pa.ChunkedArray]] = {}

    def key(column: pa.ChunkedArray) -> tuple[int, int]:
        return column.null_count, pc.sum(pc.binary_length(column)).as_py() or 0

    for other in held:
        for i, field in enumerate(other.schema):
            if pa.types.is_large_string(field.type) and other.num_rows == table.num_rows:
                column = other.column(i)
                seen.setdefault(key(column), []).append(column)
    for i, field in enumerate(table.schema):
        if not pa.types.is_large_string(field.type):
            continue
        column = table.column(i)
        same = seen.setdefault(key(column), [])
        match = next((c for c in same if c is not column and c.equals(column)), None)
        if match is None:
            same.append(column)
        else:
            table = table.set_column(i, field.name, match)
    return table


def combine_encoded(tables: list[pa.Table], min_rows: int = DISTINCT_MIN_ROWS) -> pa.Table | None:
    """Join batches made by :func:`encode_batch` into one table (``None``: no rows).

    A text column that is plain text in any batch is plain text (``large_string``) in
    all; the others stay categorical, with one dictionary, unless mostly distinct in
    the whole table (:func:`decode_distinct`). Columns missing from a batch are null
    there.

    Examples
    --------
    >>> a = pa.table({"x": pa.array(["a", "b"]).dictionary_encode()})
    >>> b = pa.table({"x": pa.array(["c"], pa.large_string()), "y": [1]})
    >>> t = combine_encoded([a, b])
    >>> t.column("x").to_pylist(), str(t.schema.field("x").type), t.column("y").to_pylist()
    (['a', 'b', 'c'], 'large_string', [None, None, 1])
    """
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return None
    plain: set[str] = set()
    for table in tables:
        for column in table.schema:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                plain.add(column.name)
    aligned = []
    for table in tables:
        for i, column in enumerate(table.schema):
            if column.name in plain and not pa.types.is_large_string(column.type):
                table = table.set_column(i, column.name, table.column(i).cast(pa.large_string()))
        aligned.append(table)
    combined = pa.concat_tables(aligned, promote_options="default").unify_dictionaries()
    return decode_distinct(combined, min_rows)


def _few_values(column: pa.ChunkedArray, sample: int = 20_000) -> bool:
    """Guess from a sample whether a column has few distinct values (worth a category)."""
    if not len(column):
        return False
    head = column.slice(0, sample)
    return pc.count_distinct(head).as_py() < CATEGORY_RATIO * len(head) or len(column) <= sample


def _types_mapper(dtype: pa.DataType) -> object:
    if dtype == pa.bool_():
        return pd.BooleanDtype()
    if dtype == pa.int16():
        return pd.Int16Dtype()
    if dtype == pa.int32():
        return pd.Int32Dtype()
    if dtype == pa.int64():
        return pd.Int64Dtype()
    return None


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Convert to pandas with nullable booleans and integers, categoricals kept."""
    return table.to_pandas(types_mapper=_types_mapper, split_blocks=True, self_destruct=True)
