r"""JSON that tools read differently: non-standard literals and duplicate keys.

Python's ``json`` accepts ``NaN`` and ``Infinity``, orjson and duckdb refuse or
read them otherwise; with a key given twice, duckdb keeps the first value and
Python's ``json`` the last. An attacker can use either to make two tools disagree
about one event, so such records are rewritten here, before any field is read,
into standard JSON that every reader reads alike, and each change is a ``field``
issue:

* a ``NaN``, ``Infinity`` or ``-Infinity`` literal becomes the string of that name;
* a key given twice keeps its **first** value (what duckdb, and so the rows of the
  case, read); the other values are named in the issue.

Repeated keys are looked for by the extractor, while it reads the keys to classify
records, in the containers each record kind names as ``searched``: for an
ActionTrail event the top level, ``userIdentity``, ``requestParameters`` and
``responseElements`` (name, time, source address, caller, and the keys and secrets
named); objects nested deeper than those are not searched. A LookupEvents page is
searched throughout, as it is parsed again when its events are taken out.

Examples
--------
>>> from kmsforensics.issues import IssueLog
>>> records = pa.table({"source_file": ["a.json"], "source_record": [1],
...     "source_item": pa.nulls(1, pa.int32()),
...     "json": ['{"ip": "10.0.0.1", "ip": "6.6.6.6", "n": NaN}']})
>>> log = IssueLog()
>>> clean_json(records, log, pa.array([True])).column("json").to_pylist()
['{"ip":"10.0.0.1","n":"NaN"}']
>>> log.frame()["reason"].tolist()  # doctest: +NORMALIZE_WHITESPACE
["key 'ip' appears 2 times with different values; the first is kept ('10.0.0.1'),
   not '6.6.6.6'", "non-standard JSON literal NaN kept as the text 'NaN'"]
"""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pyarrow.compute as pc

from ..issues import IssueLog
from ..tables import take
from .jsontext import dump

#: A literal where a value starts (a string holding the word may match too: it is
#: then parsed and left alone).
_LITERALS = r"[:\[,]\s*-?(NaN|Infinity)\s*[,\]}]"


def clean_json(
    records: pa.Table,
    issues: IssueLog,
    repeated_keys: pa.ChunkedArray | pa.Array | None = None,
    literal_suspects: pa.ChunkedArray | pa.Array | None = None,
) -> pa.Table:
    """Rewrite records with non-standard literals or duplicate keys; report each change.

    ``records`` has the provenance columns and ``json``; ``repeated_keys`` marks the
    records in which a searched container repeats a key (the extractor's
    classification finds them while it reads the keys). The table is returned with
    the same rows, only the ``json`` of the hazardous ones changed.
    ``literal_suspects``, when given, marks the only records that may hold a
    literal (the extractor finds them in its classification query, on every core);
    otherwise every record is searched here.
    """
    texts = records.column("json")
    if literal_suspects is not None:
        candidates = pc.indices_nonzero(pc.fill_null(literal_suspects, False))
        found = pc.match_substring_regex(take(texts, candidates), _LITERALS)
        suspects = set(pc.filter(candidates, found).to_pylist())
    else:
        suspects = set(pc.indices_nonzero(pc.match_substring_regex(texts, _LITERALS)).to_pylist())
    if repeated_keys is not None:
        suspects.update(pc.indices_nonzero(pc.fill_null(repeated_keys, False)).to_pylist())
    if not suspects:
        return records
    values = dict(zip(sorted(suspects), take(texts, sorted(suspects)).to_pylist(), strict=True))
    changed = False
    for index in sorted(suspects):
        fixed, problems = standard_json(values[index])
        if fixed is None:
            continue
        where = records.slice(index, 1).to_pylist()[0]
        item = where.get("source_item")
        suffix = f" (Events[{item}])" if item is not None else ""
        for fieldname, reason in problems:
            issues.add(
                str(where["source_file"]),
                where["source_record"],
                "field",
                fieldname,
                reason + suffix,
                values[index],
            )
        values[index] = fixed
        changed = True
    if not changed:
        return records
    mask = pa.array([i in values for i in range(records.num_rows)])
    fixed_texts = pc.replace_with_mask(
        texts.combine_chunks(), mask, pa.array([values[i] for i in sorted(values)], pa.string())
    )
    position = records.column_names.index("json")
    return records.set_column(position, "json", fixed_texts)


def standard_json(text: str) -> tuple[str | None, list[tuple[str, str]]]:
    """Return ``text`` as standard JSON (first value of a repeated key) and what changed.

    ``None`` when the text needs no change or is not JSON at all (the extractor
    reports that).

    Examples
    --------
    >>> text, problems = standard_json('{"a": {"b": 1, "b": 2}, "c": -Infinity}')
    >>> text, [field for field, _ in problems]
    ('{"a":{"b":1},"c":"-Infinity"}', ['a.b', 'c'])
    >>> standard_json('{"a": "NaN"}')[0] is None
    True
    """
    try:
        parsed = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_Literal)
    except (ValueError, RecursionError):
        return None, []
    problems: list[tuple[str, str]] = []
    value = _standard(parsed, "", problems)
    if not problems:
        return None, []
    return dump(value), problems


class _Pairs(list[tuple[str, object]]):
    """An object as parsed, with every key in order (repeated ones too)."""


class _Literal(str):
    """A ``NaN``/``Infinity`` literal, kept as its spelling."""

    def __new__(cls, spelling: str) -> _Literal:
        return super().__new__(cls, spelling)


def _standard(value: object, path: str, problems: list[tuple[str, str]]) -> object:
    if isinstance(value, _Literal):
        problems.append(
            (path, f"non-standard JSON literal {value} kept as the text {str(value)!r}")
        )
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):  # 1e999 overflows
        problems.append((path, f"number out of range read as the text {value!r}"))
        return repr(value)
    if isinstance(value, list) and not isinstance(value, _Pairs):
        return [_standard(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, _Pairs):
        out: dict[str, object] = {}
        seen: dict[str, list[object]] = {}
        for key, item in value:
            seen.setdefault(key, []).append(item)
        for key, items in seen.items():
            child = f"{path}.{key}" if path else key
            out[key] = _standard(items[0], child, problems)
            others = [v for v in items[1:] if v != items[0]]
            if others:
                problems.append(
                    (
                        child,
                        f"key {key!r} appears {len(items)} times with different values; "
                        f"the first is kept ({_short(items[0])}), not "
                        + ", ".join(_short(v) for v in others),
                    )
                )
        return out
    return value


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, _Pairs) else dump(dict(value))
    return text if len(text) <= 80 else text[:80] + "…"
