"""Interactive explorers (ipywidgets) over the package's own functions.

* :class:`GraphExplorer` — the identity graph in sigma.js (ipysigma): zoom, pan, hover
  for attributes, click a node to add its neighbours, an incident's lineage haloed.
* :class:`EntityExplorer` — pick an entity (a name or an id) and a range of days: its
  graph, a bokeh timeline grouped by identity with findings marked, and its events in
  a sortable grid (itables, offline).
* :class:`FindingsBrowser` — filter findings, pick one to see its evidence and its
  neighbourhood, and write the triage record (status, note, suppression).

The widgets are plain classes: each keeps what it shows as attributes (``events``,
``nodes``, ``timeline``; ``visible``, ``evidence``), so a test can set a control's value
and check what changed without a browser. Nothing is drawn with pyplot, so no stray
static figure is left below a widget. In a notebook, display the object.

Examples
--------
>>> import kmsforensics as kf
>>> case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence",
...                progress=False)  # doctest: +SKIP
>>> explorer = kf.widgets.EntityExplorer(case)  # doctest: +SKIP
>>> explorer.entity.value = "ci-deployer"  # doctest: +SKIP
>>> explorer.events.client_ip.unique()  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ipywidgets as w
import networkx as nx
import pandas as pd
from IPython.display import display

from .case import Case
from .display import show_time
from .graph import build_graph
from .graph.query import AmbiguousReferenceError, UnknownReferenceError
from .interactive import (
    KIND_COLOURS,
    LINEAGE,
    grid_frame,
    identity_names,
    lineage_nodes,
    neighbourhood,
    resolve,
    sigma_graph,
    timeline_figure,
)
from .provenance import evidence_root, relative_paths
from .timeline import timeline
from .triage import SCOPES, STATUSES, TriageError, TriageRecord, finding_ids

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
SEVERITIES = ("critical", "high", "medium", "low")
#: Most nodes the graph explorer draws at once (sigma.js stays smooth well past this).
MAX_NODES = 2500
WIDE = {"description_width": "initial"}
#: A grid of at most this many rows and columns is drawn without scroll bars, as wide as
#: its columns (a scrolling grid is as wide as the page, its bottom rule too).
SMALL_GRID = (12, 4)
#: A row of controls that wraps onto a second line rather than squeezing its buttons.
WRAP = w.Layout(flex_flow="row wrap")


def grid(frame: pd.DataFrame, height: int = 320) -> Any:
    """Return a scrollable, sortable grid of a frame that does not wrap (itables, offline)."""
    from itables.widget import ITable

    shown = grid_frame(frame)
    return ITable(df=shown, **_grid_options(height, shown))


def _grid_options(height: int, frame: pd.DataFrame) -> dict[str, Any]:
    options: dict[str, Any] = {
        "classes": "display nowrap compact cell-border",
        "paging": False,
        "maxBytes": "8MB",
        "showIndex": False,
    }
    rows, columns = SMALL_GRID
    if len(frame) > rows or len(frame.columns) > columns:
        options.update(scrollY=f"{height}px", scrollX=True, scrollCollapse=True)
    else:  # itables' style but for the margin: on the left, as the other outputs
        options["style"] = "table-layout:auto;width:auto;margin:0;caption-side:bottom"
    return options


class Grid:
    """A place for a grid: each new frame gets a new grid (a DataTable set up afresh).

    With ``root`` (the case's evidence root), evidence paths (``source_file``) are shown
    relative to it; the frames the widgets keep as attributes keep the full paths.
    """

    def __init__(self, height: int = 320, root: str | None = None) -> None:
        self.height = height
        self.root = root
        self.box = w.Box(layout=w.Layout(width="100%"))
        self.table: Any = None

    def show(self, frame: pd.DataFrame) -> None:
        """Show a frame (times in the display zone, at most ``GRID_ROWS`` rows)."""
        if self.root is not None:
            frame = relative_paths(frame, self.root)
        self.table = grid(frame, self.height)
        self.box.children = (self.table,)


_BOKEH_LOADED = False


def _bokeh(figure: Any) -> Any:
    """Return a bokeh figure as a widget; BokehJS goes into the page once (inline, offline)."""
    global _BOKEH_LOADED
    from IPython import get_ipython
    from jupyter_bokeh import BokehModel

    shell = get_ipython()
    if not _BOKEH_LOADED and shell is not None and hasattr(shell, "kernel"):
        from bokeh.io import output_notebook
        from bokeh.resources import INLINE

        output_notebook(INLINE, hide_banner=True)
        _BOKEH_LOADED = True
    return BokehModel(figure)


def timeline_view(events: pd.DataFrame, case: Case | None = None, title: str = "Timeline") -> Any:
    """Return an interactive timeline of ``kf.timeline`` rows: lanes by identity.

    Wheel to zoom, drag to pan, hover a dot for the event; findings are triangles.
    With ``case``, rows that carry only an id (KMS records of a role) get its name.
    """
    names = identity_names(case) if case is not None else None
    return _bokeh(timeline_figure(events, title=title, names=names))


class GraphExplorer:
    """The identity graph, interactive: zoom, pan, hover, click a node to expand it.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        From ``kf.build_graph(case)``.
    focus : str or list of str, optional
        Nodes to start from (ids or names); default: the most connected node.
    depth : int
        Hops shown around the focus at the start.
    highlight : iterable of str, optional
        Nodes to halo (an incident's lineage: see :meth:`highlight_findings`).
    max_nodes : int
        Most nodes drawn; beyond, the nearest to the focus are kept and the status says so.
    findings, incidents : DataFrame, optional
        With both (``kf.detect``, ``kf.incidents``), a list of incidents: choosing one
        halos its lineage.
    """

    def __init__(
        self,
        graph: nx.MultiDiGraph,
        focus: str | Iterable[str] | None = None,
        depth: int = 1,
        highlight: Iterable[str] = (),
        max_nodes: int = MAX_NODES,
        height: int = 520,
        findings: pd.DataFrame | None = None,
        incidents: pd.DataFrame | None = None,
    ) -> None:
        self.graph = graph
        self.max_nodes = max_nodes
        self.height = height
        self.status = w.HTML()
        self.box = w.Box(layout=w.Layout(width="100%"))
        self.findings, self.incidents = findings, incidents
        self.incident = w.Dropdown(
            options=[("(none)", -1)] + (
                [(f"{r['rank']}. {r['severity']} {r['story']}"[:160], i)
                 for i, r in enumerate(incidents.to_dict("records"))]
                if incidents is not None and findings is not None else []
            ),
            value=-1, description="highlight incident", style=WIDE,
            layout=w.Layout(width="100%"),
        )  # fmt: skip
        self.incident.observe(self._incident_chosen, names="value")
        controls = [self.incident] if len(self.incident.options) > 1 else []
        self.widget = w.VBox([*controls, self.status, self.box], layout=w.Layout(width="100%"))
        self.sigma: Any = None
        self.highlighted: set[str] = set(highlight)
        self.nodes: set[str] = set()
        self.expanded: list[str] = []
        self.show(focus, depth)

    def show(self, focus: str | Iterable[str] | None, depth: int = 1) -> None:
        """Show the nodes within ``depth`` hops of ``focus`` (ids or names)."""
        if focus is None:
            start = [max(self.graph.nodes, key=self.graph.degree)] if len(self.graph) else []
        else:
            wanted = [focus] if isinstance(focus, str) else list(focus)
            start = [n for text in wanted for n in resolve(self.graph, text)]
        self.focus = start
        self.nodes = self._bounded(neighbourhood(self.graph, start, depth), start)
        self._draw()

    def _bounded(self, nodes: set[str], first: Iterable[str]) -> set[str]:
        if len(nodes) <= self.max_nodes:
            return nodes
        kept = list(dict.fromkeys([*first, *sorted(nodes, key=self.graph.degree, reverse=True)]))
        return set(kept[: self.max_nodes])

    def expand(self, node: str) -> int:
        """Add the neighbours of a node (as a click does); return how many were added."""
        if node not in self.graph:
            return 0
        before = len(self.nodes)
        self.nodes = self._bounded(self.nodes | neighbourhood(self.graph, [node], 1), [node])
        self.expanded.append(node)
        self._draw(selected=node)
        added = len(self.nodes) - before
        self.status.value += html.escape(f" Expanded {node}: {added:,} neighbours added.")
        return added

    def highlight_findings(self, findings: pd.DataFrame) -> set[str]:
        """Halo the lineage of some findings (an incident) and show it; return its nodes."""
        self.highlighted = lineage_nodes(self.graph, findings)
        self.nodes = self._bounded(self.nodes | self.highlighted, self.highlighted)
        self._draw()
        return self.highlighted

    def _incident_chosen(self, change: dict[str, Any]) -> None:
        index = int(change.get("new", -1))
        if index < 0 or self.incidents is None or self.findings is None:
            self.highlighted = set()
            self._draw()
            return
        wanted = set(self.incidents.iloc[index]["finding_ids"])
        self.highlight_findings(self.findings[finding_ids(self.findings).isin(wanted)])

    def _draw(self, selected: str | None = None) -> None:
        from ipysigma import Sigma

        view = sigma_graph(self.graph, self.nodes, self.highlighted)
        layout = dict(self.sigma.layout or {}) if self.sigma is not None else {}
        self.sigma = Sigma(
            view,
            height=self.height,
            # the legend names these attributes: kinds by colour, the lineage in red
            node_color="kind",
            node_color_palette=KIND_COLOURS,
            raw_node_label="label",
            node_size="connections",
            node_size_scale="sqrt",
            node_size_range=(3, 15),
            node_halo_size="highlight",
            node_halo_size_range=(0, 14),
            default_node_halo_color="#ff3030",
            edge_color="lineage",
            edge_color_palette={"other": "#cccccc", LINEAGE: "#ff3030"},
            edge_size="count",
            edge_size_scale="log+1",
            edge_size_range=(0.5, 4),
            edge_label="relation",
            default_edge_type="arrow",
            start_layout=4,
            layout={n: p for n, p in layout.items() if n in view} or None,
            selected_node=selected if selected in view else None,
        )
        self.sigma.observe(self._clicked, names="selected_node")
        self.box.children = (self.sigma,)
        shown = f"{len(self.nodes):,} of {len(self.graph):,} nodes"
        cut = " (the most connected kept)" if len(self.nodes) >= self.max_nodes else ""
        lit = f"; {len(self.highlighted):,} haloed (incident lineage)" if self.highlighted else ""
        self.status.value = html.escape(
            f"{shown}{cut}{lit}. Click a node to add its neighbours; hover for its attributes."
        )

    def _clicked(self, change: dict[str, Any]) -> None:
        node = change.get("new")
        if node and node not in self.expanded:
            self.expand(str(node))

    def _ipython_display_(self) -> None:
        display(self.widget)


class EntityExplorer:
    """Pick an entity (a name or an id), a range of days and a depth: everything follows.

    Parameters
    ----------
    case : Case
        The evidence.
    findings : DataFrame, optional
        Findings to mark on the timeline (``kf.detect(case)``).
    entity : str, optional
        The entity to start on (a node id or a name); default: the most connected key.
    """

    def __init__(
        self, case: Case, findings: pd.DataFrame | None = None, entity: str | None = None
    ) -> None:
        self.case = case
        self.findings = findings
        self.graph = build_graph(case)
        self._graphs: dict[tuple[Any, Any], nx.MultiDiGraph] = {}
        ids = sorted(n for n, k in self.graph.nodes(data="kind") if k in EXPLORABLE)
        names = sorted(
            {
                str(d.get("name"))
                for n, d in self.graph.nodes(data=True)
                if d.get("kind") in EXPLORABLE and d.get("name") and str(d["name"]) not in ids
            }
        )
        days = pd.date_range(
            case.activity["time"].min().floor("D"),
            case.activity["time"].max().floor("D"),
            freq="D",
        )
        start = entity or max(
            (n for n in ids if n.startswith(("access-key:", "client-key:"))),
            key=self.graph.degree,
            default=ids[0] if ids else "",
        )
        self.entity = w.Combobox(
            value=start,
            options=[*ids, *names],
            ensure_option=False,
            placeholder="a name or a node id, e.g. ci-deployer or ip:192.0.2.66",
            description="entity (name or id)",
            style=WIDE,
            layout=w.Layout(width="640px"),
        )
        self._labels = [d.strftime("%Y-%m-%d") for d in days]
        self.window = w.SelectionRangeSlider(
            options=self._labels,
            index=(0, len(self._labels) - 1),
            description="days (UTC)",
            readout=False,
            style=WIDE,
            layout=w.Layout(width="520px"),
        )
        self.window_label = w.Label()
        self.depth = w.IntSlider(value=2, min=1, max=4, description="graph depth", style=WIDE)
        self.status = w.HTML()
        self.explorer = GraphExplorer(self.graph, start, depth=2, height=460)
        self.plot = w.Box(layout=w.Layout(width="100%"))
        self.grid = Grid(root=evidence_root(case.manifest["path"]))
        self.table: Any = None
        self.timeline = pd.DataFrame()
        self.events = pd.DataFrame()
        self.node: str | None = None
        self.figure: Any = None
        self._names: pd.Series | None = None
        for control in (self.entity, self.window, self.depth):
            control.observe(self._changed, names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.entity, self.depth]),
                w.HBox([self.window, self.window_label]),
                self.status,
                self.explorer.widget,
                self.plot,
                self.grid.box,
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
            whole = (start.strftime("%Y-%m-%d"), (end - pd.Timedelta(days=1)).strftime("%Y-%m-%d"))
            if whole == (self._labels[0], self._labels[-1]):
                self._graphs[key] = self.graph
            else:
                self._graphs[key] = build_graph(self.case.between(start, end))
        return self._graphs[key]

    def _resolve(self, text: str) -> str | None:
        """Return the node a name or id names, or None with the status saying why."""
        found = resolve(self.graph, text)
        if len(found) == 1:
            return found[0]
        if not found:
            try:  # a bare id the graph does not hold as a node may still name rows
                timeline(self.case, text)
                return text
            except (UnknownReferenceError, AmbiguousReferenceError) as error:
                self.status.value = f"<b>nothing matches {html.escape(repr(text))}</b>: " + (
                    html.escape(str(error))
                )
                return None
        listed = ", ".join(found[:8]) + (" ..." if len(found) > 8 else "")
        self.status.value = html.escape(f"{text!r} names {len(found)} things: {listed}; pick one")
        return None

    def update(self) -> None:
        """Recompute the graph, the timeline and the grid for the current choice."""
        start, end = self._bounds()
        self.window_label.value = f"{self.window.value[0]} to {self.window.value[1]}"
        ref = self._resolve(str(self.entity.value))
        if ref is None:
            return
        try:
            self.timeline = timeline(self.case, ref, self.findings, start=start, end=end)
        except (UnknownReferenceError, AmbiguousReferenceError) as error:
            self.status.value = f"<b>{html.escape(str(error))}</b>"
            return
        self.node = ref
        self.events = self.timeline
        graph = self._graph(start, end)
        marked = int(self.timeline["severity"].notna().sum())
        self.status.value = html.escape(
            f"{ref}: {len(self.timeline):,} events from {show_time(start, False)} to "
            f"{show_time(end, False)}, {marked:,} cited by findings"
        )
        self.explorer.graph = graph
        self.explorer.show(ref if ref in graph else None, self.depth.value)
        if self._names is None:
            self._names = identity_names(self.case)
        self.figure = timeline_figure(self.timeline, title=f"Events of {ref}", names=self._names)
        self.plot.children = (_bokeh(self.figure),)
        self.grid.show(self.timeline)
        self.table = self.grid.table

    def _ipython_display_(self) -> None:
        display(self.widget)


class FindingsBrowser:
    """Filter findings by severity, rule and account; pick one; triage it.

    Parameters
    ----------
    case : Case
        The evidence.
    findings : DataFrame
        From ``kf.detect(case)``.
    triage : str, Path or TriageRecord, optional
        The triage record to read and write (a JSON file beside the case); default: the
        case store's ``triage.json``, and none (no triage controls) for an in-memory case.
    analyst : str
        The name written with each decision.
    """

    def __init__(
        self,
        case: Case,
        findings: pd.DataFrame,
        triage: str | Path | TriageRecord | None = None,
        analyst: str = "",
    ) -> None:
        self.case = case
        self.findings = findings.reset_index(drop=True)
        self.ids = finding_ids(self.findings)
        self.graph = build_graph(case)
        self.record = self._record(triage)
        present = [s for s in SEVERITIES if s in set(self.findings["severity"])]
        self.severity = w.SelectMultiple(
            options=present, value=tuple(present), description="severity", rows=4, style=WIDE
        )
        rules = sorted(self.findings["rule_id"].unique())
        self.rule = w.SelectMultiple(
            options=rules, value=tuple(rules), description="rule", rows=6, style=WIDE
        )
        accounts = sorted(str(a) for a in self.findings["account_id"].dropna().unique())
        self.account = w.Dropdown(
            options=["(all)", *accounts], value="(all)", description="account", style=WIDE
        )
        self.choice = w.Select(
            options=[], description="finding", rows=10, style=WIDE,
            layout=w.Layout(width="100%"),
        )  # fmt: skip
        self.status = w.HTML()
        self.detail = w.HTML()
        self.explorer = GraphExplorer(self.graph, None, depth=1, height=420)
        self.grid = Grid(height=260, root=evidence_root(case.manifest["path"]))
        self.table: Any = None
        self.decision = w.Dropdown(options=STATUSES, description="status", style=WIDE)
        self.note = w.Text(description="note", placeholder="why", style=WIDE,
                           layout=w.Layout(width="420px"))  # fmt: skip
        self.analyst = w.Text(value=analyst, description="analyst", style=WIDE)
        self.save = w.Button(description="save decision", button_style="primary")
        self.scope = w.Dropdown(options=SCOPES, value="principal", description="suppress by",
                                style=WIDE)  # fmt: skip
        self.scope_value = w.Text(description="value", style=WIDE)
        self.expires = w.Text(
            value=(pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=90)).strftime("%Y-%m-%d"),
            description="expires", style=WIDE,
        )  # fmt: skip
        self.reason = w.Text(description="reason", style=WIDE)
        self.suppress_button = w.Button(
            description="suppress this rule there",
            layout=w.Layout(width="auto", flex="0 0 auto"),  # its label whole, never squeezed
        )
        self.triage_status = w.HTML()
        self.visible = pd.DataFrame()
        self.evidence = pd.DataFrame()
        self._timeline: pd.DataFrame | None = None
        for control in (self.severity, self.rule, self.account):
            control.observe(self._filter, names="value")
        self.choice.observe(self._show, names="value")
        self.save.on_click(lambda _: self.mark())
        self.suppress_button.on_click(lambda _: self.suppress())
        triage_row = (
            [
                w.HBox([self.decision, self.note, self.analyst, self.save], layout=WRAP),
                w.HBox(
                    [self.scope, self.scope_value, self.expires, self.reason, self.suppress_button],
                    layout=WRAP,
                ),
                self.triage_status,
            ]
            if self.record is not None
            else [self.triage_status]
        )
        self.widget = w.VBox(
            [
                w.HBox([self.severity, self.rule, self.account]),
                self.choice,
                self.status,
                self.detail,
                *triage_row,
                self.explorer.widget,
                self.grid.box,
            ]
        )
        if self.record is None:
            self.triage_status.value = (
                "<i>no triage record: pass triage='case.triage.json' to record decisions</i>"
            )
        self._filter()

    def _record(self, triage: str | Path | TriageRecord | None) -> TriageRecord | None:
        if isinstance(triage, TriageRecord):
            return triage
        if triage is not None:
            return TriageRecord.for_case(self.case, triage)
        try:
            return TriageRecord.for_case(self.case)
        except TriageError:
            return None

    def _label(self, index: int, row: Any) -> str:
        status = self.record.status(self.ids[index]) if self.record is not None else "open"
        mark = "" if status == "open" else f"[{status}] "
        return (
            f"{mark}{row.rule_id} {row.severity:<8} {show_time(row.first_seen, False)} "
            f"{row.summary!s}"
        )

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
        self._relabel()
        self.status.value = html.escape(f"{len(self.visible):,} of {len(f):,} findings")
        if len(self.visible):
            self.choice.value = int(self.visible.index[0])
        else:
            self.evidence = pd.DataFrame()
            self.grid.show(self.evidence)
            self.table = self.grid.table

    def _relabel(self) -> None:
        current = self.choice.value
        self.choice.options = [
            (self._label(int(i), r), int(i))
            for i, r in zip(self.visible.index, self.visible.itertuples(), strict=True)
        ]
        if current in self.choice.options or current in [v for _, v in self.choice.options]:
            self.choice.value = current

    def _show(self, _: Any = None) -> None:
        if self.choice.value is None:
            return
        finding = self.findings.loc[self.choice.value]
        if self._timeline is None:
            self._timeline = timeline(self.case, None, self.findings)
        every = self._timeline
        self.evidence = every[every["evidence_id"].isin(set(finding["evidence"]))]
        focus = [n for n in (finding["entity"], finding["actor"]) if n in self.graph]
        self.explorer.show(focus or None, 1)
        self.explorer.highlight_findings(self.findings.loc[[self.choice.value]])
        ident = self.ids[self.choice.value]
        self.detail.value = (
            f"<p><b>{html.escape(str(finding['rule_id']))} {html.escape(str(finding['title']))}"
            f"</b> <code>{html.escape(ident)}</code>: {html.escape(str(finding['summary']))}</p>"
        )
        if self.record is not None:
            decided = self.record.latest().get(ident)
            self.decision.value = decided.status if decided else "open"
            self.note.value = decided.note if decided else ""
            self.scope_value.value = str(finding.get("actor") or finding.get("entity") or "")
            self.triage_status.value = html.escape(
                f"{ident}: {self.decision.value}"
                + (f" by {decided.analyst} at {decided.time}" if decided else "")
                + f" (record: {self.record.path})"
            )
        self.grid.show(self.evidence)
        self.table = self.grid.table

    def mark(self) -> None:
        """Write the status and note of the chosen finding into the triage record."""
        if self.record is None or self.choice.value is None:
            return
        ident = self.ids[self.choice.value]
        decided = self.record.mark(ident, self.decision.value, self.note.value, self.analyst.value)
        self.triage_status.value = html.escape(
            f"saved: {ident} {decided.status} by {decided.analyst or '?'} at {decided.time} "
            f"in {self.record.path}"
        )
        self._relabel()

    def suppress(self) -> None:
        """Write a suppression of the chosen finding's rule in the chosen scope."""
        if self.record is None or self.choice.value is None:
            return
        rule_id = str(self.findings.loc[self.choice.value, "rule_id"])
        try:
            item = self.record.suppress(
                rule_id, self.scope.value, self.scope_value.value, reason=self.reason.value,
                expires=self.expires.value, analyst=self.analyst.value,
            )  # fmt: skip
        except TriageError as error:
            self.triage_status.value = f"<b>{html.escape(str(error))}</b>"
            return
        self.triage_status.value = html.escape(
            f"saved suppression {item.id}: {item.rule_id} x {item.scope}={item.value} until "
            f"{item.expires} ({item.reason}); kf.detect(..., triage=...) or kf.triage.apply "
            "hides what it covers"
        )

    def _ipython_display_(self) -> None:
        display(self.widget)
