"""Optional: Sigma rules (single-event and correlation) over the ActionTrail events.

Sigma rules are converted by pySigma 2.x with its SQLite backend (the only combination
that kept Sigma's meaning in our measurements, detections.md section 2) and run over an
in-memory SQLite copy of the flattened ActionTrail frame: one column per field, dotted
names for nested ones (``userIdentity.type``, ``requestParameters.KeyId``,
``additionalEventData.mfaChecked``). Equality ignores case, ``|re`` uses Python's ``re``,
and a field the evidence never has is a column of NULLs, so a rule about it matches
nothing instead of failing. Rules written for AWS CloudTrail field names get the
Alibaba names through :data:`FIELD_MAP` (values are not translated: ``ConsoleLogin`` is
``ConsoleSignin`` here).

Needs the ``sigma`` extra: ``pip install 'kmsforensics[sigma]'``.

Examples
--------
>>> import kmsforensics as kf
>>> from kmsforensics.detections import sigma
>>> sorted(p.name for p in sigma.EXAMPLES.glob("*.yml"))[:1]
['actiontrail_logging_stopped.yml']
>>> case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence",
...                progress=False)  # doctest: +SKIP
>>> sigma.detect(case, sigma.EXAMPLES)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..case import Case
from .findings import COLUMNS, bursts, empty_findings, finding_id

#: The example rules shipped with the package.
EXAMPLES = Path(__file__).parent / "sigma_rules"

#: AWS CloudTrail field names and their ActionTrail equivalents.
FIELD_MAP: dict[str | None, str | list[str]] = {
    "sourceIPAddress": "sourceIpAddress",
    "awsRegion": "acsRegion",
    "userIdentity.arn": "userIdentity.principalId",
    "additionalEventData.MFAUsed": "additionalEventData.mfaChecked",
    "eventSource": "eventSource",
}

_LEVELS = {"informational": "low", "low": "low", "medium": "medium", "high": "high"}
_LEVELS["critical"] = "critical"
NESTED = ("requestParameters", "responseElements", "additionalEventData", "referencedResources")


def flatten(case: Case) -> pd.DataFrame:
    """Return the ActionTrail events as one flat table: scalars, then nested fields dotted."""
    at = case.actiontrail
    scalar = [c for c in at.columns if c not in NESTED]
    flat = at[scalar].copy()
    flat["eventTime"] = at["eventTime"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in NESTED:
        if name not in at:
            continue
        values = [v if isinstance(v, dict) else {} for v in at[name]]
        nested = pd.json_normalize(values, sep=".")
        nested.columns = [f"{name}.{c}" for c in nested.columns]
        nested.index = flat.index
        fresh = [c for c in nested.columns if c not in flat.columns]
        flat = pd.concat([flat, nested[fresh]], axis=1)
    for column in flat.columns:
        if flat[column].dtype == object or str(flat[column].dtype) in ("category", "str"):
            flat[column] = flat[column].astype(object).map(_text, na_action="ignore")
    return _fold_case(flat)


def _fold_case(flat: pd.DataFrame) -> pd.DataFrame:
    """Merge columns whose names differ only in case (SQLite names ignore case).

    ``responseElements.Credentials.AccessKeyId`` and ``...credentials.accessKeyId`` are
    the same field spelled two ways; the first spelling keeps the values of both.
    """
    keep: dict[str, str] = {}
    for column in flat.columns:
        first = keep.setdefault(column.lower(), column)
        if first != column:
            flat[first] = flat[first].where(flat[first].notna(), flat[column])
    return flat[list(keep.values())]


def _text(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


def _rules_text(rules: str | Path | Iterable[str | Path]) -> str:
    """YAML text of the rules: given as text, a file, a folder of them, or a list."""
    if isinstance(rules, str) and "\n" in rules:
        return rules
    if isinstance(rules, (str, Path)):
        path = Path(rules)
        if path.is_dir():
            files = sorted(path.glob("*.yml")) + sorted(path.glob("*.yaml"))
            return "\n---\n".join(p.read_text() for p in files)
        return path.read_text()
    return "\n---\n".join(_rules_text(r) for r in rules)


def detect(case: Case, rules: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Run Sigma rules over the case's ActionTrail events; findings as ``kf.detect`` makes.

    Parameters
    ----------
    case : Case
        The evidence.
    rules : str, Path or list
        YAML text, a ``.yml`` file, a folder of them, or a list of those.

    Returns
    -------
    pandas.DataFrame
        The findings frame: ``rule_id`` is ``sigma:<rule id>``, ``title`` and
        ``severity`` come from the rule, ``evidence`` holds ``eventId`` values.
        Overlapping windows of a correlation for the same group are one finding.
    """
    try:
        from sigma.backends.sqlite import sqliteBackend
        from sigma.collection import SigmaCollection
        from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
        from sigma.processing.transformations import FieldMappingTransformation
    except ImportError as error:  # pragma: no cover - the extra is installed in CI
        raise ImportError("Sigma rules need: pip install 'kmsforensics[sigma]'") from error

    pipeline = ProcessingPipeline(
        name="alibaba actiontrail",
        priority=20,
        items=[ProcessingItem(FieldMappingTransformation(FIELD_MAP), identifier="alibaba")],
    )
    backend = sqliteBackend(
        pipeline,
        collate_nocase=True,
        timestamp_field="eventTime",
        event_id_field="eventId",
    )
    converted = json.loads(
        backend.convert(SigmaCollection.from_yaml(_rules_text(rules)), "zircolite")
    )
    flat = flatten(case)
    connection = sqlite3.connect(":memory:")
    connection.create_function("regexp", 2, _regexp, deterministic=True)
    needed = {f for rule in converted for f in rule.get("required_fields", [])}
    for field in sorted(needed - set(flat.columns)):
        flat[field] = None
    flat.to_sql("logs", connection, index=False)
    times = pd.Series(case.actiontrail["eventTime"].to_numpy(), index=flat["eventId"].astype(str))
    times = times[~times.index.duplicated()]
    accounts = pd.Series(
        case.actiontrail["userIdentity.accountId"].astype(object).to_numpy(),
        index=flat["eventId"].astype(str),
    )
    accounts = accounts[~accounts.index.duplicated()]
    frames = []
    for rule in converted:
        for sql in rule["rule"]:
            cursor = connection.execute(sql)
            columns = [d[0] for d in cursor.description]
            result = pd.DataFrame(cursor.fetchall(), columns=columns)
            if not len(result):
                continue
            frames.append(_findings(rule, result, times, accounts))
    connection.close()
    found = [f for f in frames if len(f)]
    if not found:
        return empty_findings()
    return pd.concat(found, ignore_index=True).sort_values("first_seen").reset_index(drop=True)


def _findings(
    rule: dict[str, Any], result: pd.DataFrame, times: pd.Series, accounts: pd.Series
) -> pd.DataFrame:
    if "event_ids" in result:  # a correlation: one row per alert window
        ids = [[str(i).split(":", 1)[1] for i in json.loads(e)] for e in result["event_ids"]]
        groups = result["group_keys"].astype(str)
        ends = pd.to_datetime(result["window_end"], unit="s", utc=True)
        starts = pd.to_datetime(result["window_start"], unit="s", utc=True)
        span = (ends - starts).max()
        incident = bursts(ends, groups, span if pd.notna(span) else pd.Timedelta(0))
        rows = pd.DataFrame({"incident": incident, "ids": ids, "group": groups})
        summaries = {
            n: f"{rule['title']}: {json.loads(g.iloc[0])}"
            for n, g in rows.groupby("incident")["group"]
        }
        evidence = rows.groupby("incident")["ids"].agg(
            lambda s: sorted({i for ids in s for i in ids})
        )
    else:
        evidence = pd.Series([[str(i)] for i in result["eventId"]])
        summaries = {n: rule["title"] for n in evidence.index}
    out = pd.DataFrame({"evidence": [tuple(e) for e in evidence]}, index=evidence.index)
    stamps = [times.reindex(list(e)).dropna() for e in out["evidence"]]
    out["first_seen"] = [s.min() if len(s) else pd.NaT for s in stamps]
    out["last_seen"] = [s.max() if len(s) else pd.NaT for s in stamps]
    out["event_count"] = [len(e) for e in out["evidence"]]
    out["account_id"] = [accounts.get(e[0]) if e else None for e in out["evidence"]]
    out["summary"] = [summaries[n] for n in out.index]
    out["rule_id"] = f"sigma:{rule.get('id') or rule['title']}"
    out["title"] = rule["title"]
    out["severity"] = _LEVELS.get(str(rule.get("level")), "medium")
    tags = [t for t in rule.get("tags", []) if re.match(r"attack\.t\d{4}", str(t))]
    out["technique"] = ", ".join(t.split(".", 1)[1].upper() for t in tags) or None
    out["entity"] = None
    out["actor"] = None
    out["details"] = pd.Series(
        [{"sigma_level": rule.get("level")} for _ in range(len(out))], index=out.index, dtype=object
    )
    out["finding_id"] = [finding_id(f"sigma:{rule.get('id')}", None, e) for e in out["evidence"]]
    out["origin"] = None
    out["lineage"] = None
    out["first_seen"] = pd.to_datetime(out["first_seen"], utc=True)
    out["last_seen"] = pd.to_datetime(out["last_seen"], utc=True)
    out["event_count"] = out["event_count"].astype(np.int64)
    return out.reset_index(drop=True)[list(COLUMNS)]
