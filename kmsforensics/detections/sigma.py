"""Optional: Sigma rules (single-event and correlation) over ActionTrail and the KMS log.

There is no Sigma log source for Alibaba Cloud; this module defines one:

==============================================  =========================================
``logsource``                                   runs over
==============================================  =========================================
``product: alibaba``, ``service: actiontrail``  the ActionTrail events (``case.actiontrail``)
``product: alibaba``, ``service: kms``          the KMS instance access log (``case.kms``)
==============================================  =========================================

Sigma rules are converted by pySigma 2.x with its SQLite backend (the only combination
that kept Sigma's meaning in our measurements, detections.md section 2) through the
processing pipeline :func:`pipeline`, and run over an in-memory SQLite copy of the
flattened evidence: one table per service, one column per field, dotted names for
nested ones (``userIdentity.type``, ``requestParameters.KeyId``,
``additionalEventData.mfaChecked``). Equality ignores case, ``|re`` uses Python's
``re``, and a field the evidence never has is a column of NULLs, so a rule about it
matches nothing instead of failing. Rules written with AWS CloudTrail field names get
the Alibaba names through :data:`FIELD_MAP` and :data:`KMS_FIELD_MAP` where they mean
the same thing (values are not translated: ``ConsoleLogin`` is ``ConsoleSignin``
here). Both KMS-log columns ``eventTime`` and ``eventId`` exist for correlations: the
record's time and its ``request_id``. A rule for another log source is skipped with a
:class:`~kmsforensics.DetectionNote` warning.

Needs the ``sigma`` extra: ``pip install 'kmsforensics[sigma]'``.

Examples
--------
>>> import kmsforensics as kf
>>> from kmsforensics.detections import sigma
>>> sorted(p.name for p in sigma.EXAMPLES.glob("*.yml"))[:1]
['actiontrail_logging_stopped.yml']
>>> case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence",
...                progress=False)  # doctest: +SKIP
>>> kf.detect_sigma(case, sigma.EXAMPLES)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import sqlite3
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..case import Case
from .findings import COLUMNS, bursts, empty_findings, finding_id

#: The example rules shipped with the package.
EXAMPLES = Path(__file__).parent / "sigma_rules"
#: SigmaHQ's AWS CloudTrail rules adapted to ActionTrail (Detection Rule License 1.1).
SIGMAHQ = EXAMPLES / "sigmahq"
#: The SQLite table each ``service`` of ``product: alibaba`` runs over.
TABLES = {"actiontrail": "actiontrail", "kms": "kms"}

#: AWS CloudTrail field names and their ActionTrail equivalents.
FIELD_MAP: dict[str | None, str | list[str]] = {
    "sourceIPAddress": "sourceIpAddress",
    "awsRegion": "acsRegion",
    "userIdentity.arn": "userIdentity.principalId",
    "additionalEventData.MFAUsed": "additionalEventData.mfaChecked",
    "eventSource": "eventSource",
    "requestID": "requestId",
    "eventID": "eventId",
    "recipientAccountId": "recipientAccountId",
}
#: CloudTrail and ActionTrail names for the KMS access-log fields they mean.
KMS_FIELD_MAP: dict[str | None, str | list[str]] = {
    "eventName": "api_name",
    "sourceIPAddress": "client_ip",
    "sourceIpAddress": "client_ip",
    "awsRegion": "region_id",
    "acsRegion": "region_id",
    "userAgent": "useragent",
    "errorCode": "error_code",
    "errorMessage": "error_message",
    "requestID": "request_id",
    "requestId": "request_id",
    "userIdentity.type": "identity_type",
    "userIdentity.accessKeyId": "access_key_id",
    "userIdentity.arn": "principal_id",
    "userIdentity.principalId": "principal_id",
    "userIdentity.accountId": "account_id",
    "recipientAccountId": "account_id",
    "requestParameters.KeyId": "key_id",
    "requestParameters.SecretName": "secret_name",
}


def pipeline() -> Any:
    """Return the pySigma processing pipeline of ``product: alibaba``.

    It sends ``service: actiontrail`` rules to the ActionTrail table and ``service:
    kms`` rules to the KMS-log table, maps CloudTrail field names to ours, and fails a
    rule of any other log source (reported, and skipped, by :func:`detect_sigma`).

    Examples
    --------
    >>> pipeline().name  # doctest: +SKIP
    'alibaba actiontrail and kms'
    """
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import (
        FieldMappingTransformation,
        RuleFailureTransformation,
        SetStateTransformation,
    )

    items = [
        ProcessingItem(
            RuleFailureTransformation("not an alibaba log source (product: alibaba)"),
            rule_conditions=[LogsourceCondition(product="alibaba")],
            rule_condition_negation=True,
            identifier="alibaba-only",
        )
    ]
    for service, mapping in (("actiontrail", FIELD_MAP), ("kms", KMS_FIELD_MAP)):
        items += [
            ProcessingItem(
                SetStateTransformation("table", TABLES[service]),
                rule_conditions=[LogsourceCondition(product="alibaba", service=service)],
                identifier=f"alibaba-{service}-table",
            ),
            ProcessingItem(
                FieldMappingTransformation(mapping),
                rule_conditions=[LogsourceCondition(product="alibaba", service=service)],
                identifier=f"alibaba-{service}-fields",
            ),
        ]
    return ProcessingPipeline(name="alibaba actiontrail and kms", priority=20, items=items)


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


def flatten_kms(case: Case) -> pd.DataFrame:
    """Return the KMS access log as one flat table, with ``eventTime`` and ``eventId``."""
    kms = case.kms
    flat = kms.copy()
    flat["eventTime"] = kms["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    flat["time"] = flat["eventTime"]
    flat["eventId"] = kms["request_id"].astype(object)
    for column in flat.columns:
        if flat[column].dtype == object or str(flat[column].dtype) in ("category", "str"):
            flat[column] = flat[column].astype(object).map(_text, na_action="ignore")
        elif str(flat[column].dtype) in ("Int16", "Int32", "Int64", "boolean"):
            flat[column] = flat[column].astype(object).where(flat[column].notna(), None)
    return _fold_case(flat)


def detect_sigma(case: Case, rules: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Run Sigma rules (``product: alibaba``) over a case; findings as ``kf.detect`` makes.

    Parameters
    ----------
    case : Case
        The evidence.
    rules : str, Path or list
        YAML text, a ``.yml`` file, a folder of them, or a list of those. Rules of
        ``service: actiontrail`` read the ActionTrail events, rules of ``service: kms``
        the KMS access log; correlations (``event_count``, ``value_count``,
        ``temporal``...) read what their rules read.

    Returns
    -------
    pandas.DataFrame
        The findings frame: ``rule_id`` is ``sigma:<rule id>``, ``title`` and
        ``severity`` come from the rule, ``technique`` from its ``attack.t....`` tags,
        ``evidence`` holds ``eventId`` (ActionTrail) and ``request_id`` (KMS) values.
        Overlapping windows of a correlation for the same group are one finding. A rule
        of another log source is skipped with a :class:`~kmsforensics.DetectionNote`
        warning, and listed in ``attrs["notes"]``. A case on the dask engine is read
        into memory first (``case.between(...)`` reads fewer days).
    """
    try:
        from sigma.backends.sqlite import sqliteBackend
        from sigma.collection import SigmaCollection
    except ImportError as error:  # pragma: no cover - the extra is installed in CI
        raise ImportError("Sigma rules need: pip install 'kmsforensics[sigma]'") from error
    from . import DetectionNote

    if getattr(case, "engine", "pandas") == "dask":
        case = case.between()  # the rules run in SQLite: the frames are read into memory
    backend = sqliteBackend(
        pipeline(),
        collect_errors=True,
        collate_nocase=True,
        timestamp_field="eventTime",
        event_id_field="eventId",
    )
    collection = SigmaCollection.from_yaml(_rules_text(rules))
    converted = json.loads(backend.convert(collection, "zircolite"))
    notes = {str(getattr(rule, "title", rule)): str(error) for rule, error in backend.errors}
    tables = {TABLES["actiontrail"]: flatten(case), TABLES["kms"]: flatten_kms(case)}
    needed: dict[str, set[str]] = {name: set() for name in tables}
    for rule in converted:
        if rule.get("result_type") == "correlation":
            for table, fields in rule["correlation_plan"]["required_fields"].items():
                needed.setdefault(table.strip('"'), set()).update(fields)
        else:
            table = str(rule.get("source_table", "logs")).strip('"')
            needed.setdefault(table, set()).update(rule.get("required_fields", []))
    connection = sqlite3.connect(":memory:")
    connection.create_function("regexp", 2, _regexp, deterministic=True)
    for name, flat in tables.items():
        for field in sorted(needed.get(name, set()) - {c.lower() for c in flat.columns}):
            if field.lower() not in {c.lower() for c in flat.columns}:
                flat[field] = None
        flat.to_sql(name, connection, index=False)
    times, accounts = _lookups(case)
    spell = _Spelling(tables)
    frames = []
    for rule in converted:
        for sql in rule["rule"]:
            cursor = connection.execute(sql)
            columns = [d[0] for d in cursor.description]
            result = pd.DataFrame(cursor.fetchall(), columns=columns)
            if not len(result):
                continue
            frames.append(_findings(rule, result, times, accounts, spell))
    connection.close()
    if notes:
        warnings.warn(
            "kmsforensics.detect_sigma: skipped "
            + "; ".join(f"{k}: {v}" for k, v in notes.items()),
            DetectionNote,
            stacklevel=2,
        )
    found = [f for f in frames if len(f)]
    out = (
        pd.concat(found, ignore_index=True).sort_values("first_seen").reset_index(drop=True)
        if found
        else empty_findings()
    )
    out.attrs["notes"] = notes
    return out


#: The name this function had first (kept: ``sigma.detect(case, rules)``).
detect = detect_sigma


def _lookups(case: Case) -> tuple[pd.Series, pd.Series]:
    """Time and account of every evidence id (ActionTrail ``eventId``, KMS ``request_id``)."""
    at, kms = case.actiontrail, case.kms
    ids = pd.concat([at["eventId"].astype(str), kms["request_id"].astype(str)])
    times = pd.Series(
        np.concatenate([at["eventTime"].to_numpy(), kms["time"].to_numpy()]), index=ids.to_numpy()
    )
    accounts = pd.Series(
        np.concatenate(
            [
                at["userIdentity.accountId"].astype(object).to_numpy(),
                kms["account_id"].astype(object).to_numpy(),
            ]
        ),
        index=ids.to_numpy(),
    )
    keep = ~times.index.duplicated()
    return times[keep], accounts[keep]


class _Spelling:
    """The evidence's own spelling of a correlation's group (SQLite groups in lower case)."""

    def __init__(self, tables: dict[str, pd.DataFrame]) -> None:
        self.tables = tables
        self.rows: dict[str, dict[str, int]] = {}
        for name, flat in tables.items():
            ids = flat["eventId"].astype(str).tolist()
            self.rows[name] = {i: n for n, i in reversed(list(enumerate(ids)))}

    def group(self, group: dict[str, Any], evidence_id: str) -> dict[str, Any]:
        """Return ``group`` with each value as the evidence row ``evidence_id`` has it."""
        for name, rows in self.rows.items():
            if evidence_id in rows:
                flat = self.tables[name]
                row = flat.iloc[rows[evidence_id]]
                columns = {c.lower(): c for c in flat.columns}
                return {
                    key: row[columns[key.lower()]] if key.lower() in columns else value
                    for key, value in group.items()
                }
        return group


def _findings(
    rule: dict[str, Any],
    result: pd.DataFrame,
    times: pd.Series,
    accounts: pd.Series,
    spell: _Spelling,
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
            n: f"{rule['title']}: {spell.group(json.loads(g.iloc[0]), ids[g.index[0]][0])}"
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
