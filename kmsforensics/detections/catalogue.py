"""The rule pack's documentation, generated from the rules themselves.

``docs/rules.md`` is this module's output (``make rules-doc``); a test regenerates it and
compares, so the documentation cannot drift from the code. It lists every rule with its
parameters, what it reads and its false positives, and a measured table: on the curated
incident, the ground-truth steps each rule finds; on the benign week, the findings each
rule raises (all of them false positives).

Examples
--------
>>> from kmsforensics.detections.catalogue import rule_sections
>>> rule_sections().splitlines()[0]
'## D01 — Secret mass retrieval'
"""

from __future__ import annotations

import json
import warnings

import pandas as pd

from .. import datasets
from ..loader import load
from . import detect
from .registry import ON_DASK, select


def rule_sections() -> str:
    """Markdown for every rule: metadata, parameters, what it reads, false positives."""
    parts = []
    for rule in select(None):
        params = ", ".join(f"`{k}` = `{v!r}`" for k, v in rule.params.items()) or "none"
        parts.append(
            f"## {rule.rule_id} — {rule.title}\n\n"
            f"- severity: **{rule.severity}** · ATT&CK: {rule.technique} · kind: {rule.kind}"
            f" · logs: {', '.join(rule.sources)}"
            + (" · uses a geo database when given" if rule.needs_geo else "")
            + f"\n- on the dask engine: {ON_DASK[rule.on_dask]}"
            + f"\n- parameters: {params}\n\n"
            f"{' '.join(rule.doc.split(chr(10) + chr(10))[0].split())}\n\n"
            + "\n\n".join(
                " ".join(part.split())
                for part in rule.doc.split("\n\n")[1:]
                if not part.lstrip().startswith(("Reads", "False positives"))
            )
            + f"\n\n**Reads:** {rule.section('Reads')}\n\n"
            f"**False positives:** {rule.section('False positives')}\n"
        )
    return "\n".join(p.replace("\n\n\n", "\n\n") for p in parts)


def measure() -> pd.DataFrame:
    """Per rule: steps of the curated incident found, findings there, findings on the benign week.

    Returns
    -------
    pandas.DataFrame
        Indexed by rule id: ``truth_steps`` (steps whose truth names the rule),
        ``found`` (those the rule proves with the step's own ids), ``incident_findings``,
        ``benign_findings`` and ``benign_high`` (high or critical).
    """
    incident_folder = datasets.path("incident-leaked-ci-key")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        incident = detect(load(incident_folder / "evidence", progress=False))
        benign = detect(load(datasets.path("benign-week") / "evidence", progress=False))
    truth = json.loads((incident_folder / "truth.json").read_text())
    rows = {r.rule_id: dict.fromkeys(("truth_steps", "found"), 0) for r in select(None)}
    for scenario in truth["scenarios"]:
        for step in scenario["steps"]:
            ids = set(step["event_ids"]) | set(step["request_ids"])
            for rule_id in step["detections"]:
                rows[rule_id]["truth_steps"] += 1
                mine = incident[incident.rule_id == rule_id]
                rows[rule_id]["found"] += any(ids & set(e) for e in mine.evidence)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["incident_findings"] = incident.groupby("rule_id").size()
    table["benign_findings"] = benign.groupby("rule_id").size()
    high = benign[benign.severity.isin(["high", "critical"])]
    table["benign_high"] = high.groupby("rule_id").size()
    return table.fillna(0).astype(int)


def markdown() -> str:
    """Return the whole rule pack document (docs/rules.md)."""
    table = measure()
    lines = [
        "| rule | steps in the incident's truth | found | findings on the incident "
        "| findings on the benign week (false positives) | of which high |",
        "|---|---|---|---|---|---|",
    ]
    for rule_id, row in table.iterrows():
        lines.append(
            f"| {rule_id} | {row.truth_steps} | {row.found} | {row.incident_findings} "
            f"| {row.benign_findings} | {row.benign_high} |"
        )
    return (
        "# The kmsforensics rule pack\n\n"
        "Generated from the rules themselves by `make rules-doc` "
        "(`kmsforensics.detections.catalogue`); do not edit by hand. "
        "`kf.list_rules()` gives the same as a DataFrame.\n\n"
        "## Measured on the bundled cases\n\n"
        "`datasets/incident-leaked-ci-key` (a week, two attacks) and `datasets/benign-week` "
        "(the same organisation, no attack), with the defaults (the first two days are the "
        "baseline). A step is found when a finding of the rule its truth names carries the "
        "step's own event or request ids as evidence. Every finding on the benign week is a "
        "false positive.\n\n" + "\n".join(lines) + "\n\n" + rule_sections()
    )
