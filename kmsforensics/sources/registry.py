"""The registry of record kinds: what a record is, and what is done with it.

Every record, whatever shape its file had, is JSON text. A *kind* says how a
record of its kind is recognised (a SQL condition on its keys, evaluated by the
classification query that :func:`classification_query` builds from the
registry) and what happens to it:

* a :class:`Source` (a KMS access-log record, an ActionTrail event) is
  extracted into raw text columns, normalised into typed columns, and knows the
  columns of its empty frame and the fields that make two rows the same event;
* an :class:`Envelope` (an SLS record around an event, a LookupEvents page, an
  SDK response...) is unwrapped into the records it holds, which are classified
  again, one level at a time;
* a :class:`Reject` explains why a record cannot be loaded.

Kinds are tried in ``order``; the first whose condition holds takes the record.
Adding a kind is one module under :mod:`kmsforensics.sources` that calls
:func:`register`, and one test. (The model is plaso's parser registry.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from ..issues import IssueLog

if TYPE_CHECKING:
    from ..extract import Extracted, Extractor


@dataclass(frozen=True)
class Container:
    """A JSON object inside the record whose unknown keys a kind wants to know.

    ``prefix`` is put before each unknown key to name its column (``""`` for the
    record itself, ``"userIdentity."`` for keys found under ``$.userIdentity``).
    """

    path: str
    prefix: str
    known: frozenset[str]


@dataclass(frozen=True)
class Options:
    """What the analyst asked of the load that the kinds need."""

    #: Zone for times written without one (``None``: UTC, with a note).
    assume_timezone: str | None = None


class Kind:
    """A kind of record. Subclasses set the attributes and implement :meth:`handle`."""

    #: Name shown in issues and used in the classification result.
    name: str = ""
    #: Kinds are tried in increasing order.
    order: int = 100
    #: SQL condition; ``ks[1]`` is the list of the record's top-level keys,
    #: ``ks[i]`` those of the kind's :attr:`containers` (see :meth:`key_index`),
    #: ``json`` the record's text.
    recognise: str = "false"
    #: Containers whose unknown keys the kind receives, per row, in ``extra_<i>``.
    containers: tuple[Container, ...] = ()
    #: JSON paths searched for keys given twice (:mod:`kmsforensics.formats.hazards`).
    searched: tuple[str, ...] = ()
    #: Further SQL values the classification computes for the kind's rows.
    outputs: tuple[tuple[str, str], ...] = ()
    #: JSON paths whose type (``json_type(json, path)``) or keys the condition reads.
    #: A condition may read ``ks`` and, of ``json``, only the types and keys at these
    #: paths, and a type only where the record has the path's first key (or no keys):
    #: records alike in all of them are classified once (:func:`signature_query`).
    inspected: tuple[str, ...] = ()

    def handle(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Deal with this kind's records; return the records to classify next round."""
        raise NotImplementedError


class Source(Kind):
    """A record kind that becomes rows of a frame (``case.kms``, ``case.actiontrail``)."""

    #: ``kms`` or ``actiontrail``: the frame the rows go to.
    label: str = ""
    #: (id, time, name) columns: equal in all three means the same event.
    dedupe: tuple[str, str, str] = ("", "", "")

    def extract(self, ctx: Extractor, records: pa.Table, keys: pa.Table) -> pa.Table:
        """Return the raw text columns of the records (with provenance)."""
        raise NotImplementedError

    def normalise(self, raw: pa.Table, issues: IssueLog, options: Options) -> pa.Table:
        """Return the typed columns made from the raw ones."""
        raise NotImplementedError

    def raw_columns(self) -> list[str]:
        """Return the names of the raw text columns :meth:`extract` gives (no provenance)."""
        raise NotImplementedError

    def empty(self, issues: IssueLog, options: Options) -> pa.Table:
        """Return the typed table with no rows (the frame of a case without this source).

        The raw columns (provenance first, typed as in a record table) with no rows,
        typed by :meth:`normalise`, so the empty frame has the columns of a full one.
        """
        provenance = {"source_file": pa.string(), "source_record": pa.int64(),
                      "source_item": pa.int32()}  # fmt: skip
        types = {**provenance, **dict.fromkeys(self.raw_columns(), pa.string())}
        raw = pa.table({name: pa.array([], kind) for name, kind in types.items()})
        return self.normalise(raw, issues, options)

    def activity(self, typed: pa.Table) -> pa.Table:
        """Return the rows of ``case.activity`` for the typed rows."""
        raise NotImplementedError

    def handle(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Hand the records to this kind; return those to classify next."""
        out.raw.setdefault(self.label, []).append(self.extract(ctx, records, keys))
        return records.slice(0, 0)


class Envelope(Kind):
    """A record kind that holds other records.

    Most envelopes hold one record at one path: they declare ``inner`` (its path),
    ``carried`` (envelope values that travel with it: column name, path) and
    ``described`` (how an issue names the envelope), and the default :meth:`unwrap`
    takes the record out. Others override :meth:`unwrap`.
    """

    #: Path of the record inside (an object, or a JSON string holding one).
    inner: str = ""
    #: (column, path) pairs: envelope values kept beside the record inside.
    carried: tuple[tuple[str, str], ...] = ()
    #: The envelope as an issue names it ("SDK response whose `body`").
    described: str = ""

    def unwrap(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Return the records inside (provenance kept; ``source_item`` for list items)."""
        if not self.inner:
            raise NotImplementedError(f"{type(self).__name__} declares no inner path")
        return ctx.unwrap_path(records, self.inner, list(self.carried), self.described)

    def handle(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Hand the records to this kind; return those to classify next."""
        return self.unwrap(ctx, records, keys, out)


class Reject(Kind):
    """Records that cannot be loaded, with the reason given in ``case.issues``."""

    reason: str = ""

    def handle(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Hand the records to this kind; return those to classify next."""
        ctx.reject_all(records, self.reason)
        return records.slice(0, 0)


@dataclass
class _Registry:
    kinds: dict[str, Kind] = field(default_factory=dict)
    query: str | None = None


_REGISTRY = _Registry()


def register(kind: Kind) -> Kind:
    """Add a record kind (a module of :mod:`kmsforensics.sources` calls this)."""
    if kind.name in _REGISTRY.kinds and type(_REGISTRY.kinds[kind.name]) is not type(kind):
        raise ValueError(f"record kind {kind.name!r} is registered twice")
    _REGISTRY.kinds[kind.name] = kind
    _REGISTRY.query = None
    return kind


def kinds() -> list[Kind]:
    """Return the registered kinds, in the order they are tried."""
    return sorted(_REGISTRY.kinds.values(), key=lambda k: (k.order, k.name))


def get(name: str) -> Kind:
    """Return the registered kind called ``name``."""
    return _REGISTRY.kinds[name]


def sources() -> dict[str, Source]:
    """Return the source kinds by label (``kms``, ``actiontrail``), in the registry's order.

    Examples
    --------
    >>> import kmsforensics.sources as s
    >>> list(s.sources())
    ['actiontrail', 'kms']
    """
    found: dict[str, Source] = {}
    for kind in kinds():
        if isinstance(kind, Source):
            found.setdefault(kind.label, kind)
    return dict(sorted(found.items()))


def key_paths() -> list[str]:
    """JSON paths whose keys the classification reads: ``$`` first, then containers."""
    paths = ["$"]
    for kind in kinds():
        for path in (*(c.path for c in kind.containers), *kind.searched):
            if path not in paths:
                paths.append(path)
    return paths


def inspected_paths() -> list[str]:
    """JSON paths whose types (and keys) tell records apart: ``$`` first, then the kinds'.

    Examples
    --------
    >>> import kmsforensics.sources  # registers the kinds
    >>> inspected_paths()[:2]
    ['$', '$.body']
    """
    paths = ["$"]
    for kind in kinds():
        paths.extend(p for p in kind.inspected if p not in paths)
    return paths


def signature_query() -> str:
    """Build the per-record query that the classification starts from.

    For each record: ``sig``, a 64-bit hash (duckdb's ``hash``) of every key list the
    conditions read (:func:`key_paths` and :func:`inspected_paths`) and of the JSON
    types at the inspected paths (looked at only in records that have no keys, or the
    first key of an inspected path: the conditions read a type only then). Two records
    with the same ``sig`` get the same kind and the same ``repeated`` flag (the hash is
    not cryptographic: see ARCHITECTURE.md on crafted collisions), so
    :func:`classification_query` runs once per distinct ``sig``, on one record standing
    for the others (a file holds few shapes of record, however many records). Also
    ``literal`` and ``comma`` (see :func:`classification_query`), which depend on the
    whole text.
    """
    return (
        "SELECT hash(k, CASE WHEN len(k[1]) = 0 OR list_has_any(k[1], $tops) "
        "THEN try(json_type(json, $typed)) END) AS sig, "
        "(contains(json, 'NaN') OR contains(json, 'Infinity')) AS literal, "
        "regexp_matches(json, ',\\s*[}\\]]') AS comma "
        "FROM (SELECT try(json_keys(json, $paths)) AS k, json FROM {table})"
    )


def signature_paths() -> dict[str, list[str]]:
    """Return the parameters of :func:`signature_query`.

    Examples
    --------
    >>> import kmsforensics.sources  # registers the kinds
    >>> signature_paths()["tops"]
    ['Events', 'body', 'contents']
    """
    keys = key_paths()
    typed = inspected_paths()
    tops = sorted({p[2:].split(".")[0] for p in typed if p != "$"})
    return {"paths": keys + [p for p in typed if p not in keys], "typed": typed, "tops": tops}


def key_index(path: str) -> int:
    """Return the 1-based index of a container's key list in ``ks``."""
    return key_paths().index(path) + 1


def classification_query() -> str:
    """Build the classification query from the registered kinds (cached).

    The result has one row per record: ``kind`` (the name of the first kind whose
    condition holds, ``unknown`` if none), ``repeated`` (a searched container gives a
    key twice) and ``ks``, the key lists of :func:`key_paths`. With ``literal`` (the
    text may hold a ``NaN`` or ``Infinity`` literal) and ``comma`` (a comma before a
    closing bracket) of :func:`signature_query`, ``repeated`` marks the records to
    look at closely before any kind reads them. It runs on one record of each
    signature (see :func:`signature_query`).
    """
    if _REGISTRY.query is not None:
        return _REGISTRY.query
    cases = " ".join(f"WHEN {k.recognise} THEN {_literal(k.name)}" for k in kinds())
    repeated = " OR ".join(
        f"len(ks[{i}]) != len(list_distinct(ks[{i}]))" for i in range(1, len(key_paths()) + 1)
    )
    query = (
        "WITH k AS (SELECT try(json_keys(json, $containers)) AS ks, json FROM {table}) "
        f"SELECT CASE {cases} ELSE 'unknown' END AS kind, ({repeated}) AS repeated, ks FROM k"
    )
    _REGISTRY.query = query
    return query


def unknown_keys(kind: Kind, ks: pa.ListArray) -> pa.Table:
    """Return the keys of ``kind``'s containers that are not in their ``known`` sets.

    ``ks`` holds the key lists (:func:`key_paths`) of the kind's records (one record
    of each signature is enough). One column ``extra_<i>`` per container, with one
    row: the list of the distinct unknown keys found in any of the records (what
    :meth:`Extractor.extras` reads).
    """
    columns = {}
    for i, container in enumerate(kind.containers):
        listed = pc.list_flatten(pc.list_element(ks, key_index(container.path) - 1))
        found = pc.unique(listed).to_pylist() if len(listed) else []
        names = sorted(n for n in found if n is not None and n not in container.known)
        columns[f"extra_{i}"] = pa.array([names], pa.list_(pa.string()))
    return pa.table(columns) if columns else pa.table({"_": pa.array([None], pa.null())})


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _literal_list(values: list[str]) -> str:
    return "[" + ", ".join(_literal(v) for v in values) + "]::VARCHAR[]"
