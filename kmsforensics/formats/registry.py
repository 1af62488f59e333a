"""The registry of input shapes: how each is sniffed and split into records.

A shape is one module of :mod:`kmsforensics.formats` that calls :func:`register`
with two functions: ``sniff`` (looks at the first bytes of the decompressed
content and says whether the file is of this shape) and ``split`` (turns the
whole content into a record table). :func:`kmsforensics.formats.sniff` asks the
shapes in their ``order``; the first that recognises the content wins.

Adding a shape is one module that registers itself, imported in
``formats/__init__.py``, and one test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..issues import IssueLog
from .records import Split

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Sniffed:
    """The result of sniffing: a shape, or ``None`` with the reason."""

    shape: str | None
    reason: str = ""
    delimiter: str = ","


#: ``sniff(head, column_map)``: ``head`` is the content's first bytes without BOM,
#: leading white space and leading ``//`` comment lines.
SniffFunction = Callable[[bytes, dict[str, str]], Sniffed | None]
#: ``split(data, name, issues, sniffed, column_map)``.
SplitFunction = Callable[[bytes, str, IssueLog, Sniffed, dict[str, str]], Split]


@dataclass(frozen=True)
class Shape:
    """One input shape.

    Attributes
    ----------
    name : str
        Shown in ``case.manifest.format`` (``json-array``, ``csv``...).
    order : int
        Shapes are asked in increasing order.
    sniff, split : callable
        See :data:`SniffFunction` and :data:`SplitFunction`.
    fast : bool
        Files of this shape on disk may be split by duckdb straight from the file
        (:mod:`kmsforensics.formats.fast`), with this shape's ``split`` as fallback.
    """

    name: str
    order: int
    sniff: SniffFunction
    split: SplitFunction
    fast: bool = False


_SHAPES: dict[str, Shape] = {}


def register(shape: Shape) -> Shape:
    """Add a shape to the registry (a module calls this when imported).

    Examples
    --------
    >>> from kmsforensics.formats.registry import shapes
    >>> [s.name for s in shapes()]
    ['json-array', 'json-object', 'json-lines', 'csv']
    """
    if shape.name in _SHAPES and _SHAPES[shape.name] != shape:
        raise ValueError(f"input shape {shape.name!r} is registered twice")
    _SHAPES[shape.name] = shape
    return shape


def shapes() -> list[Shape]:
    """Return the registered shapes, in the order they are tried."""
    return sorted(_SHAPES.values(), key=lambda s: (s.order, s.name))


def get(name: str) -> Shape:
    """Return the registered shape called ``name``."""
    return _SHAPES[name]
