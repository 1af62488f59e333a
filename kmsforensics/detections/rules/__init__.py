"""The rule pack: importing this package registers every rule (D01-D30).

Each rule is one object in its module: metadata, typed parameters, the pandas body
and, beside it, its dask facet (``@rule.select`` ...; helpers in :mod:`.facets`).
"""

from . import baseline, chains, identity, keys, logging, volume

__all__ = ["baseline", "chains", "identity", "keys", "logging", "volume"]
