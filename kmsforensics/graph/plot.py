"""A picture of the graph around an entity: layered, coloured by kind, readable.

Layers run left to right, from accounts to identities, sessions, source addresses,
credentials and the keys and secrets they touched; only the layers that have nodes take
a column, and each column is wide enough for its labels. Nodes in a layer are spread
evenly and labelled beside them on a white ground (edges pass behind the labels), so
labels overlap neither each other nor the next column's nodes; cross-account
assumptions are drawn dashed red and edges with failures orange.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import networkx as nx

from ..safetext import plot_text
from .query import resolve, trace

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Column of each kind, left to right.
LAYERS: dict[str, int] = {
    "account": 0,
    "ram-user": 1,
    "aap": 1,
    "service": 1,
    "ram-role": 2,
    "role-session": 3,
    "ip": 4,
    "access-key": 5,
    "client-key": 5,
    "kms-instance": 6,
    "key": 6,
    "secret": 6,
    "key-version": 7,
}
STYLE: dict[str, tuple[str, str]] = {  # kind -> (colour, marker)
    "account": ("#1f3b73", "s"),
    "ram-user": ("#2b8cbe", "o"),
    "aap": ("#7b3294", "o"),
    "service": ("#636363", "o"),
    "ram-role": ("#31a354", "D"),
    "role-session": ("#74c476", "d"),
    "ip": ("#969696", "^"),
    "access-key": ("#e6550d", "P"),
    "client-key": ("#fd8d3c", "P"),
    "kms-instance": ("#756bb1", "h"),
    "key": ("#c51b8a", "*"),
    "secret": ("#dd3497", "X"),
    "key-version": ("#fa9fb5", "."),
}
#: What the axis calls each layer.
LAYER_NAMES: dict[int, str] = {
    0: "accounts",
    1: "identities",
    2: "roles",
    3: "sessions",
    4: "addresses",
    5: "credentials",
    6: "keys, secrets",
    7: "versions",
}
MAX_NODES = 300
#: Longest label (longer ones keep their start and end) that fits in a column.
LABEL_CHARS = 26
FONT_SIZE = 8
#: Points between a node and its label (clear of the focus's larger marker).
LABEL_OFFSET = 8
#: Inches between a column's widest label and the next column's nodes: COLUMN_GAP, less
#: (down to MIN_GAP) when the picture would be wider than PAGE_INCHES, more when it would
#: be narrower than 8 in.
COLUMN_GAP = 0.6
MIN_GAP = 0.25
PAGE_INCHES = 12.0
#: Room right of the drawing for the legend, in inches.
LEGEND_INCHES = 1.5
#: Height of a row, in inches (a label is about 0.13 in tall).
ROW_INCHES = 0.28
#: Rows a layer may take before the least connected nodes are left out (and counted).
MAX_PER_LAYER = 40


def plot_graph(
    graph: nx.MultiDiGraph, focus: str | None = None, depth: int = 2, ax: Axes | None = None
) -> Axes:
    """Draw the graph (or the neighbourhood of ``focus``, ``depth`` hops) on ``ax``.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        A graph from :func:`~kmsforensics.build_graph`.
    focus : str, optional
        A node id or bare identifier to centre on; without it the whole graph (up to
        300 nodes, the most connected ones first).
    depth : int, default 2
        Hops around ``focus`` to include.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when not given.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    sub = _neighbourhood(graph, focus, depth)
    centre = resolve(graph, focus) if focus is not None else None
    labels = {node: _label(sub, node) for node in sub.nodes}
    columns = sorted(_layer_sizes(sub)) or [0]
    starts = _column_starts(sub, columns, labels, centre)  # in inches, the last: the end
    if ax is None:
        rows = max(_layer_sizes(sub).values(), default=1)
        margins = 0.3 + LEGEND_INCHES
        labelled = _column_starts(sub, columns, labels, centre, 0.0)[-1]
        wanted = min(PAGE_INCHES, labelled + len(columns) * COLUMN_GAP + margins)
        gap = max(MIN_GAP, (max(8.0, wanted) - margins - labelled) / len(columns))
        starts = _column_starts(sub, columns, labels, centre, gap)
        width = starts[-1] + margins
        figure, ax = plt.subplots(figsize=(width, max(4.0, ROW_INCHES * rows + 1.5)))
        figure.subplots_adjust(left=0.1 / width, right=1 - LEGEND_INCHES / width)
    positions = _positions(sub, columns, starts)
    for src, dst, data in sub.edges(data=True):
        (x0, y0), (x1, y1) = positions[src], positions[dst]
        cross = bool(data.get("cross_account"))
        failed = int(data.get("failures", 0) or 0) > 0
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            zorder=1,
            arrowprops={
                "arrowstyle": "-|>",
                "lw": 1.6 if cross else 0.7,
                "color": "#d7301f" if cross else "#fd8d3c" if failed else "#bdbdbd",
                "linestyle": "--" if cross else "-",
                "shrinkA": 5,
                "shrinkB": 5,
                # edges inside a layer (secret -> key) curve away from the labels
                "connectionstyle": "arc3,rad=-0.35" if x0 == x1 else "arc3,rad=0",
            },
        )
    for kind in sorted({d["kind"] for _, d in sub.nodes(data=True)}, key=_layer):
        nodes = [n for n, d in sub.nodes(data=True) if d["kind"] == kind]
        colour, marker = STYLE.get(kind, ("#000000", "o"))
        ax.scatter(
            [positions[n][0] for n in nodes],
            [positions[n][1] for n in nodes],
            c=colour,
            marker=marker,
            s=[160 if n == centre else 60 for n in nodes],
            zorder=3,
            edgecolors=["black" if n == centre else "none" for n in nodes],
        )
        for node in nodes:
            ax.annotate(
                labels[node],
                positions[node],
                xytext=(LABEL_OFFSET, 0),  # points right of the node, at any size
                textcoords="offset points",
                fontsize=FONT_SIZE,
                va="center",
                zorder=4,
                fontweight="bold" if node == centre else "normal",
                # a white ground: the edges leaving the node pass behind its label
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85},
            )
    handles = [
        Line2D([], [], marker=STYLE[k][1], color=STYLE[k][0], linestyle="", label=k)
        for k in STYLE
        if any(d["kind"] == k for _, d in sub.nodes(data=True))
    ]
    handles += [
        Line2D([], [], color="#d7301f", linestyle="--", label="cross-account"),
        Line2D([], [], color="#fd8d3c", label="with failures"),
    ]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False
    )
    ax.set_xlim(-0.2, starts[-1] + 0.1)  # an inch a unit on a figure of its own
    ax.set_xticks(starts[:-1])
    ax.set_xticklabels([LAYER_NAMES.get(layer, "other") for layer in columns], fontsize=8)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    title = f"around {focus}" if focus else "identity and resource graph"
    if focus is None and graph.number_of_nodes() > sub.number_of_nodes():
        title += (
            f", {graph.number_of_nodes() - sub.number_of_nodes():,} less connected nodes not shown"
        )
    ax.set_title(
        plot_text(f"{title} ({sub.number_of_nodes()} nodes, {sub.number_of_edges()} edges)"),
        fontsize=9,
    )
    return ax


def _neighbourhood(graph: nx.MultiDiGraph, focus: str | None, depth: int) -> nx.MultiDiGraph:
    """Choose the nodes worth drawing: the chain behind ``focus``, its reach, its sources."""
    if focus is None:
        busiest = sorted(graph.nodes, key=lambda n: -graph.degree(n))[:MAX_NODES]
        return graph.subgraph(_capped(graph, busiest)).copy()
    centre = resolve(graph, focus)
    keep = {centre}
    for node in trace(graph, centre).node:  # who is behind it, up to the account
        keep.add(node)
        keep.update(
            dst for _, dst, e in graph.out_edges(node, data=True) if e.get("relation") == "of-role"
        )
    frontier = {centre}
    for _ in range(depth):  # what it reaches
        frontier = {dst for node in frontier for _, dst in graph.out_edges(node)} - keep
        keep |= frontier
    keep.update(src for src, _ in graph.in_edges(centre))  # its direct sources and callers
    return graph.subgraph(_capped(graph, list(keep), centre)).copy()


def _capped(graph: nx.MultiDiGraph, nodes: list[str], centre: str | None = None) -> list[str]:
    """At most :data:`MAX_PER_LAYER` nodes a layer (the most connected), ``centre`` kept."""
    by_layer: dict[int, list[str]] = {}
    for node in nodes:
        by_layer.setdefault(_layer(graph.nodes[node]["kind"]), []).append(node)
    kept: list[str] = []
    for layer_nodes in by_layer.values():
        layer_nodes.sort(key=lambda n: (n != centre, -graph.degree(n), n))
        kept += layer_nodes[:MAX_PER_LAYER]
    return kept[:MAX_NODES]


def _layer(kind: str) -> int:
    return LAYERS.get(kind, max(LAYERS.values()) + 1)


def _layer_sizes(graph: nx.MultiDiGraph) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for _, data in graph.nodes(data=True):
        layer = _layer(data["kind"])
        sizes[layer] = sizes.get(layer, 0) + 1
    return sizes


def _column_starts(
    graph: nx.MultiDiGraph,
    columns: list[int],
    labels: dict[str, str],
    centre: str | None,
    gap: float = COLUMN_GAP,
) -> list[float]:
    """Return where each column's nodes stand, in inches, and where the last one ends.

    A column is as wide as its widest label (measured in the font it is drawn in), the
    label's offset from the node and ``gap`` inches before the next column.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    measure = TextToPath()
    widths = dict.fromkeys(columns, 0.0)
    for node, data in graph.nodes(data=True):
        font = FontProperties(size=FONT_SIZE, weight="bold" if node == centre else "normal")
        points, _, _ = measure.get_text_width_height_descent(labels[node], font, ismath=False)
        layer = _layer(data["kind"])
        widths[layer] = max(widths[layer], (points + LABEL_OFFSET) / 72)
    starts = [0.0]
    for layer in columns:
        starts.append(starts[-1] + max(widths[layer], 0.3) + gap)
    return starts


def _positions(
    graph: nx.MultiDiGraph, columns: list[int], starts: list[float]
) -> dict[str, tuple[float, float]]:
    """Place nodes: a column per layer in ``columns`` at ``starts``, rows spread evenly."""
    layers: dict[int, list[str]] = {}
    for node, data in graph.nodes(data=True):
        layers.setdefault(_layer(data["kind"]), []).append(node)
    tallest = max((len(c) for c in layers.values()), default=1)
    positions: dict[str, tuple[float, float]] = {}
    for layer, nodes in layers.items():
        column = columns.index(layer)
        nodes.sort(key=lambda n: (graph.nodes[n]["kind"], str(graph.nodes[n].get("name"))))
        offset = (tallest - len(nodes)) / 2
        if len(nodes) == 1 and tallest > 2:  # stagger lone nodes so labels do not meet
            offset += 0.8 if column % 2 else -0.8
        for row, node in enumerate(nodes):
            positions[node] = (starts[column], float(tallest - offset - row))
    return positions


def _label(graph: nx.MultiDiGraph, node: str) -> str:
    data: dict[str, Any] = graph.nodes[node]
    name = str(data.get("name") or node.split(":", 1)[-1])
    if data.get("kind") in ("secret", "aap") and "/" in name:
        name = name.split("/", 1)[1]  # the account is the owner's; the name is what tells
    if data.get("kind") == "role-session":
        roles = [
            graph.nodes[dst].get("name")
            for _, dst, e in graph.out_edges(node, data=True)
            if e.get("relation") == "of-role"
        ]
        if roles and roles[0]:
            name = f"{roles[0]}:{name.split(':', 1)[-1]}"
    if len(name) > LABEL_CHARS:  # keep both ends: ids differ at either
        head = (LABEL_CHARS - 1) // 2
        name = name[:head] + "…" + name[head + 1 - LABEL_CHARS :]
    return plot_text(name)
