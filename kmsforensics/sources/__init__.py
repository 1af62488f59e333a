"""Record kinds: the two log sources and every envelope they arrive in.

Each module registers its kinds in :mod:`kmsforensics.sources.registry`:

==================  ===============================================================
module              kinds
==================  ===============================================================
``actiontrail``     the ActionTrail event (a source)
``kms``             the KMS instance access-log record (a source)
``sls``             SLS log around an ``event`` string; SLS pull / GetLogs rows
``lookup``          LookupEvents pages, SDK ``to_map()`` dumps, AccessKey usage items
``sentinel``        Microsoft Sentinel rows (``AliCloud_CL``, ``AliCloudActionTrailLogs_CL``)
``pascal``          events whose field names are in another case (``EventName``)
``flattened``       events flattened into ``event.<path>`` keys
``aap_config``      saved KMS AAP API responses (configuration, for ``kf.aap_config``)
``rejects``         broken JSON (salvaged or rejected), empty objects, bare values
==================  ===============================================================
"""

from . import aap_config, actiontrail, flattened, kms, lookup, pascal, rejects, sentinel, sls
from .registry import (
    Container,
    Envelope,
    Kind,
    Options,
    Reject,
    Source,
    get,
    kinds,
    register,
    sources,
)

__all__ = [
    "Container",
    "Envelope",
    "Kind",
    "Options",
    "Reject",
    "Source",
    "aap_config",
    "actiontrail",
    "flattened",
    "get",
    "kinds",
    "kms",
    "lookup",
    "pascal",
    "register",
    "rejects",
    "sentinel",
    "sls",
    "sources",
]
