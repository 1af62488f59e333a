"""``kf.build_graph`` on the dask engine: the same group-bys, one day per task.

Every edge attribute folds across days (counts and failures add, first and last seen
are a min and a max, operations a union, ``cross_account`` an any), so the edges of
each day's partition, merged, are the edges of the whole case. Two passes run on the
cluster: the role names that resolve to role ids (first appearance kept, as in the
pandas build), then each day's edges and name pairs; the driver merges them and makes
the networkx graph, whose size follows the distinct relations, not the events.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import pandas as pd

from ..case import Case
from .build import (
    EDGE_COLUMNS,
    READS,
    _merge_duplicates,
    _Parts,
    add_allowed,
    assemble,
    role_ids,
)


def _day_roles(at: pd.DataFrame) -> pd.DataFrame:
    return role_ids(at)


def _day_parts(
    activity: pd.DataFrame, kms: pd.DataFrame, at: pd.DataFrame, roles: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    empty = pd.DataFrame()
    parts = _Parts(Case(kms, at, activity, empty, empty), roles)
    return parts.edge_frame(), parts.name_pairs()


def build_graph_dask(case: Any) -> nx.MultiDiGraph:
    """Build the graph of a dask-engine case on its cluster (see the module docstring)."""
    import dask

    partitions = case.partitions(dict(READS))
    found = dask.compute(*[dask.delayed(_day_roles)(at) for _, _, at in partitions])
    roles = pd.concat(found, ignore_index=True).drop_duplicates(["account", "name"])
    results = dask.compute(*[dask.delayed(_day_parts)(a, k, t, roles) for a, k, t in partitions])
    edge_frames = [edges for edges, _ in results if len(edges)]
    edges = (
        _merge_duplicates(pd.concat(edge_frames, ignore_index=True))
        if edge_frames
        else pd.DataFrame(columns=EDGE_COLUMNS)
    )
    pairs = {
        kind: pd.concat([p[kind] for _, p in results], ignore_index=True).drop_duplicates()
        for kind in ("users", "roles", "targets")
    }
    graph = assemble(edges, pairs)
    add_allowed(graph, case)
    return graph
