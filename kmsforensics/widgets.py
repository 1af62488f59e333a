"""Interactive explorers (ipywidgets) over the package's own functions.

The widgets are plain classes: each keeps what it shows as attributes (``timeline``,
``events``, ``figure``; ``visible``, ``evidence``), so a test can set a control's value
and check what changed, without a browser. In a notebook, display the object.

Examples
--------
>>> import kmsforensics as kf
>>> case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence",
...                progress=False)  # doctest: +SKIP
>>> explorer = kf.widgets.EntityExplorer(case)  # doctest: +SKIP
>>> explorer.entity.value = "ip:192.0.2.66"  # doctest: +SKIP
>>> explorer.events.client_ip.unique()  # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
import networkx as nx
import pandas as pd
from IPython.display import display

from .case import Case
from .graph import build_graph, plot_graph
from .graph.query import AmbiguousReferenceError, UnknownReferenceError
from .safetext import plot_text
from .timeline import timeline

#: Node kinds offered by the entity explorer.
EXPLORABLE = (
    "account",
    "ram-user",
    "ram-role",
    "role-session",
    "aap",
    "access-key",
    "client-key",
    "key",
    "secret",
    "ip",
)
TABLE_ROWS = 200
SEVERITIES = ("critical", "high", "medium", "low")


def _png(figure: Any) -> bytes:
    """Return the figure as PNG bytes (an Image widget shows them, kernel or not)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()


def _html_table(frame: pd.DataFrame, rows: int = TABLE_ROWS) -> str:
    """Return an escaped HTML table of the first rows (log text is attacker-controlled)."""
    shown = frame.head(rows)
    more = f"<p>{len(frame) - rows:,} more rows</p>" if len(frame) > rows else ""
    return shown.to_html(index=False, escape=True, max_cols=20) + more


class EntityExplorer:
    """Pick an entity, a time range and a depth: graph, timeline and events follow.

    Parameters
    ----------
    case : Case
        The evidence.
    findings : DataFrame, optional
        Findings to mark on the timeline (``kf.detect(case)``).
    entity : str, optional
        The entity to start on (a node id); default: the most connected key.
    """

    def __init__(
        self, case: Case, findings: pd.DataFrame | None = None, entity: str | None = None
    ) -> None:
        self.case = case
        self.findings = findings
        self.graph = build_graph(case)
        self._graphs: dict[tuple[Any, Any], nx.MultiDiGraph] = {}
        options = sorted(n for n, k in self.graph.nodes(data="kind") if k in EXPLORABLE)
        days = pd.date_range(
            case.activity["time"].min().floor("D"),
            case.activity["time"].max().floor("D") + pd.Timedelta(days=1),
            freq="D",
        )
        start = entity or max(
            (n for n in options if n.startswith(("access-key:", "client-key:"))),
            key=self.graph.degree,
            default=options[0] if options else "",
        )
        self.entity = w.Combobox(
            value=start,
            options=options,
            ensure_option=True,
            placeholder="node id, e.g. ip:192.0.2.66",
            description="entity",
            layout=w.Layout(width="520px"),
        )
        labels = [d.strftime("%Y-%m-%d") for d in days]
        self.window = w.SelectionRangeSlider(
            options=labels,
            index=(0, len(labels) - 1),
            description="days (UTC)",
            layout=w.Layout(width="620px"),
        )
        self.depth = w.IntSlider(value=2, min=1, max=4, description="graph depth")
        self.status = w.HTML()
        self.picture = w.Image(format="png")
        self.table = w.HTML()
        self.timeline = pd.DataFrame()
        self.events = pd.DataFrame()
        self.figure: Any = None
        for control in (self.entity, self.window, self.depth):
            control.observe(self._changed, names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.entity, self.depth]),
                self.window,
                self.status,
                self.picture,
                self.table,
            ]
        )
        self.update()

    def _changed(self, _: Any = None) -> None:
        self.update()

    def _bounds(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        first, last = self.window.value
        return pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC") + pd.Timedelta(days=1)

    def _graph(self, start: pd.Timestamp, end: pd.Timestamp) -> nx.MultiDiGraph:
        key = (start, end)
        if key not in self._graphs:
            self._graphs[key] = build_graph(self.case.between(start, end))
        return self._graphs[key]

    def update(self) -> None:
        """Recompute the picture, the timeline and the table for the current choice."""
        ref = self.entity.value
        start, end = self._bounds()
        try:
            self.timeline = timeline(self.case, ref, self.findings, start=start, end=end)
        except (UnknownReferenceError, AmbiguousReferenceError) as error:
            self.status.value = f"<b>{html.escape(str(error))}</b>"
            return
        self.events = self.timeline
        graph = self._graph(start, end)
        marked = int(self.timeline["severity"].notna().sum())
        self.status.value = html.escape(
            f"{ref}: {len(self.timeline):,} events from {start:%Y-%m-%d} to "
            f"{end:%Y-%m-%d} UTC, {marked:,} cited by findings"
        )
        if self.figure is not None:
            plt.close(self.figure)
        self.figure, (left, right) = plt.subplots(1, 2, figsize=(15, 5.5))
        if ref in graph:
            plot_graph(graph, focus=ref, depth=self.depth.value, ax=left)
        else:
            left.set_title(plot_text(f"{ref} is not in the graph of this window"))
            left.axis("off")
        counts = self.timeline.set_index("time").groupby("source", observed=True).resample("1h")
        hourly = counts.size().unstack(0) if len(self.timeline) else pd.DataFrame()
        if len(hourly) > 1:
            hourly.plot(ax=right, title="events per hour (UTC)")
        elif len(hourly):
            hourly.plot.bar(ax=right, title="events per hour (UTC)")
        right.set_xlabel("time (UTC)")
        self.picture.value = _png(self.figure)
        self.table.value = _html_table(self.timeline)

    def _ipython_display_(self) -> None:
        display(self.widget)


class FindingsBrowser:
    """Filter findings by severity, rule and account; pick one to see its evidence.

    Parameters
    ----------
    case : Case
        The evidence.
    findings : DataFrame
        From ``kf.detect(case)``.
    """

    def __init__(self, case: Case, findings: pd.DataFrame) -> None:
        self.case = case
        self.findings = findings.reset_index(drop=True)
        self.graph = build_graph(case)
        present = [s for s in SEVERITIES if s in set(self.findings["severity"])]
        self.severity = w.SelectMultiple(
            options=present, value=tuple(present), description="severity", rows=4
        )
        rules = sorted(self.findings["rule_id"].unique())
        self.rule = w.SelectMultiple(options=rules, value=tuple(rules), description="rule", rows=6)
        accounts = sorted(str(a) for a in self.findings["account_id"].dropna().unique())
        self.account = w.Dropdown(
            options=["(all)", *accounts], value="(all)", description="account"
        )
        self.choice = w.Select(options=[], description="finding", rows=10,
                               layout=w.Layout(width="900px"))  # fmt: skip
        self.status = w.HTML()
        self.picture = w.Image(format="png")
        self.table = w.HTML()
        self.visible = pd.DataFrame()
        self.evidence = pd.DataFrame()
        self.figure: Any = None
        self._timeline: pd.DataFrame | None = None
        for control in (self.severity, self.rule, self.account):
            control.observe(self._filter, names="value")
        self.choice.observe(self._show, names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.severity, self.rule, self.account]),
                self.choice,
                self.status,
                self.picture,
                self.table,
            ]
        )
        self._filter()

    def _filter(self, _: Any = None) -> None:
        f = self.findings
        keep = f["severity"].isin(self.severity.value) & f["rule_id"].isin(self.rule.value)
        if self.account.value != "(all)":
            keep &= f["account_id"].astype(str) == self.account.value
        chosen = f[keep]
        # the rank is computed on the chosen rows: a Series assigned to an empty frame
        # would otherwise bring its whole index along
        rank = chosen["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
        order = chosen.assign(_rank=rank).sort_values(["_rank", "first_seen"])
        self.visible = order.drop(columns="_rank")
        self.choice.options = [
            (
                f"{r.rule_id} {r.severity:<8} {r.first_seen:%Y-%m-%d %H:%M} {str(r.summary)[:110]}",
                int(i),
            )
            for i, r in zip(self.visible.index, self.visible.itertuples(), strict=True)
        ]
        self.status.value = html.escape(f"{len(self.visible):,} of {len(f):,} findings")
        if len(self.visible):
            self.choice.value = int(self.visible.index[0])
        else:
            self.evidence = pd.DataFrame()
            self.table.value = ""

    def _show(self, _: Any = None) -> None:
        if self.choice.value is None:
            return
        finding = self.findings.loc[self.choice.value]
        if self._timeline is None:
            self._timeline = timeline(self.case, None, self.findings)
        every = self._timeline
        self.evidence = every[every["evidence_id"].isin(set(finding["evidence"]))]
        if self.figure is not None:
            plt.close(self.figure)
        self.figure, ax = plt.subplots(figsize=(11, 6))
        focus = next((n for n in (finding["entity"], finding["actor"]) if n in self.graph), None)
        if focus is not None:
            plot_graph(self.graph, focus=focus, depth=1, ax=ax)
        else:
            ax.axis("off")
        self.picture.value = _png(self.figure)
        self.table.value = (
            f"<p><b>{html.escape(str(finding['rule_id']))} {html.escape(str(finding['title']))}"
            f"</b>: {html.escape(str(finding['summary']))}</p>" + _html_table(self.evidence)
        )

    def _ipython_display_(self) -> None:
        display(self.widget)
