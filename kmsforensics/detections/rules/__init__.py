"""The rule pack: importing this package registers every rule (D01-D33).

Each rule is one object in its module: metadata, typed parameters, the pandas body
and, beside it, its dask facet (``@rule.select`` ...; helpers in :mod:`.facets`).
"""

from . import aap, baseline, chains, identity, keys, logging, volume

__all__ = ["aap", "baseline", "chains", "identity", "keys", "logging", "volume"]
