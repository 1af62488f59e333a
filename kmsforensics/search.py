"""Free-text search over every field of both logs, nested parameters included.

``case.search("192.0.2.66")`` looks in every column of the KMS records and of the
ActionTrail events (their nested objects as the JSON text they came in, so
``requestParameters``, ``responseElements`` and the like are searched too) and returns
one row per matching record with where it came from: ``source_file`` relative to the
evidence root (as the report's manifest names files), the root itself in
``attrs["evidence_root"]`` (see :mod:`kmsforensics.provenance`).

Examples
--------
>>> import pandas as pd
>>> kms = pd.DataFrame({"time": pd.to_datetime(["2026-01-01T00:00Z"]), "request_id": ["r1"],
...     "useragent": ["Go/1.21"], "source_file": ["kms.json"], "source_record": [3]})
>>> at = pd.DataFrame({"eventTime": pd.to_datetime(["2026-01-01T00:01Z"]), "eventId": ["e1"],
...     "requestParameters": ['{"SecretName":"prod/db"}'], "source_file": ["at.json"],
...     "source_record": [0]})
>>> search_frames(kms, at, "PROD/db")[["source", "id", "fields", "source_file"]].values.tolist()
[['actiontrail', 'e1', 'requestParameters', 'at.json']]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .provenance import evidence_root, relative_paths

COLUMNS = ("time", "source", "id", "fields", "excerpt", "source_file", "source_record")
_PROVENANCE = {"source_file", "source_record", "source_item"}


def _hits(column: pd.Series, text: str) -> np.ndarray:
    """Tell which values of a column contain ``text`` (case-insensitive)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = pd.Series(column.cat.categories.astype(str))
        found = categories.str.contains(text, case=False, regex=False).to_numpy()
        return np.asarray(column.cat.codes.to_numpy() >= 0) & np.isin(
            column.cat.codes.to_numpy(), np.flatnonzero(found)
        )
    values = column.astype(object)
    present = values.notna().to_numpy()
    if not present.any():
        return present
    words = values[present].map(str).str.contains(text, case=False, regex=False).to_numpy()
    out = np.zeros(len(column), dtype=bool)
    out[present] = words
    return out


def _one(frame: pd.DataFrame, text: str, source: str, time: str, ident: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    fields: list[list[str]] = [[] for _ in range(len(frame))]
    excerpt: list[str] = [""] * len(frame)
    for name in frame.columns:
        if name in _PROVENANCE or name == time:
            continue
        for position in np.flatnonzero(_hits(frame[name], text)):
            fields[position].append(str(name))
            if not excerpt[position]:
                excerpt[position] = _excerpt(str(frame[name].iloc[position]), text)
    keep = [i for i, f in enumerate(fields) if f]
    rows = frame.iloc[keep]
    return pd.DataFrame(
        {
            "time": rows[time].to_numpy() if time in rows else pd.NaT,
            "source": source,
            "id": rows[ident].astype(object).to_numpy() if ident in rows else None,
            "fields": [", ".join(fields[i]) for i in keep],
            "excerpt": [excerpt[i] for i in keep],
            "source_file": rows["source_file"].astype(object).to_numpy()
            if "source_file" in rows
            else None,
            "source_record": rows["source_record"].to_numpy() if "source_record" in rows else None,
        }
    )


def _excerpt(value: str, text: str, width: int = 60) -> str:
    at = value.lower().find(text.lower())
    start = max(0, at - width)
    return ("…" if start else "") + value[start : at + len(text) + width]


def search_frames(kms: pd.DataFrame, actiontrail: pd.DataFrame, text: str) -> pd.DataFrame:
    """Search the KMS records and the ActionTrail events (nested objects as JSON text)."""
    if not str(text):
        raise ValueError("search for what? give some text")
    found = [
        _one(kms, str(text), "kms", "time", "request_id"),
        _one(actiontrail, str(text), "actiontrail", "eventTime", "eventId"),
    ]
    found = [f for f in found if len(f)]
    if not found:
        return pd.DataFrame(columns=list(COLUMNS))
    out = pd.concat(found, ignore_index=True)
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def search(case: Any, text: str) -> pd.DataFrame:
    """Return every record of a case in which some field contains ``text``.

    Parameters
    ----------
    case : Case
        The evidence (in memory; a dask case is searched through ``case.between``).
    text : str
        Matched case-insensitively as plain text (not a pattern).

    Returns
    -------
    pandas.DataFrame
        One row per matching record: ``time``, ``source`` (``kms`` or ``actiontrail``),
        ``id`` (request or event id, as a finding's evidence holds it), ``fields`` (the
        fields that matched, nested objects by their top-level name), ``excerpt``,
        ``source_file`` (relative to the evidence root) and ``source_record``; oldest
        first. ``attrs["evidence_root"]`` is the folder that holds every evidence file
        of the case, so that ``Path(root) / source_file`` is the file's full path, as
        ``case.manifest.path`` has it.
    """
    found = search_frames(case.kms, case._actiontrail_text, text)
    return relative_paths(found, evidence_root(case.manifest["path"]), ["source_file"])
