"""The curated cases shipped in ``datasets/``, defined here so they can be rebuilt exactly.

``make datasets`` (or :func:`build`) regenerates them; a test checks that the
committed files are byte for byte what the generator makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .generate import generate

SEED = 2026
INCIDENT_WEEK = datetime(2026, 3, 9, tzinfo=UTC)  # a Monday
BASELINE_WEEK = INCIDENT_WEEK - timedelta(days=7)


@dataclass(frozen=True)
class CuratedCase:
    """How one curated case is made."""

    name: str
    title: str
    story: str
    start: datetime
    scenarios: tuple[tuple[str, datetime], ...] = ()
    seed: int = SEED
    hours: int = 24 * 7
    kms_per_hour: float = 600.0


CASES: dict[str, CuratedCase] = {
    case.name: case
    for case in (
        CuratedCase(
            "incident-leaked-ci-key",
            "Leaked CI key: cross-account secret theft, key destruction, a broadened AAP",
            "Acme runs payments on Alibaba Cloud: a Resource Directory with a shared-services "
            "account for people and CI, and dev and prod members whose applications use KMS "
            "instances. On Wednesday night (UTC+8) the CI user's permanent AccessKey, leaked "
            "in a public repository, is tried from an unknown address. The attacker assumes "
            "`deploy-role` in prod, lists keys and secrets, and reads 35 secrets through the "
            "shared KMS gateway with the session's STS key. The next night they come back, "
            "remove a key's deletion protection, disable two keys that applications use every "
            "minute, schedule a key for deletion and delete another key's material; the "
            "applications' calls start failing with `Rejected.Disabled`. On Saturday night "
            "an administrator session broadens the payments application access point's policy "
            "to every key and secret and creates a new client key, which reads other "
            "applications' secrets from outside the AAP's network rule; the on-call engineer "
            "deletes the key the next morning, and the log shows it used once more. A "
            "configuration backup of every AAP, taken when the week starts, is in "
            "`evidence/config/`.",
            INCIDENT_WEEK,
            (
                ("leaked-ci-key", INCIDENT_WEEK + timedelta(days=2, hours=17, minutes=42)),
                ("key-destruction", INCIDENT_WEEK + timedelta(days=3, hours=18, minutes=31)),
                ("aap-broadened", INCIDENT_WEEK + timedelta(days=4, hours=16, minutes=20)),
            ),
        ),
        CuratedCase(
            "benign-week",
            "A normal week (baseline and false-positive measurement)",
            "The same organisation as `incident-leaked-ci-key`, the week before the incident: "
            "people sign in and browse keys, CI deploys across accounts, workloads renew "
            "their role sessions and read secrets, applications call the KMS instances, and "
            "a background of throttling and permission errors. No attack.",
            BASELINE_WEEK,
        ),
    )
}


def build(name: str, out: Path) -> dict[str, Any]:
    """Generate the curated case ``name`` into ``out``; return its truth."""
    case = CASES[name]
    return generate(
        out,
        seed=case.seed,
        start=case.start,
        hours=case.hours,
        kms_per_hour=case.kms_per_hour,
        scenarios=case.scenarios,
        title=case.title,
        story=case.story,
    )
