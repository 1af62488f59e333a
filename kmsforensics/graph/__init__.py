"""The identity and resource graph (networkx), and the questions asked of it."""

from .build import RELATIONS, build_graph
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
    "resolve",
    "trace",
    "who_accessed",
]
