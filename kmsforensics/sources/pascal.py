"""Events whose field names are spelt in another case (``EventName``, ``UserIdentity``).

Some SDKs and exports capitalise the field names (``EventName``,
``UserIdentity.AccountId``, ``EventTime``). Field names are matched
case-insensitively: each is renamed to the documented spelling, in the event,
``userIdentity`` and its session context. When both spellings are present the
documented (camelCase) one wins and the other is kept under its own name.
Request parameters and responses keep their keys (they are PascalCase already).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from ..extract import _loads
from ..formats.jsontext import dump
from ..schema import AT_ENVELOPE_FIELDS, AT_KNOWN_IDENTITY, AT_KNOWN_TOP, AT_MARKER_KEYS
from .registry import Envelope, _literal_list, register

if TYPE_CHECKING:
    from ..extract import Extracted, Extractor

#: Documented names by their lower case, for each level that is folded.
_TOP = {k.lower(): k for k in (*AT_KNOWN_TOP, *AT_ENVELOPE_FIELDS)}
_NESTED: dict[str, dict[str, str]] = {
    "userIdentity": {k.lower(): k for k in AT_KNOWN_IDENTITY},
    "sessionContext": {k.lower(): k for k in ("attributes", "sessionAttributes")},
    "attributes": {k.lower(): k for k in ("mfaAuthenticated", "creationDate")},
    "sessionAttributes": {k.lower(): k for k in ("mfaAuthenticated", "creationDate")},
}


def fold_keys(value: dict[str, object], names: dict[str, str]) -> dict[str, object]:
    """Rename keys to their documented spelling (camelCase first), recursively.

    Examples
    --------
    >>> fold_keys({"EventName": "Decrypt", "UserIdentity": {"AccountId": "1"}}, _TOP)
    {'eventName': 'Decrypt', 'userIdentity': {'accountId': '1'}}
    >>> fold_keys({"EventName": "a", "eventName": "b"}, _TOP)
    {'EventName': 'a', 'eventName': 'b'}
    """
    out: dict[str, object] = {}
    for key, item in value.items():
        name = names.get(key.lower(), key)
        if name != key and name in value:
            name = key  # the documented spelling is there too: it wins
        if isinstance(item, dict) and name in _NESTED:
            item = fold_keys(item, _NESTED[name])
        out[name] = item
    return out


class OtherCase(Envelope):
    """An event recognised by its marker keys in another case."""

    name = "other-case"
    order = 75
    recognise = (
        "list_has_any(list_transform(ks[1], lambda x: lower(x)), "
        f"{_literal_list([k.lower() for k in AT_MARKER_KEYS])})"
    )

    def unwrap(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Unwrap the records (see the class)."""
        texts = []
        for text in records.column("json").to_pylist():
            value = _loads(text)
            assert isinstance(value, dict)
            texts.append(dump(fold_keys(value, _TOP)))
        return records.set_column(
            records.column_names.index("json"), "json", pa.array(texts, pa.string())
        )


register(OtherCase())
