"""A picture of the graph around an entity: layered, coloured by kind, readable.

Layers run left to right, from accounts to identities, sessions, source addresses,
credentials and the keys and secrets they touched. Nodes in a layer are spread evenly
and labelled beside them, so labels do not overlap; cross-account assumptions are drawn
dashed red and edges with failures orange.
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
MAX_NODES = 300
#: Longest label (longer ones keep their start and end) that fits in a column.
LABEL_CHARS = 24
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
    if ax is None:
        rows = max(_layer_sizes(sub).values(), default=1)
        _, ax = plt.subplots(figsize=(15, max(4.0, 0.28 * rows + 1.5)))
    positions = _positions(sub)
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
            s=160 if focus in nodes else 60,
            zorder=3,
            edgecolors="black" if any(n == focus for n in nodes) else "none",
        )
        for node in nodes:
            x, y = positions[node]
            ax.text(
                x + 0.08,
                y,
                _label(sub, node),
                fontsize=7,
                va="center",
                zorder=4,
                fontweight="bold" if node == focus else "normal",
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
    ax.set_xlim(-0.3, max(LAYERS.values()) + 1.2)
    ax.set_xticks(sorted(set(LAYERS.values())))
    ax.set_xticklabels(
        [
            "accounts",
            "identities",
            "roles",
            "sessions",
            "addresses",
            "credentials",
            "keys, secrets",
            "versions",
        ],
        fontsize=8,
    )
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


def _positions(graph: nx.MultiDiGraph) -> dict[str, tuple[float, float]]:
    """Columns by kind; rows spread evenly (centred) so labels cannot collide."""
    columns: dict[int, list[str]] = {}
    for node, data in graph.nodes(data=True):
        columns.setdefault(_layer(data["kind"]), []).append(node)
    tallest = max((len(c) for c in columns.values()), default=1)
    positions: dict[str, tuple[float, float]] = {}
    for layer, nodes in columns.items():
        nodes.sort(key=lambda n: (graph.nodes[n]["kind"], str(graph.nodes[n].get("name"))))
        offset = (tallest - len(nodes)) / 2
        if len(nodes) == 1 and tallest > 2:  # stagger lone nodes so labels do not meet
            offset += 0.8 if layer % 2 else -0.8
        for row, node in enumerate(nodes):
            positions[node] = (float(layer), float(tallest - offset - row))
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
    return plot_text(name if len(name) <= LABEL_CHARS else name[:10] + "…" + name[-10:])
