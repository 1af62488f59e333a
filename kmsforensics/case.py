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


def empty_aap_exports() -> pd.DataFrame:
    """Return the (empty) frame of AAP configuration exports of a case."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in AAP_EXPORT_COLUMNS})


#: Columns of ``Case.aap_exports``.
AAP_EXPORT_COLUMNS = ("source_file", "source_record", "source_item", "json")


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

    #: ``"pandas"``: the frames are in memory; ``"dask"``: they are dask DataFrames.
    engine = "pandas"

    def __init__(
        self,
        kms: pd.DataFrame,
        actiontrail: pd.DataFrame,
        activity: pd.DataFrame,
        issues: pd.DataFrame,
        manifest: pd.DataFrame,
        parameters: Mapping[str, Any] | None = None,
        aap_exports: pd.DataFrame | None = None,
    ) -> None:
        self._frames: dict[str, Any] = {
            "kms": kms,
            "actiontrail": actiontrail,
            "activity": activity,
        }
        self._actiontrail: pd.DataFrame | None = None
        self.issues = issues
        self.manifest = manifest
        self.parameters: dict[str, Any] = dict(parameters or {})
        #: AAP configuration exports found among the evidence (``source_file``,
        #: ``source_record``, ``json``): read by ``kf.aap_config``, see kmsforensics.aap.
        self.aap_exports = aap_exports if aap_exports is not None else empty_aap_exports()

    def _frame(self, name: str) -> Any:
        """Return one of the frames ``kms``, ``actiontrail`` (JSON text) or ``activity``."""
        return self._frames[name]

    @property
    def kms(self) -> pd.DataFrame:
        """KMS instance access-log records."""
        return self._frame("kms")

    @kms.setter
    def kms(self, frame: pd.DataFrame) -> None:
        self._frames["kms"] = frame

    @property
    def activity(self) -> pd.DataFrame:
        """Both sources in one schema, sorted by time."""
        return self._frame("activity")

    @activity.setter
    def activity(self, frame: pd.DataFrame) -> None:
        self._frames["activity"] = frame

    @property
    def _actiontrail_text(self) -> pd.DataFrame:
        return self._frame("actiontrail")

    @property
    def actiontrail(self) -> pd.DataFrame:
        """ActionTrail events, with ``requestParameters`` and the like as dicts."""
        if self._actiontrail is None:
            self._actiontrail = with_nested_objects(self._actiontrail_text)
        return self._actiontrail

    def between(self, start: TimeLike = None, end: TimeLike = None) -> Case:
        """Return the case restricted to ``start <= time < end`` (UTC; open ends allowed).

        Times without a zone are taken as UTC. The manifest and the issues are
        those of the whole load. On a case store only the days asked for are read;
        on the dask engine the slice comes back in memory (pandas).
        """
        lo, hi = to_utc(start), to_utc(end)

        def window(frame: pd.DataFrame, column: str) -> pd.DataFrame:
            return frame[in_window(frame[column], lo, hi)].reset_index(drop=True)

        sliced = Case(
            window(self.kms, "time"),
            window(self._actiontrail_text, "eventTime"),
            window(self.activity, "time"),
            self.issues,
            self.manifest,
            {**self.parameters, "between": (lo, hi)},
            self.aap_exports,
        )
        return sliced

    def focus(self, ref: str) -> Case:
        """Return the case restricted to the events that involve one entity.

        Parameters
        ----------
        ref : str
            A graph node id (``"access-key:STS.x"``, ``"role-session:<role>:<name>"``,
            ``"secret:<account>/<name>"`` ...) or a bare identifier, matched against
            every identity, key, secret, address and id column.

        Returns
        -------
        Case
            In memory (pandas), whatever the engine: the activity rows that involve
            ``ref`` and the KMS records and ActionTrail events behind them.

        Examples
        --------
        >>> import kmsforensics as kf
        >>> case = kf.load(kf.datasets.path("vendor-samples"), progress=False)  # doctest: +SKIP
        >>> case.focus("access-key:LTAI5tExampleKey").activity  # doctest: +SKIP
        """
        activity = self.activity
        return self._focused(activity[focus_mask(activity, ref)].reset_index(drop=True), ref)

    def _focused(self, activity: pd.DataFrame, ref: str) -> Case:
        """Return the case of the given activity rows (with their KMS records and events)."""
        kms, at = records_behind(activity, self.kms, self._actiontrail_text)
        parameters = {**self.parameters, "focus": ref}
        return Case(kms, at, activity, self.issues, self.manifest, parameters, self.aap_exports)

    def search(self, text: str) -> pd.DataFrame:
        """Return every record in which some field contains ``text`` (case-insensitive).

        Every column of both logs is searched, nested ActionTrail objects
        (``requestParameters`` ...) included; each row says where the record came from
        (``source_file`` under the evidence root, which is ``attrs["evidence_root"]``;
        ``source_record``) and which fields matched. See
        :func:`kmsforensics.search.search`.
        """
        from .search import search

        return search(self, text)

    # -- showing itself -------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Return the facts a summary shows: files, events, calls, time range, accounts, issues.

        ``calls`` counts the calls behind the events: a shared-gateway call logged by
        both logs (two activity rows, one ``call_id``) is one call.
        """
        from .calls import count_calls

        times = self.activity["time"]
        formats = self.manifest.groupby("format", observed=True).size().to_dict()
        statuses = self.manifest.groupby("status", observed=True).size().to_dict()
        accounts = self.activity["account_id"].dropna().unique()
        return {
            "files": len(self.manifest),
            "files_by_status": {str(k): int(v) for k, v in statuses.items()},
            "files_by_format": {str(k): int(v) for k, v in formats.items()},
            "events": {"kms": len(self.kms), "actiontrail": len(self._actiontrail_text)},
            "calls": count_calls(
                self.activity[["call_id"]] if "call_id" in self.activity else self.activity
            ),
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
            f"<tr><th>calls (one per call in both logs)</th><td>{s['calls']:,}</td></tr>"
            f"<tr><th>time range (UTC)</th><td>{html.escape(span)}</td></tr>"
            f"<tr><th>accounts</th><td>{s['accounts']:,}</td></tr>"
            f"<tr><th>issues</th><td>{issues}</td></tr>"
            "</table>"
            f"<table><tr><th>format</th><th>files</th></tr>{formats}</table></div>"
        )


def in_window(times: pd.Series, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> pd.Series:
    """Tell where ``lo <= time < hi`` (either bound may be open)."""
    keep = pd.Series(True, index=times.index)
    if lo is not None:
        keep &= times >= lo
    if hi is not None:
        keep &= times < hi
    return keep


def with_nested_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ActionTrail rows with their nested JSON text columns turned into objects."""
    frame = frame.copy()
    for name in AT_NESTED_FIELDS:
        if name in frame.columns:
            parsed = [parse_nested(v) for v in frame[name].tolist()]
            frame[name] = pd.Series(parsed, index=frame.index, dtype=object)
    return frame


def focus_mask(activity: pd.DataFrame, ref: str) -> pd.Series:
    """Tell which activity rows involve ``ref`` (a graph node id or a bare identifier).

    The vocabulary is :mod:`kmsforensics.graph.nodes`'s, as for ``kf.timeline``; a
    bare identifier names every row it is found in, whatever the column.

    Examples
    --------
    >>> act = pd.DataFrame({"access_key_id": ["LTAI1", "LTAI2"], "principal_id": ["u", "v"],
    ...                     "session_name": [None, None], "account_id": ["1", "1"]})
    >>> focus_mask(act, "access-key:LTAI2").tolist()
    [False, True]
    >>> focus_mask(act, "u").tolist()
    [True, False]
    """
    from .graph.nodes import rows_named  # the graph package imports this module

    return rows_named(activity, ref)


def records_behind(
    activity: pd.DataFrame, kms: pd.DataFrame, actiontrail: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the KMS records and ActionTrail events behind activity rows (by their ids).

    A frame without its id column (one never loaded) is returned as it is.
    """
    requests = set(activity.loc[activity["source"] == "kms", "request_id"].dropna())
    events = set(activity["event_id"].dropna())
    if "request_id" in kms:
        kms = kms[kms["request_id"].isin(requests)].reset_index(drop=True)
    if "eventId" in actiontrail:
        actiontrail = actiontrail[actiontrail["eventId"].isin(events)].reset_index(drop=True)
    return kms, actiontrail


def evidence_ids(activity: pd.DataFrame) -> pd.Series:
    """Return the id that proves each activity row: ``event_id``, else ``request_id``.

    These are the ids a finding's ``evidence`` holds.
    """
    event = activity["event_id"].astype(object)
    return event.where(event.notna(), activity["request_id"].astype(object))


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
