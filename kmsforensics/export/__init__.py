"""Hand the case to other tools: OCSF events and BloodHound OpenGraph.

:func:`export_ocsf` writes every ActionTrail event and KMS access-log record (and,
optionally, the findings) as OCSF 1.5 events, for a SIEM or a data lake;
:func:`export_bloodhound` writes the identity graph as a BloodHound OpenGraph upload
with its extension schema, for attack-path queries. The CSV, JSON Lines and Timesketch
exports are in :mod:`kmsforensics.handover`; Sigma rules run in
:mod:`kmsforensics.detections.sigma`.
"""

from __future__ import annotations

from .bloodhound import export_bloodhound
from .ocsf import export_ocsf

__all__ = ["export_bloodhound", "export_ocsf"]
