"""The rule pack: importing this package registers every rule (D01-D30)."""

from . import (
    baseline,
    chains,
    identity,
    keys,
    logging,
    selections,  # after the rules: how each runs on the dask engine
    volume,
)

__all__ = ["baseline", "chains", "identity", "keys", "logging", "selections", "volume"]
