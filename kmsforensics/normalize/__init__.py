"""Raw text columns -> typed frames: times, numbers, flags, identities, vocabularies."""

from .actiontrail import normalize_actiontrail
from .activity import (
    activity_from_actiontrail,
    activity_from_kms,
    build_activity,
    combine_activity,
)
from .kms import normalize_kms

__all__ = [
    "activity_from_actiontrail",
    "activity_from_kms",
    "build_activity",
    "combine_activity",
    "normalize_actiontrail",
    "normalize_kms",
]
