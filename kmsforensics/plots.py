"""Pictures of a case: activity, swimlanes, hour-of-week, error rate, top-N.

Every function takes ``ax=None`` (a new figure) or an Axes to draw on, and returns the
Axes; nothing calls ``plt.show()``. Times are shown in the display zone
(``kf.set_display_timezone``, UTC by default) or the ``timezone`` given, and
the axis labels say which. Labels come from the logs (attacker-controlled text): they are
shortened, control characters replaced and ``$`` escaped, so mathtext never reads them.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import kmsforensics as kf
>>> case = kf.load(kf.datasets.path("vendor-samples"), progress=False)  # doctest: +SKIP
>>> ax = kf.plot_activity(case)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .calls import first_of_call
from .case import Case, evidence_ids
from .display import display_timezone
from .safetext import plot_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SOURCE_COLOURS = {"kms": "#1f77b4", "actiontrail": "#ff7f0e"}
SEVERITY_COLOURS = {"low": "#7f7f7f", "medium": "#bcbd22", "high": "#d62728", "critical": "#8c0000"}
_RANK = {s: i for i, s in enumerate(SEVERITY_COLOURS)}
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _axes(ax: Axes | None, size: tuple[float, float] = (10, 4)) -> Axes:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def _plain(text: Any, most: int = 48) -> str:
    """Log text as a safe, short label (no mathtext, no control characters)."""
    return plot_text(text, most)


def plot_activity(case: Case, freq: str = "1h", ax: Axes | None = None) -> Axes:
    """Events per ``freq`` for each source (KMS log, ActionTrail)."""
    counts = (
        case.activity.groupby([pd.Grouper(key="time", freq=freq), "source"], observed=True)
        .size()
        .unstack(fill_value=0)
    )
    return _per_source(_axes(ax), counts, f"Events per {freq}", "events")


def plot_error_rate(case: Case, freq: str = "1h", ax: Axes | None = None) -> Axes:
    """Share of failed calls per ``freq`` for each source."""
    act = case.activity
    failed = ~act["success"].fillna(True).astype(bool)
    frame = pd.DataFrame({"time": act["time"], "source": act["source"], "failed": failed})
    rate = (
        frame.groupby([pd.Grouper(key="time", freq=freq), "source"], observed=True)["failed"]
        .mean()
        .unstack()
    )
    return _per_source(_axes(ax), 100 * rate, f"Failed calls per {freq}", "% failed")


def _shown(times: Any) -> Any:
    """Return UTC times as the display zone's wall-clock times (for matplotlib's axis)."""
    index = pd.DatetimeIndex(times)
    return index.tz_convert(display_timezone()).tz_localize(None)


def _per_source(ax: Axes, table: pd.DataFrame, title: str, unit: str) -> Axes:
    """One line per source column of ``table`` (indexed by time)."""
    for source in table.columns:
        ax.plot(
            _shown(table.index),
            table[source],
            label=str(source),
            color=SOURCE_COLOURS.get(str(source)),
            linewidth=1.2,
        )
    ax.set_title(title)
    ax.set_xlabel(f"time ({display_timezone()})")
    ax.set_ylabel(unit)
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return ax


def plot_hour_of_week(case: Case, timezone: str = "UTC", ax: Axes | None = None) -> Axes:
    """Heatmap of events by weekday and hour (in ``timezone``)."""
    ax = _axes(ax, (10, 3.5))
    local = case.activity["time"].dt.tz_convert(timezone)
    grid = np.zeros((7, 24))
    counts = pd.crosstab(local.dt.day_of_week, local.dt.hour)
    for day in counts.index:
        for hour in counts.columns:
            grid[int(day), int(hour)] = counts.loc[day, hour]
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_yticks(range(7), DAYS)
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel(f"hour ({timezone})")
    ax.set_title("Events by hour of the week")
    ax.figure.colorbar(image, ax=ax, label="events")
    return ax


def plot_top(case: Case, by: str = "principal_name", n: int = 10, ax: Axes | None = None) -> Axes:
    """Horizontal bars: the ``n`` most frequent values of an activity column."""
    ax = _axes(ax, (8, 0.35 * n + 1))
    counts = case.activity[by].astype(object).value_counts().head(n)[::-1]
    ax.barh([_plain(v) for v in counts.index], counts.to_numpy(), color="#4c72b0")
    ax.set_title(plot_text(f"Top {n} by {by}"))
    ax.set_xlabel("events")
    return ax


def identity_labels(act: pd.DataFrame) -> pd.Series:
    """Return a readable name for the identity of each activity row.

    The row's own ``principal_name``; else the name another row gives the same
    ``principal_id`` (a KMS record of a role carries only its numeric id, the role's
    ActionTrail events carry its name); else the id, after its identity type where the
    row has one (``ram-user:6488...``: a bare number says nothing), else the AccessKey.

    Examples
    --------
    >>> act = pd.DataFrame({"principal_name": [None, "deploy-role", None, None],
    ...     "principal_id": ["4765", "4765", "9", "64"],
    ...     "identity_type": [None, "ram-role", None, "ram-user"],
    ...     "access_key_id": ["STS.a", None, "LTAI", None]})
    >>> identity_labels(act).tolist()
    ['deploy-role', 'deploy-role', '9', 'ram-user:64']
    """
    names = act["principal_name"].astype(object)
    ids = act["principal_id"].astype(object)
    known = pd.DataFrame({"id": ids, "name": names}).dropna()
    by_id = known.groupby("id")["name"].agg(lambda v: v.value_counts().index[0])
    who = names.where(names.notna(), ids.map(by_id))
    if "identity_type" in act:
        kinds = act["identity_type"].astype(object)
        typed = kinds.astype(str) + ":" + ids.astype(str)
        ids = ids.where(kinds.isna() | ids.isna(), typed)
    who = who.where(who.notna(), ids)
    return who.where(who.notna(), act["access_key_id"].astype(object)).fillna("?")


def plot_swimlanes(
    case: Case,
    findings: pd.DataFrame | None = None,
    top: int = 12,
    ax: Axes | None = None,
) -> Axes:
    """One lane per identity: its events, role sessions as bars, findings as markers.

    The lanes are the ``top`` identities by calls, plus every identity a finding names
    as its actor. Lanes are named by ``principal_name`` where the logs give one (KMS
    rows of roles take it from ActionTrail: ``principal_name_source``). A role session
    is a bar from its first to its last event.
    """
    from matplotlib.lines import Line2D

    act = case.activity
    who = identity_labels(act)
    ids = evidence_ids(act)
    actors = set()
    if findings is not None and len(findings):
        cited = set(findings["evidence"].explode().dropna().astype(str))
        actors = set(who[ids.isin(cited).to_numpy()])
    busiest = who[first_of_call(act)].value_counts()  # by calls: a pair counts once
    lanes = list(dict.fromkeys([*busiest.head(top).index, *sorted(actors)]))
    ax = _axes(ax, (11, 0.45 * len(lanes) + 1.5))
    row = {name: i for i, name in enumerate(lanes)}
    shown = who.isin(lanes).to_numpy()
    times, lane = _shown(act.loc[shown, "time"]), who[shown].map(row)
    ax.scatter(times, lane, s=4, color="#9ecae1", label="event", zorder=2)
    sessions = act.loc[shown & act["session_name"].notna().to_numpy()]
    if len(sessions):
        span = sessions.groupby(
            [who[sessions.index], sessions["session_name"].astype(object)], observed=True
        )["time"].agg(["min", "max"])
        names = span.index.get_level_values(0)
        for name, first, last in zip(names, span["min"], span["max"], strict=True):
            width = max(last - first, pd.Timedelta(minutes=1))
            ax.barh(
                row[name], width, left=_shown([first])[0], height=0.5, color="#c6dbef", zorder=1
            )
    if findings is not None and len(findings):
        ranked = findings.assign(_rank=findings["severity"].map(_RANK)).sort_values("_rank")
        for severity, group in ranked.groupby("severity", sort=False):  # most severe on top
            marks = [
                (t, row[a])
                for t, a in zip(group.first_seen, _actor_lanes(group, ids, who), strict=True)
                if a in row
            ]
            if marks:
                ax.scatter(
                    _shown([t for t, _ in marks]),
                    [r for _, r in marks],
                    marker="v",
                    s=70,
                    color=SEVERITY_COLOURS.get(str(severity), "black"),
                    zorder=3,
                )
    ax.set_yticks(range(len(lanes)), [_plain(n, 40) for n in lanes])
    ax.set_xlabel(f"time ({display_timezone()})")
    ax.set_title("Identities over time: events, role sessions, findings")
    handles = [
        Line2D([], [], marker="o", linestyle="", color="#9ecae1", label="event"),
        Line2D([], [], linewidth=6, color="#c6dbef", label="role session"),
        *[
            Line2D([], [], marker="v", linestyle="", color=c, label=f"finding ({s})")
            for s, c in SEVERITY_COLOURS.items()
        ],
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return ax


def _actor_lanes(findings: pd.DataFrame, ids: pd.Series, who: pd.Series) -> list[Any]:
    """Return the lane of each finding: the identity of its first evidence row."""
    lane_of = dict(zip(ids, who, strict=True))
    return [lane_of.get(e[0]) if len(e) else None for e in findings["evidence"]]
