"""The triage record: what analysts decided about findings and incidents, and what they hide.

An analyst marks a finding or an incident ``confirmed``, ``false-positive`` or
``benign``, with a note and their name, and writes *suppressions*: a rule (or ``*``)
crossed with one of ``principal``, ``role``, ``lineage``, ``network`` or ``user_agent``,
with an expiry and a reason. The record is one JSON file that lives beside the case —
``triage.json`` in a case store folder, or a path given for an in-memory case — and
never inside the evidence. Every change is appended with its author and time, so the
file is also the log of the triage; the latest decision on an id is its status.

:func:`apply` removes the findings a live suppression covers and counts, for each
suppression, how many it hid (``findings.attrs["suppressed"]``).

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> record = TriageRecord(folder / "triage.json")
>>> _ = record.mark("D30-0123456789ab", "benign", note="nightly CI", analyst="li")
>>> record.status("D30-0123456789ab")
'benign'
>>> _ = record.suppress("D30", "principal", "ram-role:deploy", reason="CI pipeline",
...                     expires="2099-01-01", analyst="li")
>>> TriageRecord(folder / "triage.json").status("D30-0123456789ab")  # read back
'benign'
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import TriageError

#: The statuses an analyst can give a finding or an incident.
STATUSES = ("open", "confirmed", "false-positive", "benign")
#: What a suppression can name, besides the rule.
SCOPES = ("principal", "role", "lineage", "network", "user_agent")
FILE_NAME = "triage.json"
FORMAT = "kmsforensics-triage/1"


def finding_id(finding: Mapping[Any, Any] | pd.Series) -> str:
    """Return the stable id of a finding: its ``finding_id``, else one made here.

    The made id is the rule followed by a hash of what makes the finding itself (rule,
    entity, actor, first sighting), so two runs over the same evidence give the same
    ids, and a finding keeps its id when a window shows less of it.

    Examples
    --------
    >>> finding_id({"rule_id": "D01", "entity": "secret:1/x", "actor": "ram-user:7",
    ...             "first_seen": pd.Timestamp("2026-03-11T02:00:00Z")})
    'D01-6edee2225b56'
    >>> finding_id({"finding_id": "F-1", "rule_id": "D01"})
    'F-1'
    """
    given = finding.get("finding_id")
    if isinstance(given, str) and given:
        return given
    first = finding.get("first_seen")
    stamp = pd.Timestamp(first).isoformat() if first is not None and pd.notna(first) else ""
    parts = [str(finding.get(k) or "") for k in ("rule_id", "entity", "actor")] + [stamp]
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]
    return f"{finding.get('rule_id')}-{digest}"


def finding_ids(findings: pd.DataFrame) -> pd.Series:
    """Return :func:`finding_id` of every row, indexed like ``findings``."""
    if "finding_id" in findings.columns and findings["finding_id"].notna().all():
        return findings["finding_id"].astype(str)
    return pd.Series(
        [finding_id(row) for row in findings.to_dict("records")],
        index=findings.index,
        dtype=object,
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(value: str | datetime | pd.Timestamp, name: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as error:
        raise TriageError(f"{name} {value!r} is not a time (use e.g. 2026-12-31)") from error
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@dataclass(frozen=True)
class Decision:
    """One analyst's decision on a finding or an incident."""

    target: str  # the finding id or incident id
    status: str
    note: str = ""
    analyst: str = ""
    time: str = field(default_factory=_now)
    kind: str = "finding"  # or "incident"


@dataclass(frozen=True)
class Suppression:
    """A rule (or ``*``) crossed with a principal, role, lineage, network or user agent."""

    id: str
    rule_id: str
    scope: str
    value: str
    expires: str
    reason: str
    analyst: str = ""
    created: str = field(default_factory=_now)

    def live(self, at: pd.Timestamp | None = None) -> bool:
        """Tell whether the suppression has not expired at ``at`` (default: now)."""
        moment = at if at is not None else pd.Timestamp.now(tz="UTC")
        return bool(moment < _utc(self.expires, "expires"))


class TriageRecord:
    """The triage record of one case, kept in one JSON file beside the case.

    Parameters
    ----------
    path : str or Path
        The JSON file (made on the first change).
    evidence : iterable of str or Path, optional
        Evidence files or folders; the record may not be inside any of them.
    """

    def __init__(
        self, path: str | Path, evidence: Iterable[str | Path] = (), case: Any = None
    ) -> None:
        self.path = Path(path)
        self.case = case
        resolved = self.path.resolve()
        for root in evidence:
            base = Path(root).resolve()
            if resolved == base or base in resolved.parents:
                raise TriageError(
                    f"the triage record {self.path} would be inside the evidence ({base}); "
                    "evidence is never modified: keep the record beside the case"
                )
        self.decisions: list[Decision] = []
        self.suppressions: list[Suppression] = []
        if self.path.is_file():
            self._read()

    @classmethod
    def for_case(cls, case: Any, path: str | Path | None = None) -> TriageRecord:
        """Return the record of a case: ``triage.json`` in its store, or ``path``.

        An in-memory case (``kf.load``) has no folder of its own, so it needs ``path``.
        """
        roots = _evidence_roots(case)
        if path is not None:
            return cls(path, roots, case)
        store = getattr(case, "parameters", {}).get("store")
        if store:
            return cls(Path(store) / FILE_NAME, roots, case)
        raise TriageError(
            "an in-memory case has no folder for its triage record: pass a path beside the "
            "evidence, e.g. TriageRecord.for_case(case, 'case-42.triage.json'), or ingest "
            "the evidence into a case store (kf.ingest) and open it with kf.load(CASE_DIR)"
        )

    def _read(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.decisions = [Decision(**d) for d in data.get("decisions", [])]
            self.suppressions = [Suppression(**s) for s in data.get("suppressions", [])]
        except (OSError, ValueError, TypeError) as error:
            raise TriageError(
                f"cannot read the triage record {self.path}: {error}; fix or move the file"
            ) from error

    def save(self) -> Path:
        """Write the record (atomically: a crash leaves the old file whole)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format": FORMAT,
            "decisions": [asdict(d) for d in self.decisions],
            "suppressions": [asdict(s) for s in self.suppressions],
        }
        text = json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, self.path)
        return self.path

    def mark(
        self, target: str, status: str, note: str = "", analyst: str = "", kind: str = "finding"
    ) -> Decision:
        """Record a decision on a finding (or ``kind="incident"``) and save the record."""
        if status not in STATUSES:
            raise TriageError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        if kind not in ("finding", "incident"):
            raise TriageError(f"kind {kind!r} is not 'finding' or 'incident'")
        decision = Decision(str(target), status, str(note), str(analyst), kind=kind)
        self.decisions.append(decision)
        self.save()
        return decision

    def suppress(
        self,
        rule_id: str,
        scope: str,
        value: str,
        *,
        reason: str,
        expires: str | datetime | pd.Timestamp,
        analyst: str = "",
    ) -> Suppression:
        """Add a suppression and save the record.

        Parameters
        ----------
        rule_id : str
            A rule id (``D30``) or ``*`` for every rule.
        scope : str
            ``principal``, ``role``, ``lineage``, ``network`` (an address or CIDR) or
            ``user_agent`` (a substring).
        value : str
            What to match in that scope (a node id, a bare id, a name).
        reason : str
            Why (required: a suppression without a reason cannot be reviewed).
        expires : str or datetime
            When it stops applying (UTC when no zone is given).
        analyst : str
            Who wrote it.
        """
        if scope not in SCOPES:
            raise TriageError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
        if not str(reason).strip():
            raise TriageError("a suppression needs a reason")
        if scope == "network":
            try:
                ipaddress.ip_network(str(value), strict=False)
            except ValueError as error:
                raise TriageError(f"network {value!r} is not an address or CIDR") from error
        until = _utc(expires, "expires").strftime("%Y-%m-%dT%H:%M:%SZ")
        ident = f"S{len(self.suppressions) + 1}"
        item = Suppression(ident, str(rule_id), scope, str(value), until, str(reason),
                           str(analyst))  # fmt: skip
        self.suppressions.append(item)
        self.save()
        return item

    def apply(self, findings: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        """Return the findings the live suppressions keep, and how many each one hid.

        This is what ``kf.detect(case, triage=record)`` calls; the rows behind the
        findings (for ``network`` and ``user_agent``) are those of the record's case.
        """
        kept = apply(findings, self, self.case)
        return kept, dict(kept.attrs["suppressed"])

    def latest(self) -> dict[str, Decision]:
        """Return the latest decision on each id."""
        return {d.target: d for d in self.decisions}

    def status(self, target: str) -> str:
        """Return the status of a finding or incident id (``open`` when never decided)."""
        decision = self.latest().get(target)
        return decision.status if decision else "open"

    def table(self) -> pd.DataFrame:
        """Return the latest decision on each id as a table."""
        rows = [asdict(d) for d in self.latest().values()]
        return pd.DataFrame(rows, columns=["kind", "target", "status", "note", "analyst", "time"])

    def suppression_table(self, counts: Mapping[str, int] | None = None) -> pd.DataFrame:
        """Return the suppressions, with how many findings each hid (when ``counts`` given)."""
        frame = pd.DataFrame(
            [asdict(s) for s in self.suppressions],
            columns=["id", "rule_id", "scope", "value", "expires", "reason", "analyst", "created"],
        )
        if counts is not None:
            frame["findings_hidden"] = [int(counts.get(i, 0)) for i in frame["id"]]
        return frame


def _evidence_roots(case: Any) -> list[Path]:
    manifest = getattr(case, "manifest", None)
    if manifest is None or "path" not in getattr(manifest, "columns", ()):
        return []
    return sorted({Path(str(p)).parent for p in manifest["path"].dropna()})


def _nodes(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _names(node: str, aliases: Mapping[str, set[str]] | None = None) -> set[str]:
    """Return a node id, the bare forms it may be written as, and its names.

    ``ram-role:r`` is also ``r``; ``role-session:r:s`` also ``r``; ``aliases`` maps a
    principal id to the names the logs give it (``ci-deployer``).
    """
    _, sep, ident = node.partition(":")
    names = {node}
    if sep:
        names.add(ident)
        names.add(ident.rpartition("/")[2])
        names.add(ident.partition(":")[0])
    for name in list(names):
        names |= (aliases or {}).get(name, set())
    return names


def _lineage(finding: Mapping[Any, Any]) -> list[str]:
    """Return the origin, the role chain (ARNs) and the network of a finding's lineage."""
    nodes: list[str] = []
    for column in ("lineage", "origin", "chain"):
        value = finding.get(column)
        if isinstance(value, Mapping):  # {"origin": ..., "chain": [...], "network": ...}
            for part in ("origin", "chain", "network"):
                nodes += _nodes(value.get(part))
        else:
            nodes += _nodes(value)
    return nodes


def _matches(
    item: Suppression,
    finding: Mapping[Any, Any],
    rows: pd.DataFrame | None,
    aliases: Mapping[str, set[str]] | None = None,
) -> bool:  # one place that knows what each scope means
    if item.rule_id not in ("*", finding.get("rule_id")):
        return False
    actors = _nodes(finding.get("actor")) + _nodes(finding.get("entity"))
    if item.scope == "principal":
        return any(item.value in _names(n, aliases) for n in actors)
    if item.scope == "role":
        roles = [
            n
            for n in actors + _lineage(finding)
            if n.startswith(("ram-role:", "role-")) or ":role/" in n
        ]
        return any(item.value in _names(n, aliases) for n in roles)
    if item.scope == "lineage":
        return any(item.value in _names(n, aliases) for n in _lineage(finding) + actors)
    if rows is None or rows.empty:
        return False
    if item.scope == "network":
        net = ipaddress.ip_network(item.value, strict=False)
        addresses = rows["client_ip"].dropna().astype(str).unique()
        return len(addresses) > 0 and all(_in(a, net) for a in addresses)
    agents = rows["user_agent"].dropna().astype(str).unique()
    return len(agents) > 0 and all(item.value in a for a in agents)


def _in(address: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(address) in net
    except ValueError:
        return False


def apply(
    findings: pd.DataFrame,
    record: TriageRecord | None,
    case: Any = None,
    at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Hide the findings that a live suppression covers; count what each one hid.

    A ``network`` or ``user_agent`` suppression hides a finding when *every* row of its
    evidence came from that network or agent (it needs ``case`` to see the rows). The
    result has ``finding_id`` and ``triage_status`` columns, ``attrs["suppressed"]``
    (suppression id -> findings hidden) and ``attrs["hidden"]`` (the hidden rows).

    Examples
    --------
    >>> findings = pd.DataFrame({"rule_id": ["D30", "D01"], "entity": ["ram-role:ci", "x"],
    ...     "actor": ["ram-role:ci", "y"], "first_seen": pd.to_datetime(["2026-03-01"] * 2,
    ...     utc=True), "evidence": [(), ()]})
    >>> import tempfile, pathlib
    >>> record = TriageRecord(pathlib.Path(tempfile.mkdtemp()) / "t.json")
    >>> _ = record.suppress("D30", "role", "ci", reason="pipeline", expires="2099-01-01")
    >>> kept = apply(findings, record)
    >>> list(kept.rule_id), kept.attrs["suppressed"]
    (['D01'], {'S1': 1})
    """
    out = findings.copy()
    out["finding_id"] = finding_ids(findings)
    if record is None:
        out["triage_status"] = "open"
        out.attrs["suppressed"] = {}
        out.attrs["hidden"] = out.iloc[0:0]
        return out
    latest = record.latest()
    out["triage_status"] = [latest[i].status if i in latest else "open" for i in out["finding_id"]]
    out["triage_note"] = [latest[i].note if i in latest else "" for i in out["finding_id"]]
    live = [s for s in record.suppressions if s.live(at)]
    rows_of = _evidence_lookup(case) if case is not None and live else None
    aliases = _aliases(case) if case is not None and live else None
    counts = {s.id: 0 for s in record.suppressions}
    hidden = []
    for index, finding in zip(out.index, out.to_dict("records"), strict=True):
        rows = rows_of(finding.get("evidence")) if rows_of is not None else None
        for item in live:
            if _matches(item, finding, rows, aliases):
                counts[item.id] += 1
                hidden.append(index)
                break
    kept = out.drop(index=hidden)
    kept.attrs = dict(findings.attrs)
    kept.attrs["suppressed"] = counts
    kept.attrs["hidden"] = out.loc[hidden]
    return kept


def _aliases(case: Any) -> dict[str, set[str]]:
    """Return principal id -> the names the logs give it."""
    activity = case.activity
    if not {"principal_id", "principal_name"} <= set(activity.columns):
        return {}
    pairs = activity[["principal_id", "principal_name"]].dropna().astype(str).drop_duplicates()
    names: dict[str, set[str]] = {}
    for ident, name in zip(pairs["principal_id"], pairs["principal_name"], strict=True):
        names.setdefault(ident.partition(":")[0], set()).add(name)
    return names


def _evidence_lookup(case: Any) -> Any:
    from .case import evidence_ids

    activity = case.activity
    columns = [c for c in ("client_ip", "user_agent") if c in activity.columns]
    table = activity[columns].assign(_id=evidence_ids(activity).to_numpy())
    table = table.dropna(subset=["_id"])

    def rows(evidence: Any) -> pd.DataFrame:
        return table[table["_id"].isin(set(_nodes(evidence)))]

    return rows
