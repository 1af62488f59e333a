"""The ActionTrail event: recognised by its keys, extracted, normalised.

An event is recognised by any of :data:`~kmsforensics.schema.AT_MARKER_KEYS`
among its top-level keys. Its fields are read as text in one ``from_json`` pass
(dotted paths), unknown keys of the event and of ``userIdentity`` (and its
session context) become columns of their own, and the request parameters,
additional event data, referenced AccessKeys and the identities a response
issued are lifted into columns. Older (2015-era) events name the session
attributes ``sessionContext.sessionAttributes``; they are read into the same
columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from ..extract import assemble, rows
from ..issues import IssueLog
from ..normalize.actiontrail import normalize_actiontrail
from ..normalize.activity import activity_from_actiontrail
from ..schema import (
    AT_ENVELOPE_FIELDS,
    AT_IDENTITY_FIELDS,
    AT_KNOWN_IDENTITY,
    AT_KNOWN_TOP,
    AT_MARKER_KEYS,
    AT_MISSPELLED_NESTED,
    AT_NESTED_FIELDS,
    AT_REQUEST_PARAMETERS,
    AT_SCALAR_FIELDS,
)
from ..tables import take
from .registry import Container, Options, Source, _literal_list, register

if TYPE_CHECKING:
    from ..extract import Extractor

#: (column, JSON path) of every ActionTrail field extracted from the event.
AT_PATHS: tuple[tuple[str, str], ...] = (
    *((name, f"$.{name}") for name in AT_SCALAR_FIELDS),
    *((f"userIdentity.{name}", f"$.userIdentity.{name}") for name in AT_IDENTITY_FIELDS),
    *((name, f"$.{name}") for name in AT_NESTED_FIELDS),
    *((f"_misspelled.{wrong}", f"$.{wrong}") for wrong in AT_MISSPELLED_NESTED),
    *((name, f"$.{name}") for name in AT_ENVELOPE_FIELDS),
)
#: 2015-era events: ``sessionContext.sessionAttributes`` instead of ``attributes``.
OLD_SESSION_PATHS: tuple[tuple[str, str], ...] = tuple(
    (
        f"_old.{name}",
        "$.userIdentity.sessionContext.sessionAttributes." + name.rsplit(".", 1)[1],
    )
    for name in AT_IDENTITY_FIELDS
    if name.startswith("sessionContext.attributes.")
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
#: Columns derived from the event besides its paths.
DERIVED: tuple[str, ...] = (
    "referencedAccessKeyIds",
    "issuedAccessKeyId",
    "assumedRoleId",
    "assumedRoleArn",
)
_SESSION_KEYS = frozenset({"mfaAuthenticated", "creationDate"})
#: The event's own paths, with ``userIdentity`` read whole (as JSON text).
_EVENT_PATHS: tuple[tuple[str, str], ...] = (
    *((n, p) for n, p in AT_PATHS if not n.startswith("userIdentity.")),
    ("userIdentity", "$.userIdentity"),
)
#: Paths read from the identity text, relative to it.
_IDENTITY_PATHS: tuple[tuple[str, str], ...] = (
    *((f"userIdentity.{name}", f"$.{name}") for name in AT_IDENTITY_FIELDS),
    *((n, p.replace("$.userIdentity.", "$.")) for n, p in OLD_SESSION_PATHS),
)
#: Containers inside ``userIdentity`` whose unknown keys become columns.
_IDENTITY_CONTAINERS: tuple[Container, ...] = (
    Container("$", "userIdentity.", AT_KNOWN_IDENTITY),
    Container(
        "$.sessionContext",
        "userIdentity.sessionContext.",
        frozenset({"attributes", "sessionAttributes"}),
    ),
    Container(
        "$.sessionContext.attributes", "userIdentity.sessionContext.attributes.", _SESSION_KEYS
    ),
    Container(
        "$.sessionContext.sessionAttributes",
        "userIdentity.sessionContext.sessionAttributes.",
        _SESSION_KEYS,
    ),
)


class ActionTrailEvent(Source):
    """An ActionTrail event (OSS delivery, LookupEvents, SLS, Sentinel... all end here)."""

    name = "actiontrail"
    label = "actiontrail"
    order = 60
    dedupe = ("eventId", "eventTime", "eventName")
    recognise = f"list_has_any(ks[1], {_literal_list(list(AT_MARKER_KEYS))})"
    containers = (Container("$", "", AT_KNOWN_TOP | frozenset(AT_ENVELOPE_FIELDS)),)
    #: The event, its caller and its parameters are searched for keys given twice (an
    #: attacker's way to make two tools read different names, times, addresses or secrets).
    searched = ("$", "$.userIdentity", "$.requestParameters", "$.responseElements")

    def extract(self, ctx: Extractor, records: pa.Table, keys: pa.Table) -> pa.Table:
        """Read the fields of the events as text columns.

        The event is parsed once for its fields (``userIdentity`` taken whole, as
        JSON); the identity, a small object, is then read for its own fields and
        unknown keys.
        """
        columns = ctx.extract(records, "json", _EVENT_PATHS)
        identity = columns.pop("userIdentity")
        fields, identity_keys = _identity(ctx, identity)
        columns.update(fields)
        for name, _ in OLD_SESSION_PATHS:
            target = "userIdentity.sessionContext.attributes." + name.rsplit(".", 1)[1]
            columns[target] = pc.coalesce(columns[target], columns.pop(name))
        for wrong, right in AT_MISSPELLED_NESTED.items():
            columns[right] = pc.coalesce(columns[right], columns.pop(f"_misspelled.{wrong}"))
        for name in records.column_names:  # envelope values win over same-named fields
            if name in ("json", "source_file", "source_record", "source_item"):
                continue
            target = name.removeprefix("envelope.")
            values = records.column(name).combine_chunks()
            columns[target] = pc.coalesce(values, columns[target]) if target in columns else values
        columns = _ordered_raw(columns)
        columns.update(ctx.extras(records, keys.column("extra_0"), self.label, prefix=""))
        columns.update(_identity_not_object(ctx, records, identity, identity_keys))
        columns.update(self._identity_extras(ctx, identity, identity_keys))
        params = pc.coalesce(columns["requestParameters"], columns["requestParameterJson"])
        lifted = ctx.extract_text(params, RP_PATHS)
        lifted.pop("_ok")
        columns.update(lifted)
        details = ctx.extract_text(columns["additionalEventData"], AED_PATHS)
        details.pop("_ok")
        columns.update(details)
        refs = ctx.sql(
            "SELECT try(array_to_string(from_json(json_extract(v, '/ACS::RAM::AccessKey'), "
            "'[\"VARCHAR\"]'), ',')) AS keys FROM {table}",
            pa.table({"v": columns["referencedResources"]}),
        )
        columns["referencedAccessKeyIds"] = refs.column("keys").combine_chunks()
        columns.update(response_identities(columns["eventName"], columns["responseElements"]))
        return assemble(records, columns)

    def _identity_extras(
        self, ctx: Extractor, identity: pa.Array, identity_keys: pa.ChunkedArray
    ) -> dict[str, pa.Array]:
        """Unknown keys of ``userIdentity`` and its session context, as columns."""
        out: dict[str, pa.Array] = {}
        keys = identity_keys.combine_chunks()
        for i, container in enumerate(_IDENTITY_CONTAINERS):
            listed = pc.list_element(keys, i) if len(keys) else pa.array([], pa.list_(pa.string()))
            unknown = _unknown(listed, container.known)
            if unknown is None:
                continue
            out.update(
                ctx.extras(
                    pa.table({"json": identity}),
                    pa.chunked_array([unknown]),  # the names; read from every row
                    self.label,
                    prefix=container.prefix,
                    base=container.path,
                    texts=identity,
                )
            )
        return out

    def normalise(self, raw: pa.Table, issues: IssueLog, options: Options) -> pa.Table:
        """Type the raw columns."""
        return normalize_actiontrail(raw, issues, assume_timezone=options.assume_timezone)

    def raw_columns(self) -> list[str]:
        """Return the names of the raw text columns of an event."""
        return [
            *(name for name, _ in AT_PATHS if not name.startswith("_misspelled.")),
            *(name for name, _ in RP_PATHS),
            *(name for name, _ in AED_PATHS),
            *DERIVED,
        ]

    def activity(self, typed: pa.Table) -> pa.Table:
        """Return the activity rows of the typed rows."""
        return activity_from_actiontrail(typed)


def _identity(ctx: Extractor, identity: pa.Array) -> tuple[dict[str, pa.Array], pa.ChunkedArray]:
    """Read the identity's fields, and the keys of its containers, from its text."""
    text = pa.table({"json": identity})
    fields = ctx.extract(text, "json", _IDENTITY_PATHS)
    keys = ctx.sql(
        "SELECT try(json_keys(json, $paths)) AS ks FROM {table}",
        text,
        paths=[c.path for c in _IDENTITY_CONTAINERS],
    ).column("ks")
    return fields, keys


def _identity_not_object(
    ctx: Extractor, table: pa.Table, identity: pa.Array, identity_keys: pa.ChunkedArray
) -> dict[str, pa.Array]:
    """Keep (and report) a ``userIdentity`` that is not an object, as text."""
    count = pc.list_value_length(pc.list_element(identity_keys, 0))
    # no keys, or not readable as an object (a bare string): look closer
    empty = pc.and_(pc.is_valid(identity), pc.fill_null(pc.equal(count, 0), True))
    if not pc.any(empty).as_py():
        return {}
    index = pc.indices_nonzero(empty)
    raw = ctx.sql(
        "SELECT json_type(json, '$.userIdentity') AS t, "
        "json_extract_string(json, '$.userIdentity') AS v FROM {table}",
        take(table.select(["json"]), index),
    )
    odd = pc.not_equal(raw.column("t"), "OBJECT")
    if not pc.any(odd).as_py():
        return {}
    values: list[str | None] = [None] * table.num_rows
    for i, row, kind, value in zip(
        index.to_pylist(),
        rows(take(table, index)),
        raw.column("t").to_pylist(),
        raw.column("v").to_pylist(),
        strict=True,
    ):
        if kind != "OBJECT":
            values[i] = value
            ctx.issue(
                row,
                "field",
                "userIdentity",
                f"userIdentity is not an object ({kind}); kept as text in the "
                "userIdentity column, its fields left empty",
            )
    return {"userIdentity": pa.array(values, pa.string())}


def _unknown(listed: pa.Array, known: frozenset[str]) -> pa.Array | None:
    """Return the distinct listed keys not in ``known``, as one list (or None).

    Examples
    --------
    >>> _unknown(pa.array([["type", "odd"], ["type"], None]), frozenset({"type"})).to_pylist()
    [['odd']]
    """
    flat = pc.list_flatten(listed)
    unknown = pc.unique(pc.filter(flat, pc.invert(pc.is_in(flat, pa.array(sorted(known))))))
    if not len(unknown):
        return None
    return pa.array([unknown.to_pylist()], pa.list_(pa.string()))


def _ordered_raw(columns: dict[str, pa.Array]) -> dict[str, pa.Array]:
    """Put the identity columns back where the event's paths have them."""
    order = [n for n, _ in AT_PATHS if n in columns]
    rest = [n for n in columns if n not in order]
    return {n: columns[n] for n in (*order, *rest)}


def response_identities(names: pa.ChunkedArray, responses: pa.ChunkedArray) -> dict[str, pa.Array]:
    """Read STS and AccessKey identities from responseElements, whatever the key case.

    Only ``AssumeRole*`` and ``CreateAccessKey`` responses are read. Keys are matched
    case-insensitively (``credentials.accessKeyId`` and ``Credentials.AccessKeyId``
    both occur in vendor samples).

    Examples
    --------
    >>> out = response_identities(
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


register(ActionTrailEvent())
