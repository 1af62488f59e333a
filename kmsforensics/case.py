"""The Case: every frame of one investigation, and how it shows itself.

``case.actiontrail`` keeps its nested objects (``requestParameters`` and the
like) as compact JSON internally and turns them into dicts the first time the
frame is asked for; most analyses read ``case.activity`` and never pay for it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
import pandas as pd

from .schema import AT_NESTED_FIELDS

TimeLike = str | datetime | pd.Timestamp | None
_BIG_INT = re.compile(rb"[0-9]{19,}")


def to_utc(value: TimeLike) -> pd.Timestamp | None:
    """Read a time bound; a time without a zone is taken as UTC.

    Examples
    --------
    >>> to_utc("2026-03-02")
    Timestamp('2026-03-02 00:00:00+0000', tz='UTC')
    >>> to_utc("2026-03-02T08:00:00+08:00")
    Timestamp('2026-03-02 00:00:00+0000', tz='UTC')
    """
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def parse_nested(text: object) -> object:
    r"""Turn a nested column's JSON text back into the object it was.

    Examples
    --------
    >>> parse_nested('{"KeyId": "key-1", "uid": 1754986938261234567890}')
    {'KeyId': 'key-1', 'uid': 1754986938261234567890}
    >>> parse_nested('"{\\"a\\": 1}"')
    {'a': 1}
    """
    if not isinstance(text, str):
        return None
    raw = text.encode()
    try:
        value = json.loads(raw) if _BIG_INT.search(raw) else orjson.loads(raw)
    except (ValueError, RecursionError):
        return text
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        return parse_nested(value)
    return value


class Case:
    """The evidence of one investigation, loaded and typed.

    Attributes
    ----------
    kms : pandas.DataFrame
        KMS instance access-log records.
    actiontrail : pandas.DataFrame
        ActionTrail events (nested objects as dicts).
    activity : pandas.DataFrame
        Both sources in one schema, sorted by time.
    issues : pandas.DataFrame
        Every record or field that could not be taken as is.
    manifest : pandas.DataFrame
        One row per evidence file, with its SHA-256 and record counts.
    """

    def __init__(
        self,
        kms: pd.DataFrame,
        actiontrail: pd.DataFrame,
        activity: pd.DataFrame,
        issues: pd.DataFrame,
        manifest: pd.DataFrame,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        self.kms = kms
        self._actiontrail_text = actiontrail
        self._actiontrail: pd.DataFrame | None = None
        self.activity = activity
        self.issues = issues
        self.manifest = manifest
        self.parameters: dict[str, Any] = dict(parameters or {})

    @property
    def actiontrail(self) -> pd.DataFrame:
        """ActionTrail events, with ``requestParameters`` and the like as dicts."""
        if self._actiontrail is None:
            frame = self._actiontrail_text.copy()
            for name in AT_NESTED_FIELDS:
                if name in frame.columns:
                    parsed = [parse_nested(v) for v in frame[name].tolist()]
                    frame[name] = pd.Series(parsed, index=frame.index, dtype=object)
            self._actiontrail = frame
        return self._actiontrail

    def between(self, start: TimeLike = None, end: TimeLike = None) -> Case:
        """Return the case restricted to ``start <= time < end`` (UTC; open ends allowed).

        Times without a zone are taken as UTC. The manifest and the issues are
        those of the whole load.
        """
        lo, hi = to_utc(start), to_utc(end)

        def window(frame: pd.DataFrame, column: str) -> pd.DataFrame:
            keep = pd.Series(True, index=frame.index)
            if lo is not None:
                keep &= frame[column] >= lo
            if hi is not None:
                keep &= frame[column] < hi
            return frame[keep].reset_index(drop=True)

        sliced = Case(
            window(self.kms, "time"),
            window(self._actiontrail_text, "eventTime"),
            window(self.activity, "time"),
            self.issues,
            self.manifest,
            {**self.parameters, "between": (lo, hi)},
        )
        return sliced

    # -- showing itself -------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Return the facts a summary shows: files, events, time range, accounts, issues."""
        times = self.activity["time"]
        formats = self.manifest.groupby("format", observed=True).size().to_dict()
        statuses = self.manifest.groupby("status", observed=True).size().to_dict()
        accounts = self.activity["account_id"].dropna().unique()
        return {
            "files": len(self.manifest),
            "files_by_status": {str(k): int(v) for k, v in statuses.items()},
            "files_by_format": {str(k): int(v) for k, v in formats.items()},
            "events": {"kms": len(self.kms), "actiontrail": len(self._actiontrail_text)},
            "start": times.min() if len(times) else None,
            "end": times.max() if len(times) else None,
            "accounts": len(accounts),
            "issues": len(self.issues),
        }

    def __repr__(self) -> str:
        s = self.summary()
        span = f"{_iso(s['start'])} .. {_iso(s['end'])}" if s["start"] is not None else "no events"
        return (
            f"<Case: {s['files']} files, {s['events']['kms']:,} KMS records, "
            f"{s['events']['actiontrail']:,} ActionTrail events, {span}, "
            f"{s['accounts']} accounts, {s['issues']:,} issues>"
        )

    def _repr_html_(self) -> str:
        s = self.summary()
        span = f"{_iso(s['start'])} to {_iso(s['end'])}" if s["start"] is not None else "no events"
        formats = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:,}</td></tr>"
            for k, v in sorted(s["files_by_format"].items())
        )
        statuses = ", ".join(
            f"{v:,} {html.escape(k)}" for k, v in sorted(s["files_by_status"].items())
        )
        issues = f"<b>{s['issues']:,}</b> (see <code>case.issues</code>)" if s["issues"] else "none"
        return (
            "<div class='kmsforensics-case'><b>kmsforensics Case</b>"
            "<table>"
            f"<tr><th>files</th><td>{s['files']:,} ({statuses})</td></tr>"
            f"<tr><th>KMS access-log records</th><td>{s['events']['kms']:,}</td></tr>"
            f"<tr><th>ActionTrail events</th><td>{s['events']['actiontrail']:,}</td></tr>"
            f"<tr><th>time range (UTC)</th><td>{html.escape(span)}</td></tr>"
            f"<tr><th>accounts</th><td>{s['accounts']:,}</td></tr>"
            f"<tr><th>issues</th><td>{issues}</td></tr>"
            "</table>"
            f"<table><tr><th>format</th><th>files</th></tr>{formats}</table></div>"
        )


def evidence_ids(activity: pd.DataFrame) -> pd.Series:
    """Return the id that proves each activity row: ``event_id``, else ``request_id``.

    These are the ids a finding's ``evidence`` holds.
    """
    event = activity["event_id"].astype(object)
    return event.where(event.notna(), activity["request_id"].astype(object))


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
