"""The ``SCENARIO.md`` of a case, written from its ground truth so it never drifts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

_LOCAL = timedelta(hours=8)


def scenario_markdown(truth: dict[str, Any], title: str, story: str, name: str = "") -> str:
    """Render a case description: the story, accounts, timeline and what to find.

    Examples
    --------
    >>> truth = {"seed": 1, "start": "2026-03-02T00:00:00Z", "hours": 24,
    ...          "organisation": {"rd_id": "rd-x", "accounts": {"prod": "1"}},
    ...          "counts": {"actiontrail_events": 5, "kms_records": 7}, "scenarios": []}
    >>> "## Timeline" in scenario_markdown(truth, "A quiet day", "Nothing happens.")
    True
    """
    start = _parse(truth["start"])
    end = start + timedelta(hours=truth["hours"])
    counts = truth["counts"]
    lines = [
        f"# {title}",
        "",
        story.strip(),
        "",
        "## The evidence",
        "",
        f"- `evidence/`: {counts['actiontrail_events']:,} ActionTrail events (an OSS "
        f"delivery tree of a multi-account trail) and {counts['kms_records']:,} KMS access-log "
        "records (SLS shipped to OSS as gz JSON lines), from "
        f"{_utc(start)} to {_utc(end)}.",
        *(
            [
                f"- `evidence/config/`: {len(truth['aap_config']['files'])} AAP configuration "
                "exports (saved DescribeApplicationAccessPoint, DescribePolicy, "
                "DescribeNetworkRule and ListClientKeys responses) taken at "
                f"{_utc(_parse(truth['aap_config']['exported_at']))}: `kf.aap_config(case)`.",
            ]
            if truth.get("aap_config", {}).get("files")
            else []
        ),
        "- `truth.json`: the ground truth this page is written from.",
        f"- Made with `kmsforensics synth` (seed {truth['seed']}); the same command gives the "
        "same bytes.",
        "",
        "```python",
        "import kmsforensics as kf",
        f"case = kf.load(kf.datasets.path({name or '<this folder>'!r}) / 'evidence')",
        "```",
        "",
        "## Accounts",
        "",
        f"Resource Directory `{truth['organisation']['rd_id']}`:",
        "",
        "| purpose | account UID |",
        "|---|---|",
        *(f"| {purpose} | `{uid}` |" for purpose, uid in truth["organisation"]["accounts"].items()),
        "",
        "## Timeline",
        "",
    ]
    if not truth["scenarios"]:
        lines += [
            "Nothing but normal activity: every finding on this case is a false positive.",
            "",
        ]
    else:
        lines += [
            "| time (UTC) | time (UTC+8) | attack | step | should trigger |",
            "|---|---|---|---|---|",
        ]
        for scenario in truth["scenarios"]:
            for step in scenario["steps"]:
                moment = _parse(step["time"])
                lines.append(
                    f"| {_utc(moment)} | {(moment + _LOCAL).strftime('%a %H:%M')} | "
                    f"{scenario['id']} | {step['what']} | {', '.join(step['detections'])} |"
                )
        lines += ["", "## What an analyst should find", ""]
        for scenario in truth["scenarios"]:
            lines += [f"### {scenario['title']} (`{scenario['id']}`)", ""]
            lines += [f"- **{key}**: {_value(value)}" for key, value in scenario["facts"].items()]
            lines.append("")
    return "\n".join(lines)


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{value}`"
