"""What the dask engine needs of a rule: helpers for the selections beside each rule.

A selection (``@rule.select``) is decided within one day (the action, the source,
success, an error code; for thresholds, whether a window of that day could reach the
threshold), so it can be evaluated one day at a time on the workers; it covers every
row the rule's findings depend on (a superset is fine), so the rule run on the
selected rows alone finds exactly what it finds on the whole case. D27, which counts
every row, gets one row per stream and bin standing for the others (``@rule.weigh``).
What a selection learns from the baseline days first is ``@rule.learn(combine)``.

``tests/test_scale.py`` and ``tests/test_detect_dask.py`` hold the pack to this: the
same findings on both engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..context import Context
from ..findings import nanoseconds
from ..registry import RowSelection
from .common import KEY_DESTRUCTION, from_actiontrail, from_kms_log

Params = Any


def admin(*operations: str) -> RowSelection:
    """Select successful ActionTrail calls of ``operations``."""

    def select(ctx: Context, p: Params) -> pd.Series:
        return from_actiontrail(ctx) & ctx.ok & ctx.action_is(*operations)

    return select


#: ActionTrail operations after which D04 and D05 count the failures on the key.
KEY_ADMIN = (*KEY_DESTRUCTION, "DisableKey", "SetDeletionProtection")


def key_failures(ctx: Context, hours: float) -> pd.Series:
    """KMS-log failures on a key within ``hours`` after a KEY_ADMIN event on it.

    The events come from ``ctx.facts["key_admin"]`` (key_id, time), gathered from the
    whole case first; without them every failure on a key is kept.
    """
    act = ctx.act
    failed = from_kms_log(ctx) & ~ctx.ok & act["key_id"].notna()
    admin = ctx.facts.get("key_admin")
    if admin is None or not failed.any():
        return failed
    rows = pd.DataFrame(
        {"key": text(ctx, "key_id")[failed].astype(str), "time": act["time"][failed]}
    ).sort_values("time", kind="stable")
    moments = pd.DataFrame(
        {"key": admin["key_id"].astype(object).astype(str), "moment": admin["time"]}
    ).sort_values("moment", kind="stable")
    after = pd.merge_asof(
        rows.reset_index(),
        moments,
        left_on="time",
        right_on="moment",
        by="key",
        allow_exact_matches=False,
        direction="backward",
    )
    near = (after["time"] - after["moment"]) <= pd.Timedelta(hours=hours)
    keep = pd.Series(False, index=act.index)
    keep.loc[after.loc[near.fillna(False).to_numpy(dtype=bool), "index"]] = True
    return keep


def text(ctx: Context, column: str) -> pd.Series:
    """Return a column of the context's rows as Python objects."""
    return ctx.act[column].astype(object)


def dense_windows(
    ctx: Context,
    base: pd.Series,
    keys: list[pd.Series],
    window: str,
    measures: Sequence[tuple[pd.Series | None, float | pd.Series]],
    shifted: bool = True,
    keep_before: pd.Timestamp | None = None,
    whole_rows: bool = False,
) -> pd.Series:
    """Rows of ``base`` whose window could reach a threshold, as far as one day tells.

    Windows are those of :func:`~kmsforensics.detections.findings.over_threshold`
    (tumbling, and shifted by half when ``shifted``). A row is kept when, in this day,
    its group (``keys`` and window) reaches the minimum of a measure (rows when the
    measure is None, else distinct values; a minimum given per row counts at its lowest
    in the group), when its window reaches past the day (kept
    whole, as the other day may complete it), or when it comes before ``keep_before``
    (a baseline). A window reaching a threshold in the whole case is then always whole
    in the selection, and one that does not cannot reach it with fewer rows.

    With ``whole_rows``, every window (of either shift) of a kept row is kept whole:
    for rules whose rows must pass several measures, each in any of their windows,
    where ``measures`` then names one of them that every finding must pass.
    """
    rows = np.flatnonzero(np.asarray(base, dtype=bool))
    keep = np.zeros(len(rows), dtype=bool)
    if len(rows):
        stamps = nanoseconds(ctx.act["time"].iloc[rows])
        day = 86_400 * 10**9
        first, last = stamps.min() // day * day, stamps.min() // day * day + day
        width = pd.Timedelta(window).value
        groups = {f"k{i}": pd.factorize(k.iloc[rows].astype(object))[0] for i, k in enumerate(keys)}
        for shift in (0, width // 2) if shifted else (0,):
            number = (stamps - shift) // width
            frame = pd.DataFrame({**groups, "bin": number})
            grouped = frame.groupby(list(frame.columns), sort=False)
            for values, minimum in measures:
                if values is None:
                    measure = grouped["bin"].transform("size")
                else:
                    codes = pd.factorize(values.iloc[rows].astype(object))[0]
                    measure = (
                        frame.assign(v=np.where(codes >= 0, codes, np.nan))
                        .groupby(list(frame.columns), sort=False)["v"]
                        .transform("nunique")
                    )
                if isinstance(minimum, pd.Series):
                    lowest = (
                        frame.assign(m=minimum.iloc[rows].to_numpy(dtype=float))
                        .groupby(list(frame.columns), sort=False)["m"]
                        .transform("min")
                    )
                    keep |= measure.to_numpy() >= lowest.to_numpy()
                else:
                    keep |= measure.to_numpy() >= minimum
            keep |= (number * width + shift < first) | ((number + 1) * width + shift > last)
        if keep_before is not None:
            keep |= stamps < keep_before.value
        if whole_rows:
            for shift in (0, width // 2) if shifted else (0,):
                frame = pd.DataFrame({**groups, "bin": (stamps - shift) // width, "keep": keep})
                keep = keep | frame.groupby(list(frame.columns[:-1]), sort=False)["keep"].transform(
                    "any"
                ).to_numpy(dtype=bool)
    out = np.zeros(len(base), dtype=bool)
    out[rows[keep]] = True
    return pd.Series(out, index=base.index)
