"""The rule pack: importing this package registers every rule (D01-D33)."""

from . import (
    aap,
    baseline,
    chains,
    identity,
    keys,
    logging,
    selections,  # after the rules: how each runs on the dask engine
    volume,
)

__all__ = ["aap", "baseline", "chains", "identity", "keys", "logging", "selections", "volume"]
