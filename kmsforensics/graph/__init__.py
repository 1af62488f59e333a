"""The identity and resource graph (networkx), and the questions asked of it."""

from .build import RELATIONS, build_graph
from .export import read_graph, write_graph
from .paths import cross_account, diff, role_chains
from .plot import plot_graph
from .query import (
    AmbiguousReferenceError,
    UnknownReferenceError,
    blast_radius,
    resolve,
    trace,
    who_accessed,
)

__all__ = [
    "RELATIONS",
    "AmbiguousReferenceError",
    "UnknownReferenceError",
    "blast_radius",
    "build_graph",
    "cross_account",
    "diff",
    "plot_graph",
    "read_graph",
    "resolve",
    "role_chains",
    "trace",
    "who_accessed",
    "write_graph",
]
