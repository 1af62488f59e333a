"""Raw text columns -> typed frames: times, numbers, flags, identities, vocabularies."""

from .actiontrail import normalize_actiontrail
from .activity import build_activity
from .kms import normalize_kms

__all__ = ["build_activity", "normalize_actiontrail", "normalize_kms"]
