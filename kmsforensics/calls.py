"""Count calls, not rows: a shared-gateway call is two activity rows with one ``call_id``.

Every count of "calls" or "events" over ``case.activity`` (``kf.usage``, graph edge
counts, detection thresholds and event counts) goes through these helpers, so the
KMS-log row and the ActionTrail row of one call count once. A frame without a
``call_id`` column (a store written before it existed) counts its rows.

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({"key": ["a", "a", "a", "b"], "call_id": [1, 1, 2, 3]})
>>> count_calls(rows)
3
>>> count_calls(rows, "key").to_dict()
{'a': 2, 'b': 1}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import numpy as np
import pandas as pd

#: The activity column that names the call a row records.
CALL_COLUMN = "call_id"


@overload
def count_calls(frame: pd.DataFrame, by: None = None, *, call: str = ...) -> int: ...
@overload
def count_calls(frame: pd.DataFrame, by: str | Sequence[str], *, call: str = ...) -> pd.Series: ...
def count_calls(
    frame: pd.DataFrame, by: str | Sequence[str] | None = None, *, call: str = CALL_COLUMN
) -> int | pd.Series:
    """Count the distinct calls of ``frame``, in all or per group of ``by``.

    Parameters
    ----------
    frame : DataFrame
        Activity rows (or any frame with a ``call_id`` column).
    by : str or list of str, optional
        Columns to group by (categoricals: observed groups only). ``None``: one number.
    call : str
        The column that names each row's call.

    Returns
    -------
    int or Series
        The number of calls, or a Series indexed like ``frame.groupby(by).size()``.
        Rows without a call id count one each.
    """
    if by is None:
        if call not in frame or not len(frame):
            return len(frame)
        ids = frame[call]
        return int(ids.nunique()) + int(ids.isna().sum())
    keys = [by] if isinstance(by, str) else list(by)
    sizes = frame.groupby(keys, observed=True, sort=False).size()
    repeats = repeated_calls(frame, keys, call=call)
    if repeats is None:
        return sizes
    return sizes.sub(repeats, fill_value=0).astype("int64")


def repeated_calls(
    frame: pd.DataFrame, keys: Sequence[str], *, call: str = CALL_COLUMN
) -> pd.Series | None:
    """Per group of ``keys``, the rows that repeat a call already counted in the group.

    ``None`` when no call has two rows in ``frame`` (the common case: nothing to take
    off the row counts).
    """
    twice = shared_rows(frame, call=call)
    if twice is None:
        return None
    shared = frame.loc[twice, [*keys, call]]
    extra = shared.duplicated()
    return extra.groupby([shared[k] for k in keys], observed=True, sort=False).sum()


def shared_rows(frame: pd.DataFrame, *, call: str = CALL_COLUMN) -> np.ndarray | None:
    """Tell which rows share their call with another row of ``frame`` (None: no row does)."""
    if call not in frame or not len(frame):
        return None
    ids = frame[call]
    twice = (ids.duplicated(keep=False) & ids.notna()).to_numpy(dtype=bool)
    return twice if twice.any() else None


def first_of_call(frame: pd.DataFrame, *, call: str = CALL_COLUMN) -> np.ndarray:
    """Tell which rows are the first of their call in ``frame`` (all rows count once).

    Summing this mask over a group counts the group's calls when every row of a call
    falls in the same group (as for rows grouped by credential and window).

    Examples
    --------
    >>> rows = pd.DataFrame({"call_id": [7, 7, 8, None]})
    >>> first_of_call(rows).tolist()
    [True, False, True, True]
    """
    if call not in frame or not len(frame):
        return np.ones(len(frame), dtype=bool)
    ids = frame[call]
    return (~ids.duplicated(keep="first") | ids.isna()).to_numpy(dtype=bool)
