"""Records -> raw field tables, one classification query per round.

Every reader hands over records as JSON text (:mod:`kmsforensics.formats`). The
:class:`Extractor` classifies each record with the query the record-kind registry
builds (:mod:`kmsforensics.sources.registry`) and hands each kind its records:
sources extract their fields, envelopes unwrap the records they hold (classified
again in the next round, one level at a time), rejects report why. All shapes go
through the same kinds, so the same event gives the same row whichever file it
came in.

Values come out as text: JSON strings unquoted, numbers and booleans as written,
objects and arrays as compact JSON. Typing is the normaliser's job.

This module also holds the SQL helpers the kinds share (``extract``,
``extract_text``, ``extras``, ``unwrap_path``...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .formats.hazards import clean_json
from .formats.jsontext import dump
from .formats.repair import is_json, salvage
from .issues import IssueLog
from .tables import take

#: How many distinct unknown fields become columns of their own, per source and load.
MAX_EXTRA_COLUMNS = 100
#: Envelopes inside envelopes are unwrapped this many times at most.
MAX_UNWRAP_ROUNDS = 8
PROVENANCE = ("source_file", "source_record", "source_item")
#: Rows per Arrow batch from duckdb (large, so columns come back in few chunks).
_ARROW_BATCH = 1 << 22
#: Rows per Arrow batch handed to duckdb: it scans batches in parallel, so a table of
#: one large chunk (one big file) would be read on one core.
SCAN_ROWS = 16_384


@dataclass
class Extracted:
    """Raw field tables (text columns) of one batch, with provenance, per source label."""

    raw: dict[str, list[pa.Table]] = field(default_factory=dict)
    #: Records found inside containers (pages, lists), per file (added to records read).
    extra_records: Counter[str] = field(default_factory=Counter)
    #: AAP configuration exports (saved API responses): provenance + ``json``.
    aap_config: list[pa.Table] = field(default_factory=list)


class Extractor:
    """Runs the classification and the kinds' queries on a duckdb connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, issues: IssueLog) -> None:
        self.con = con
        self.issues = issues
        self._extra_names: dict[str, set[str]] = {}
        self._dropped_extras: dict[str, set[str]] = {}

    def run(self, records: pa.Table) -> Extracted:
        """Classify and extract a record table (columns: provenance + ``json``)."""
        out = Extracted()
        pending = records
        for _ in range(MAX_UNWRAP_ROUNDS):
            if not pending.num_rows:
                break
            pending = self._round(pending, out)
        else:
            self.reject_all(pending, "envelopes nested too deeply to unwrap")
        return out

    def _round(self, table: pa.Table, out: Extracted) -> pa.Table:
        from .sources import registry  # the kinds import this module's helpers

        kinds, repeated, literal, comma, ks, ks_kinds = self._classify(table)
        # pages are parsed again in Python when expanded: look inside their events too
        suspects = pc.or_(pc.fill_null(repeated, False), pc.equal(kinds, "events-page"))
        table = clean_json(table, self.issues, suspects, literal)
        table = self._trailing_commas(table, comma)
        present = pc.unique(kinds).to_pylist()
        follow_up: list[pa.Table] = []
        for kind in registry.kinds():
            if kind.name not in present:
                continue
            subset = table if len(present) == 1 else table.filter(pc.equal(kinds, kind.name))
            keys = registry.unknown_keys(kind, ks.filter(pc.equal(ks_kinds, kind.name)))
            follow_up.append(kind.handle(self, subset, keys, out))
        if "unknown" in present:
            self.reject_all(
                table.filter(pc.equal(kinds, "unknown")),
                "neither an ActionTrail event nor a KMS access-log record "
                "(none of the fields that identify either)",
            )
        follow_up = [t for t in follow_up if t.num_rows]
        if not follow_up:
            return table.slice(0, 0)
        return pa.concat_tables(follow_up, promote_options="default")

    def _classify(
        self, table: pa.Table
    ) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array, pa.Array, pa.Array]:
        """Classify each record: its kind, and the marks of records to look at closely.

        Records are told apart by their signatures (:func:`~kmsforensics.sources.
        registry.signature_query`); the conditions run on one record of each. Returns
        per record ``kind``, ``repeated``, ``literal`` and ``comma``, and per distinct
        signature its key lists and kind (for the kinds' unknown keys).
        """
        from .sources import registry

        marks = self.sql(registry.signature_query(), table.select(["json"]),
                         **registry.signature_paths())  # fmt: skip
        signatures = marks.column("sig").to_numpy()
        # the first record of each signature, and each record's signature among those
        _, first, inverse = np.unique(signatures, return_index=True, return_inverse=True)
        standing = self.sql(
            registry.classification_query(),
            take(table.select(["json"]), first),
            containers=registry.key_paths(),
        )
        kinds = standing.column("kind").combine_chunks()
        repeated = standing.column("repeated").combine_chunks()
        each = pa.array(inverse.ravel(), pa.int64())
        return (
            kinds.take(each),
            repeated.take(each),
            marks.column("literal").combine_chunks(),
            marks.column("comma").combine_chunks(),
            standing.column("ks").combine_chunks(),
            kinds,
        )

    def _trailing_commas(self, table: pa.Table, candidates: pa.ChunkedArray) -> pa.Table:
        """Repair (and report) trailing commas, which duckdb's reader accepts silently.

        ``candidates`` marks the records with a comma before a closing bracket (the
        classification query finds them).
        """
        texts = table.column("json")
        candidates = pc.fill_null(candidates, False)
        if not pc.any(candidates).as_py():
            return table
        index = pc.indices_nonzero(candidates)
        replaced: dict[int, str] = {}
        for i, row in zip(index.to_pylist(), rows(take(table, index)), strict=True):
            raw = row["json"] if isinstance(row["json"], (str, bytes)) else ""
            if is_json(raw):
                continue  # a comma inside a string
            text, repairs, _ = salvage(raw)
            if text is None:
                continue  # beyond repair: classified (and explained) as it is
            for repair in repairs:
                self.issue(row, "field", None, repair)
            replaced[i] = text
        if not replaced:
            return table
        mask = pa.array([i in replaced for i in range(table.num_rows)])
        fixed = pc.replace_with_mask(
            texts.combine_chunks(), mask, pa.array(list(replaced.values()), pa.string())
        )
        return table.set_column(table.column_names.index("json"), "json", fixed)

    # -- SQL helpers for the kinds -----------------------------------------------------

    def sql(self, query: str, table: pa.Table, **params: object) -> pa.Table:
        """Run ``query`` (``{table}`` names ``table``) and return its Arrow result."""
        name = "records_view"
        self.con.register(name, scannable(table))
        try:
            relation = self.con.sql(query.replace("{table}", name), params=params or None)
            return relation.to_arrow_table(batch_size=_ARROW_BATCH)
        finally:
            self.con.unregister(name)

    def extract(
        self, table: pa.Table, column: str, paths: Sequence[tuple[str, str]]
    ) -> dict[str, pa.Array]:
        """Extract ``paths`` from a JSON column, parsing each record once.

        Simple dotted paths are read into a struct of text fields (``from_json``,
        duckdb's fastest route); JSON pointers (unknown keys) path by path.
        """
        if all(_is_dotted(p) for _, p in paths):
            return self._extract_struct(table, column, paths)
        return self._extract_paths(table, column, paths)

    def _extract_struct(
        self, table: pa.Table, column: str, paths: Sequence[tuple[str, str]]
    ) -> dict[str, pa.Array]:
        spec = struct_spec(p for _, p in paths)
        fields = ", ".join(
            "s." + ".".join(f'"{part}"' for part in path[2:].split(".")) + f" AS c{i}"
            for i, (_, path) in enumerate(paths)
        )
        result = self.sql(
            f"SELECT s IS NULL AS failed, {fields} FROM "
            f"(SELECT try(from_json({column}, $spec)) AS s FROM {{table}})",
            table.select([column]),
            spec=orjson.dumps(spec).decode(),
        )
        columns = {name: result.column(f"c{i}") for i, (name, _) in enumerate(paths)}
        failed = result.column("failed")
        if pc.any(failed).as_py():  # not readable as that structure: read path by path
            slow = self._extract_paths(table.filter(failed), column, paths)
            index = pc.indices_nonzero(failed).to_pylist()
            for name in columns:
                patched = columns[name].combine_chunks().to_pylist()
                for i, value in zip(index, slow[name].to_pylist(), strict=True):
                    patched[i] = value
                columns[name] = pa.array(patched, pa.string())
        return columns

    def _extract_paths(
        self, table: pa.Table, column: str, paths: Sequence[tuple[str, str]]
    ) -> dict[str, pa.Array]:
        unpack = ", ".join(f"v[{i + 1}] AS c{i}" for i in range(len(paths)))
        result = self.sql(
            f"SELECT {unpack} FROM (SELECT try(json_extract_string({column}, $paths)) AS v "
            "FROM {table})",
            table.select([column]),
            paths=[p for _, p in paths],
        )
        return {name: result.column(i) for i, (name, _) in enumerate(paths)}

    def extract_text(
        self, texts: pa.Array, paths: Sequence[tuple[str, str]]
    ) -> dict[str, pa.Array]:
        """Extract paths from a column of JSON texts; ``_ok`` is null where unreadable.

        A text that is itself a JSON string holding JSON (double-escaped, as SLS
        sometimes gives ``requestParameterJson``) is read through that string.
        """
        unpack = ", ".join(f"v[{i + 1}] AS c{i}" for i in range(len(paths)))
        result = self.sql(
            f"SELECT {unpack}, v IS NOT NULL AS ok FROM "
            "(SELECT try(json_extract_string(CASE WHEN starts_with(ltrim(v), '\"') "
            "THEN json_extract_string(v, '$') ELSE v END, $paths)) AS v FROM {table})",
            pa.table({"v": texts}),
            paths=[p for _, p in paths],
        )
        out = {name: result.column(i).combine_chunks() for i, (name, _) in enumerate(paths)}
        ok = result.column("ok").combine_chunks()
        out["_ok"] = pc.if_else(ok, ok, pa.scalar(None, pa.bool_()))
        return out

    def extras(
        self,
        table: pa.Table,
        extra: pa.ChunkedArray,
        source: str,
        prefix: str,
        base: str = "",
        texts: pa.Array | None = None,
    ) -> dict[str, pa.Array]:
        """Extract unknown keys (listed per row in ``extra``) as columns of their own.

        The keys are read from the records' JSON, or from ``texts`` (one JSON text
        per record, such as an object extracted from it) when given.
        """
        flat = pc.list_flatten(extra.combine_chunks()) if len(extra) else pa.array([], pa.string())
        names = [n for n in pc.unique(flat).to_pylist() if n is not None] if len(flat) else []
        if not names:
            return {}
        allowed = self._extra_names.setdefault(source, set())
        dropped = self._dropped_extras.setdefault(source, set())
        chosen = []
        for name in sorted(names):
            label = prefix + name
            if label in allowed or len(allowed) < MAX_EXTRA_COLUMNS:
                allowed.add(label)
                chosen.append(name)
            elif label not in dropped:
                dropped.add(label)
                self.issues.add(
                    "(all files)",
                    None,
                    "note",
                    label,
                    f"more than {MAX_EXTRA_COLUMNS} distinct unknown fields in "
                    f"{source} records; {label!r} is not kept as a column",
                )
        pointer = _pointer(base)
        paths = [(prefix + name, pointer + "/" + _escape_pointer(name)) for name in chosen]
        return self.extract(table if texts is None else pa.table({"json": texts}), "json", paths)

    def unwrap_path(
        self,
        table: pa.Table,
        inner: str,
        carry: Sequence[tuple[str, str]],
        what: str,
        attach: dict[str, pa.Array] | None = None,
    ) -> pa.Table:
        """Replace each record by the value at ``inner`` (an object, or JSON as a string).

        ``carry`` names envelope values kept with the record: (column, path). An
        existing column of that name (set by an outer envelope) keeps its value
        where the inner envelope has none; other names become ``envelope.<name>``
        columns; ``attach`` adds columns as they are. A record whose ``inner`` value
        is missing is rejected.
        """
        values = self.extract(table, "json", ((("json", inner)), *carry))
        unwrapped = table.set_column(
            table.column_names.index("json"), "json", values.pop("json").cast(pa.string())
        )
        for name, new in {**values, **(attach or {})}.items():
            if name in unwrapped.column_names:
                index = unwrapped.column_names.index(name)
                old = unwrapped.column(name).combine_chunks()
                unwrapped = unwrapped.set_column(index, name, pc.coalesce(new, old))
            else:
                unwrapped = unwrapped.append_column(name, new)
        missing = pc.is_null(unwrapped.column("json"))
        self.reject_all(unwrapped.filter(missing), f"{what} is empty or null")
        return unwrapped.filter(pc.invert(missing))

    def rewrite(
        self,
        table: pa.Table,
        change: Callable[[object], tuple[object | None, list[str]]],
    ) -> pa.Table:
        """Rewrite records in Python: ``change(parsed)`` returns (new value, repairs).

        For the rare kinds that SQL cannot express (key case folding, for example);
        a ``None`` value drops the record (``change`` has reported why).
        """
        keep: list[int] = []
        texts: list[str] = []
        for index, row in enumerate(rows(table)):
            raw = row["json"]
            value, notes = change(_loads(raw))
            for note in notes:
                self.issue(row, "field", None, note)
            if value is None:
                continue
            keep.append(index)
            texts.append(dump(value))
        kept = take(table, keep)
        return kept.set_column(
            kept.column_names.index("json"), "json", pa.array(texts, pa.string())
        )

    def expand_lists(
        self, table: pa.Table, key: str, out: Extracted, case_insensitive: bool = False
    ) -> pa.Table:
        """Replace each record by the items of its list ``key`` (``source_item`` = index)."""
        parts: dict[str, list[object]] = {name: [] for name in table.column_names}
        for row in table.to_pylist():
            value = _loads(row["json"])
            items = _get(value, key, case_insensitive) if isinstance(value, dict) else None
            events = items if isinstance(items, list) else []
            out.extra_records[row["source_file"]] += len(events) - 1
            for index, event in enumerate(events):
                for name in table.column_names:
                    parts[name].append(row[name])
                parts["source_item"][-1] = index
                parts["json"][-1] = dump(event)
        return pa.table(
            {
                name: pa.array(values, table.schema.field(name).type)
                for name, values in parts.items()
            }
        )

    # -- issues ------------------------------------------------------------------------

    def issue(
        self, row: dict[str, object], severity: str, fieldname: str | None, reason: str
    ) -> None:
        """Add an issue about one record (with its position and text)."""
        if row.get("source_item") is not None:
            reason = f"{reason} (Events[{row['source_item']}])"
        raw = row.get("json")
        self.issues.add(
            str(row["source_file"]),
            _record_number(row),
            severity,
            fieldname,
            reason,
            raw if isinstance(raw, (str, bytes)) else None,
        )

    def reject(self, row: dict[str, object], reason: str) -> None:
        """Report one record as not loaded."""
        self.issue(row, "record", None, reason)

    def reject_all(self, table: pa.Table, reason: str) -> None:
        """Report every record of ``table`` as not loaded."""
        for row in rows(table):
            self.reject(row, reason)


def scannable(table: pa.Table, rows: int = SCAN_ROWS) -> pa.Table:
    """Return ``table`` in batches of at most ``rows`` rows (zero-copy slices).

    Examples
    --------
    >>> t = pa.table({"a": list(range(10))})
    >>> [b.num_rows for b in scannable(t, 4).to_batches()]
    [4, 4, 2]
    """
    if all(b.num_rows <= rows for b in table.to_batches()):
        return table
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows), table.schema)


def _loads(raw: object) -> object:
    text = raw if isinstance(raw, (str, bytes)) else ""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # big integers: the standard library keeps them exact
        import json

        return json.loads(text)


def _get(value: dict[str, object], key: str, case_insensitive: bool) -> object:
    if key in value or not case_insensitive:
        return value.get(key)
    lowered = key.lower()
    return next((v for k, v in value.items() if k.lower() == lowered), None)


def _is_dotted(path: str) -> bool:
    return path.startswith("$.") and all(p.isidentifier() for p in path[2:].split("."))


def struct_spec(paths: Iterator[str] | Sequence[str]) -> dict[str, object]:
    """Build the ``from_json`` structure that reads each dotted path as text.

    Examples
    --------
    >>> struct_spec(["$.a", "$.u.t", "$.u.s.x"])
    {'a': 'VARCHAR', 'u': {'t': 'VARCHAR', 's': {'x': 'VARCHAR'}}}
    """
    spec: dict[str, object] = {}
    for path in paths:
        node = spec
        parts = path[2:].split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            assert isinstance(child, dict), f"{path} is both a field and a container"
            node = child
        node[parts[-1]] = "VARCHAR"
    return spec


def assemble(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    """Provenance of ``table`` followed by ``columns`` (as text)."""
    arrays = [table.column(name).combine_chunks() for name in PROVENANCE]
    names = list(PROVENANCE)
    for name, values in columns.items():
        if name in PROVENANCE:
            name = f"extra:{name}"
        names.append(name)
        arrays.append(values.cast(pa.string()) if values.type != pa.string() else values)
    return pa.Table.from_arrays(arrays, names=names)


def rows(table: pa.Table) -> Iterator[dict[str, object]]:
    """Provenance and JSON text of each record, as dicts."""
    yield from table.select([*PROVENANCE, "json"]).to_pylist()


def _record_number(row: dict[str, object]) -> int | None:
    value = row["source_record"]
    return int(value) if isinstance(value, int) else None


def _pointer(path: str) -> str:
    if not path:
        return ""
    parts = path.removeprefix("$.").split(".")
    return "".join("/" + _escape_pointer(p) for p in parts)


def _escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
