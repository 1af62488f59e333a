"""Records -> raw field tables, with one SQL pass per kind of record.

Every reader hands over records as JSON text (:mod:`kmsforensics.formats`). This
module classifies each record by its keys (ActionTrail event, SLS envelope around
an event, LookupEvents page, KMS access-log record, or none of these), unwraps
envelopes and pages, salvages what can be salvaged, and extracts every known
field as text with duckdb's JSON functions. All shapes go through the same
queries, so the same event gives the same row whichever file it came in.

Values come out as text: JSON strings unquoted, numbers and booleans as written,
objects and arrays as compact JSON. Typing is the normaliser's job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .formats.hazards import clean_json
from .formats.jsontext import dump
from .formats.repair import salvage
from .issues import IssueLog
from .schema import (
    AAP_CONFIG_MARKERS,
    AT_ENVELOPE_FIELDS,
    AT_IDENTITY_FIELDS,
    AT_KNOWN_IDENTITY,
    AT_KNOWN_TOP,
    AT_MARKER_KEYS,
    AT_MISSPELLED_NESTED,
    AT_NESTED_FIELDS,
    AT_REQUEST_PARAMETERS,
    AT_SCALAR_FIELDS,
    KMS_FIELDS,
    KMS_MARKER_KEYS,
)

#: How many distinct unknown fields become columns of their own, per source and load.
MAX_EXTRA_COLUMNS = 100
#: Envelopes and pages inside envelopes are unwrapped this many times at most.
MAX_UNWRAP_ROUNDS = 4
PROVENANCE = ("source_file", "source_record", "source_item")
#: Rows per Arrow batch from duckdb (large, so columns come back in few chunks).
_ARROW_BATCH = 1 << 22

#: (column, JSON path) of every ActionTrail field extracted from the event.
AT_PATHS: tuple[tuple[str, str], ...] = (
    *((name, f"$.{name}") for name in AT_SCALAR_FIELDS),
    *((f"userIdentity.{name}", f"$.userIdentity.{name}") for name in AT_IDENTITY_FIELDS),
    *((name, f"$.{name}") for name in AT_NESTED_FIELDS),
    *((f"_misspelled.{wrong}", f"$.{wrong}") for wrong in AT_MISSPELLED_NESTED),
    *((name, f"$.{name}") for name in AT_ENVELOPE_FIELDS),
)
#: (column, path) lifted out of requestParameters (or SLS requestParameterJson).
RP_PATHS: tuple[tuple[str, str], ...] = tuple(
    (f"requestParameters.{name}", f"$.{name}") for name in AT_REQUEST_PARAMETERS
)
#: (column, path) lifted out of additionalEventData.
AED_PATHS: tuple[tuple[str, str], ...] = (
    ("additionalEventData.mfaChecked", "$.mfaChecked"),
    ("additionalEventData.isMFAChecked", "$.isMFAChecked"),
    ("additionalEventData.loginAccount", "$.loginAccount"),
)
#: Nested containers inside userIdentity whose unknown keys are kept as columns.
_IDENTITY_CONTAINERS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("userIdentity", "$.userIdentity", AT_KNOWN_IDENTITY),
    ("userIdentity.sessionContext", "$.userIdentity.sessionContext", frozenset({"attributes"})),
    (
        "userIdentity.sessionContext.attributes",
        "$.userIdentity.sessionContext.attributes",
        frozenset({"mfaAuthenticated", "creationDate"}),
    ),
)
KMS_PATHS: tuple[tuple[str, str], ...] = tuple((name, f"$.{name}") for name in KMS_FIELDS)
RESOURCE_PARAMETER_PATHS: tuple[tuple[str, str], ...] = (
    ("rp_key_id", "$.key_id"),
    ("rp_key_version_id", "$.key_version_id"),
    ("hsm_index", "$.index"),
)


#: Containers whose keys the classification reads: the record, then userIdentity's.
_KEY_CONTAINERS = ["$"] + [path for _, path, _ in _IDENTITY_CONTAINERS]

_CLASSIFY = """
WITH k AS (SELECT try(json_keys(json, $containers)) AS ks, json FROM {table}),
c AS (
  SELECT ks, CASE
    WHEN ks IS NULL THEN 'invalid'
    WHEN len(ks[1]) = 0 THEN
      CASE WHEN json_type(json) = 'OBJECT' THEN 'empty' ELSE 'not-object' END
    WHEN list_contains(ks[1], 'Events') AND json_type(json, '$.Events') = 'ARRAY'
      THEN 'container'
    WHEN list_contains(ks[1], 'event') AND NOT list_has_any(ks[1], $at_markers) THEN 'sls'
    WHEN list_has_any(ks[1], $at_markers) THEN 'actiontrail'
    WHEN list_has_any(ks[1], $kms_markers) THEN 'kms'
    WHEN len(list_filter(ks[1], lambda x: starts_with(x, 'event.'))) > 0 THEN 'flattened'
    WHEN list_has_any(ks[1], $config_markers) THEN 'aap-config'
    ELSE 'unknown' END AS kind
  FROM k)
SELECT kind, CASE
    WHEN kind = 'kms' THEN list_filter(ks[1], lambda x: NOT list_contains($kms_known, x))
    WHEN kind = 'actiontrail'
      THEN list_filter(ks[1], lambda x: NOT list_contains($at_known, x))
    WHEN kind = 'sls' THEN list_filter(ks[1], lambda x: NOT list_contains($env_known, x))
  END AS extra,
  CASE WHEN kind = 'actiontrail' THEN len(ks[2]) END AS identity_keys,
  len(ks[1]) != len(list_distinct(ks[1])) OR len(ks[2]) != len(list_distinct(ks[2])) AS repeated,
  {container_extras}
FROM c
"""


def _classify_query() -> str:
    extras = ", ".join(
        f"CASE WHEN kind = 'actiontrail' THEN list_filter(ks[{i + 2}], lambda x: NOT "
        f"list_contains($known_{i}, x)) END AS extra_{i}"
        for i in range(len(_IDENTITY_CONTAINERS))
    )
    return _CLASSIFY.replace("{container_extras}", extras)


@dataclass
class Extracted:
    """Raw field tables (text columns) of one batch, with provenance."""

    kms: list[pa.Table] = field(default_factory=list)
    actiontrail: list[pa.Table] = field(default_factory=list)
    #: Records found inside LookupEvents pages, per file (added to records read).
    extra_records: Counter[str] = field(default_factory=Counter)
    #: AAP configuration exports (saved API responses): provenance + ``json``.
    aap_config: list[pa.Table] = field(default_factory=list)


class Extractor:
    """Runs the classification and extraction queries on a duckdb connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, issues: IssueLog) -> None:
        self.con = con
        self.issues = issues
        self._extra_names: dict[str, set[str]] = {"kms": set(), "actiontrail": set()}
        self._dropped_extras: dict[str, set[str]] = {"kms": set(), "actiontrail": set()}

    def run(self, records: pa.Table) -> Extracted:
        """Classify and extract a record table (columns: provenance + ``json``)."""
        out = Extracted()
        pending = _with_envelope(records)
        for _ in range(MAX_UNWRAP_ROUNDS):
            if not pending.num_rows:
                break
            pending = self._round(pending, out)
        else:
            for row in _rows(pending):
                self._reject(row, "nested envelopes or pages too deep to unwrap")
        return out

    # -- one round of classification ------------------------------------------------

    def _round(self, table: pa.Table, out: Extracted) -> pa.Table:
        known = {f"known_{i}": sorted(k) for i, (_, _, k) in enumerate(_IDENTITY_CONTAINERS)}
        result = self._sql(
            _classify_query(),
            table.select(["json"]),
            containers=_KEY_CONTAINERS,
            at_markers=list(AT_MARKER_KEYS),
            kms_markers=list(KMS_MARKER_KEYS),
            config_markers=list(AAP_CONFIG_MARKERS),
            kms_known=list(KMS_FIELDS),
            at_known=sorted(AT_KNOWN_TOP | set(AT_ENVELOPE_FIELDS)),
            env_known=["event", *AT_ENVELOPE_FIELDS],
            **known,
        )
        kinds = result.column("kind")
        # pages are parsed again in Python when expanded: look inside their events too
        suspects = pc.or_(
            pc.fill_null(result.column("repeated"), False), pc.equal(kinds, "container")
        )
        table = clean_json(table, self.issues, suspects)
        follow_up: list[pa.Table] = []
        present = pc.unique(kinds).to_pylist()
        for kind in present:
            if len(present) == 1:
                subset, values = table, result
            else:
                mask = pc.equal(kinds, kind)
                subset, values = table.filter(mask), result.filter(mask)
            if kind == "kms":
                out.kms.append(self._extract_kms(subset, values))
            elif kind == "actiontrail":
                out.actiontrail.append(self._extract_actiontrail(subset, values))
            elif kind == "sls":
                follow_up.append(self._unwrap_sls(subset, values))
            elif kind == "container":
                follow_up.append(self._expand_pages(subset, out.extra_records))
            elif kind == "flattened":
                follow_up.append(_unflatten_records(subset))
            elif kind == "invalid":
                follow_up.append(self._salvage(subset))
            elif kind == "aap-config":
                out.aap_config.append(self._aap_config(subset))
            else:
                reason = {
                    "empty": "empty JSON object (no fields)",
                    "not-object": "not a JSON object (a bare value or an array)",
                    "unknown": "neither an ActionTrail event nor a KMS access-log record "
                    "(none of the fields that identify either)",
                }[kind]
                for row in _rows(subset):
                    self._reject(row, reason)
        follow_up = [t for t in follow_up if t.num_rows]
        return pa.concat_tables(follow_up) if follow_up else table.slice(0, 0)

    # -- the two sources -------------------------------------------------------------

    def _extract_kms(self, table: pa.Table, values: pa.Table) -> pa.Table:
        columns = self._extract(table, "json", KMS_PATHS)
        columns.update(self._extras(table, "json", values.column("extra"), "kms", prefix=""))
        rp = columns["resource_parameters"]
        parsed = self._extract_text(rp, RESOURCE_PARAMETER_PATHS)
        bad = pc.and_(pc.is_valid(rp), pc.and_(pc.is_null(parsed.pop("_ok")), pc.not_equal(rp, "")))
        for row in _rows(table.filter(bad)):
            self._issue(
                row,
                "field",
                "resource_parameters",
                "resource_parameters is not a JSON object; key_id, key_version_id "
                "and hsm_index left empty",
            )
        columns.update(parsed)
        return _assemble(table, columns)

    def _extract_actiontrail(self, table: pa.Table, values: pa.Table) -> pa.Table:
        columns = self._extract(table, "json", AT_PATHS)
        for wrong, right in AT_MISSPELLED_NESTED.items():
            columns[right] = pc.coalesce(columns[right], columns.pop(f"_misspelled.{wrong}"))
        for name in AT_ENVELOPE_FIELDS:  # an envelope wins over same-named event fields
            if name in table.column_names:
                columns[name] = pc.coalesce(table.column(name).combine_chunks(), columns[name])
        for name in table.column_names:
            if name.startswith("envelope."):
                columns[name[len("envelope.") :]] = table.column(name).combine_chunks()
        columns.update(
            self._extras(table, "json", values.column("extra"), "actiontrail", prefix="")
        )
        columns.update(self._identity_not_object(table, values.column("identity_keys")))
        for i, (column, path, _) in enumerate(_IDENTITY_CONTAINERS):
            columns.update(
                self._extras(
                    table,
                    "json",
                    values.column(f"extra_{i}"),
                    "actiontrail",
                    prefix=f"{column}.",
                    base=path,
                )
            )
        params = pc.coalesce(columns["requestParameters"], columns["requestParameterJson"])
        lifted = self._extract_text(params, RP_PATHS)
        lifted.pop("_ok")
        columns.update(lifted)
        details = self._extract_text(columns["additionalEventData"], AED_PATHS)
        details.pop("_ok")
        columns.update(details)
        refs = self._sql(
            "SELECT try(array_to_string(from_json(json_extract(v, '/ACS::RAM::AccessKey'), "
            "'[\"VARCHAR\"]'), ',')) AS keys FROM {table}",
            pa.table({"v": columns["referencedResources"]}),
        )
        columns["referencedAccessKeyIds"] = refs.column("keys").combine_chunks()
        columns.update(_response_identities(columns["eventName"], columns["responseElements"]))
        return _assemble(table, columns)

    def _identity_not_object(
        self, table: pa.Table, identity_keys: pa.ChunkedArray
    ) -> dict[str, pa.Array]:
        """Keep (and report) a ``userIdentity`` that is not an object, instead of losing it."""
        empty = pc.fill_null(pc.equal(identity_keys, 0), False)
        if not pc.any(empty).as_py():
            return {}
        rows = pc.indices_nonzero(empty)
        raw = self._sql(
            "SELECT json_type(json, '$.userIdentity') AS t, "
            "json_extract_string(json, '$.userIdentity') AS v FROM {table}",
            table.select(["json"]).take(rows),
        )
        odd = pc.not_equal(raw.column("t"), "OBJECT")
        if not pc.any(odd).as_py():
            return {}
        values: list[str | None] = [None] * table.num_rows
        for index, row, kind, value in zip(
            rows.to_pylist(),
            _rows(table.take(rows)),
            raw.column("t").to_pylist(),
            raw.column("v").to_pylist(),
            strict=True,
        ):
            if kind != "OBJECT":
                values[index] = value
                self._issue(
                    row,
                    "field",
                    "userIdentity",
                    f"userIdentity is not an object ({kind}); kept as text in the "
                    "userIdentity column, its fields left empty",
                )
        return {"userIdentity": pa.array(values, pa.string())}

    # -- unwrapping ------------------------------------------------------------------

    def _unwrap_sls(self, table: pa.Table, values: pa.Table) -> pa.Table:
        """Replace each SLS record by its ``event``, carrying the envelope fields along."""
        envelope = self._extract(
            table, "json", (*((n, f"$.{n}") for n in AT_ENVELOPE_FIELDS), ("event", "$.event"))
        )
        events = envelope.pop("event")
        extras = self._extras(table, "json", values.column("extra"), "actiontrail", prefix="")
        unwrapped = table.set_column(
            table.column_names.index("json"), "json", events.cast(pa.string())
        )
        for name, values in envelope.items():
            unwrapped = unwrapped.set_column(unwrapped.column_names.index(name), name, values)
        for name, values in extras.items():
            unwrapped = unwrapped.append_column(f"envelope.{name}", values)
        missing = pc.is_null(unwrapped.column("json"))
        for row in _rows(unwrapped.filter(missing)):
            self._reject(row, "SLS record whose `event` field is empty or null")
        return unwrapped.filter(pc.invert(missing))

    def _expand_pages(self, table: pa.Table, extra_records: Counter[str]) -> pa.Table:
        """Replace each LookupEvents page by its events (``source_item`` = index)."""
        parts: dict[str, list[object]] = {name: [] for name in table.column_names}
        for row in table.to_pylist():
            events = orjson.loads(row["json"]).get("Events") or []
            extra_records[row["source_file"]] += len(events) - 1
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

    def _salvage(self, table: pa.Table) -> pa.Table:
        keep: list[int] = []
        texts: list[str] = []
        for index, row in enumerate(_rows(table)):
            raw = row["json"]
            text, repairs, reason = salvage(raw if isinstance(raw, (str, bytes)) else "")
            if text is None:
                self._reject(row, reason)
                continue
            for repair in repairs:
                self._issue(row, "field", None, repair)
            keep.append(index)
            texts.append(text)
        kept = table.take(pa.array(keep, pa.int64()))
        return kept.set_column(
            kept.column_names.index("json"), "json", pa.array(texts, pa.string())
        )

    # -- helpers -----------------------------------------------------------------------

    def _sql(self, query: str, table: pa.Table, **params: object) -> pa.Table:
        name = "records_view"
        self.con.register(name, table)
        try:
            relation = self.con.sql(query.replace("{table}", name), params=params or None)
            return relation.to_arrow_table(batch_size=_ARROW_BATCH)
        finally:
            self.con.unregister(name)

    def _extract(
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
        spec = _struct_spec(p for _, p in paths)
        fields = ", ".join(
            "s." + ".".join(f'"{part}"' for part in path[2:].split(".")) + f" AS c{i}"
            for i, (_, path) in enumerate(paths)
        )
        result = self._sql(
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
        result = self._sql(
            f"SELECT {unpack} FROM (SELECT try(json_extract_string({column}, $paths)) AS v "
            "FROM {table})",
            table.select([column]),
            paths=[p for _, p in paths],
        )
        return {name: result.column(i) for i, (name, _) in enumerate(paths)}

    def _extract_text(
        self, texts: pa.Array, paths: Sequence[tuple[str, str]]
    ) -> dict[str, pa.Array]:
        """Extract paths from a column of JSON texts; ``_ok`` is null where unreadable."""
        unpack = ", ".join(f"v[{i + 1}] AS c{i}" for i in range(len(paths)))
        result = self._sql(
            f"SELECT {unpack}, v IS NOT NULL AS ok FROM "
            "(SELECT try(json_extract_string(v, $paths)) AS v FROM {table})",
            pa.table({"v": texts}),
            paths=[p for _, p in paths],
        )
        out = {name: result.column(i).combine_chunks() for i, (name, _) in enumerate(paths)}
        ok = result.column("ok").combine_chunks()
        out["_ok"] = pc.if_else(ok, ok, pa.scalar(None, pa.bool_()))
        return out

    def _extras(
        self,
        table: pa.Table,
        column: str,
        extra: pa.ChunkedArray,
        source: str,
        prefix: str,
        base: str = "",
    ) -> dict[str, pa.Array]:
        """Extract unknown keys (listed per row in ``extra``) as columns of their own."""
        flat = pc.list_flatten(extra.combine_chunks()) if len(extra) else pa.array([], pa.string())
        names = [n for n in pc.unique(flat).to_pylist() if n is not None] if len(flat) else []
        if not names:
            return {}
        allowed = self._extra_names[source]
        chosen = []
        for name in sorted(names):
            label = prefix + name
            if label in allowed or len(allowed) < MAX_EXTRA_COLUMNS:
                allowed.add(label)
                chosen.append(name)
            elif label not in self._dropped_extras[source]:
                self._dropped_extras[source].add(label)
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
        return self._extract(table, column, paths)

    def _issue(
        self, row: dict[str, object], severity: str, fieldname: str | None, reason: str
    ) -> None:
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

    def _aap_config(self, table: pa.Table) -> pa.Table:
        """Keep the records that are AAP configuration exports; reject the others.

        Records with a key of :data:`~kmsforensics.aap.exports.AAP_CONFIG_MARKERS` are
        read by :func:`kmsforensics.aap.exports.changes_of`; those that state no AAP
        configuration (another API's response) are rejected like any unknown record.
        """
        from .aap.exports import is_aap_export

        keep = []
        for row in _rows(table):
            ok = is_aap_export(str(row["json"]))
            keep.append(ok)
            if not ok:
                self._reject(row, "an API response, but not of the KMS AAP Describe or List APIs")
        return table.filter(pa.array(keep, pa.bool_())).select([*PROVENANCE, "json"])

    def _reject(self, row: dict[str, object], reason: str) -> None:
        self._issue(row, "record", None, reason)


def _is_dotted(path: str) -> bool:
    return path.startswith("$.") and all(p.isidentifier() for p in path[2:].split("."))


def _struct_spec(paths: Iterator[str] | Sequence[str]) -> dict[str, object]:
    """Build the ``from_json`` structure that reads each dotted path as text.

    Examples
    --------
    >>> _struct_spec(["$.a", "$.u.t", "$.u.s.x"])
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


def _with_envelope(records: pa.Table) -> pa.Table:
    """Add empty envelope columns so unwrapped and plain records share a schema."""
    table = records
    if "rid" not in table.column_names:
        table = table.add_column(0, "rid", pa.nulls(table.num_rows, pa.int64()))
    for name in AT_ENVELOPE_FIELDS:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return table


def _unflatten_records(table: pa.Table) -> pa.Table:
    """Fold ``event.``-prefixed keys of JSON records back into nested events."""
    from .formats.csvfile import _unflatten  # one implementation for CSV and JSON

    texts = [dump(_unflatten(orjson.loads(text))) for text in table.column("json").to_pylist()]
    return table.set_column(table.column_names.index("json"), "json", pa.array(texts, pa.string()))


def _response_identities(names: pa.ChunkedArray, responses: pa.ChunkedArray) -> dict[str, pa.Array]:
    """Read STS and AccessKey identities from responseElements, whatever the key case.

    Only ``AssumeRole*`` and ``CreateAccessKey`` responses are read. Keys are matched
    case-insensitively (``credentials.accessKeyId`` and ``Credentials.AccessKeyId``
    both occur in vendor samples).

    Examples
    --------
    >>> out = _response_identities(
    ...     pa.chunked_array([["AssumeRole"]]),
    ...     pa.chunked_array([['{"Credentials": {"AccessKeyId": "STS.x"}, '
    ...                        '"AssumedRoleUser": {"AssumedRoleId": "1:s"}}']]),
    ... )
    >>> out["issuedAccessKeyId"].to_pylist(), out["assumedRoleId"].to_pylist()
    (['STS.x'], ['1:s'])
    """
    wanted = pc.fill_null(
        pc.or_(pc.starts_with(names, "AssumeRole"), pc.equal(names, "CreateAccessKey")), False
    )
    texts = pc.if_else(wanted, responses, pa.scalar(None, pa.string()))
    return {
        column: pc.struct_field(pc.extract_regex(texts, _key_pattern(key)), "v")
        for column, key in (
            ("issuedAccessKeyId", "accesskeyid"),
            ("assumedRoleId", "assumedroleid"),
            ("assumedRoleArn", "arn"),
        )
    }


def _key_pattern(key: str) -> str:
    """RE2 pattern for the string value of ``key`` (any case) in JSON text."""
    return r'(?i)"' + key + r'"\s*:\s*"(?P<v>[^"\\]*)"'


def _assemble(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    arrays = [table.column(name).combine_chunks() for name in PROVENANCE]
    names = list(PROVENANCE)
    for name, values in columns.items():
        if name in PROVENANCE:
            name = f"extra:{name}"
        names.append(name)
        arrays.append(values.cast(pa.string()) if values.type != pa.string() else values)
    return pa.Table.from_arrays(arrays, names=names)


def _rows(table: pa.Table) -> Iterator[dict[str, object]]:
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
