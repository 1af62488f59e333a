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
_UNIX = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"
#: A time zone at the end of a date and time: ``Z``, ``+08:00``, ``+0800``, ``-05``.
_ZONE = r"(?i)(z|[+-][0-9]{2}(:?[0-9]{2})?)$"
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
    are not times (or are outside the representable years 1677-2262).

    Examples
    --------
    >>> times, _ = parse_times(pa.array(["2020-12-01T11:54:59.366+0000", "1606823699366"]))
    >>> [str(t) for t in times.to_pylist()]
    ['2020-12-01 11:54:59.366000+00:00', '2020-12-01 11:54:59.366000+00:00']
    >>> times, _ = parse_times(pa.array(["2020-12-01 19:54:59"]), "Asia/Shanghai")
    >>> str(times[0])
    '2020-12-01 11:54:59+00:00'
    """
    values = values.cast(pa.string())
    times = pc.strptime(values, format="%Y-%m-%dT%H:%M:%SZ", unit="ns", error_is_null=True)
    times = times.cast(UTC_NS)
    missing = pc.and_(pc.is_null(times), present(values))
    if pc.any(missing).as_py():
        times = _slow_times(values, times, missing, assume_timezone)
    bad = pc.and_(pc.is_null(times), present(values))
    return times, pc.fill_null(bad, False)


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


def _slow_times(
    values: pa.Array, times: pa.Array, todo: pa.Array, assume_timezone: str | None = None
) -> pa.Array:
    """Read the times the fast format did not: epoch numbers, other ISO-8601 spellings.

    Nanoseconds are computed in integers (a float cannot hold them exactly).
    """
    ns = pc.fill_null(pc.cast(times, pa.int64()), 0).to_numpy(zero_copy_only=False).copy()
    valid = pc.is_valid(times).to_numpy(zero_copy_only=False).copy()
    idx = pc.indices_nonzero(todo).to_numpy()
    subset = values.take(pa.array(idx)).to_pandas()
    numeric = subset.str.match(_UNIX).fillna(False).to_numpy(bool)
    out = np.zeros(len(idx), "int64")
    ok = np.zeros(len(idx), bool)
    if numeric.any():
        out[numeric], ok[numeric] = _epoch_ns(subset[numeric])
    text = ~numeric
    if text.any():
        local = np.zeros(len(idx), bool)
        if assume_timezone is not None:
            local = zoneless(pa.array(subset, pa.string())).to_numpy(zero_copy_only=False)
            local &= text
        utc = text & ~local
        if utc.any():
            parsed = pd.to_datetime(subset[utc], utc=True, format="ISO8601", errors="coerce")
            out[utc], ok[utc] = _iso_ns(parsed)
        if local.any():
            parsed = pd.to_datetime(subset[local], format="ISO8601", errors="coerce")
            zoned = parsed.dt.tz_localize(assume_timezone, ambiguous="NaT", nonexistent="NaT")
            out[local], ok[local] = _iso_ns(zoned.dt.tz_convert("UTC"))
    ns[idx] = out
    valid[idx] = ok
    return pa.array(np.where(valid, ns, 0), mask=~valid).cast(UTC_NS)


def _epoch_ns(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds (13 digits or more: milliseconds) to nanoseconds, exactly."""
    out = np.zeros(len(text), "int64")
    ok = np.zeros(len(text), bool)
    for i, raw in enumerate(text.str.strip().tolist()):
        whole, _, fraction = raw.partition(".")
        negative = whole.startswith("-")
        digits = whole.lstrip("-")
        millis = len(digits) >= 12  # |value| >= 1e11: milliseconds
        scale = 10**6 if millis else 10**9
        places = 6 if millis else 9
        value = int(digits or "0") * scale + int((fraction + "0" * places)[:places])
        value = -value if negative else value
        if abs(value) < 9_200_000_000 * 10**9:
            out[i], ok[i] = value, True
    return out, ok


def _iso_ns(parsed: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    missing = parsed.isna().to_numpy()
    as_ns = parsed.astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").astype("int64")
    return np.where(missing, 0, as_ns), ~missing


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
