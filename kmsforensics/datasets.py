"""Curated sample evidence: find it by name.

Cases live in the repository's ``datasets/`` folder (each a folder with
``evidence/``, ``SCENARIO.md`` and ``truth.json``; ``vendor-samples`` holds the
vendor's published sample events). They are found next to the package in a checkout
or an editable install, or wherever ``KMSFORENSICS_DATASETS`` points.

Examples
--------
>>> import kmsforensics as kf
>>> "incident-leaked-ci-key" in kf.datasets.list()  # doctest: +SKIP
True
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path

from .errors import DatasetNotFoundError

ENVIRONMENT_VARIABLE = "KMSFORENSICS_DATASETS"


def root() -> Path:
    """Return the folder that holds the curated datasets.

    Raises
    ------
    DatasetNotFoundError
        When there is none: the message says how to get one.
    """
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parent.parent / "datasets")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DatasetNotFoundError(
        "the curated datasets are not on this machine: they ship with the kmsforensics "
        "repository (its datasets/ folder). Clone it and install from the checkout, or set "
        f"{ENVIRONMENT_VARIABLE} to a copy of that folder. Synthetic evidence can also be "
        "made anywhere with `kmsforensics synth OUT --scenario leaked-ci-key@72`."
    )


def list() -> builtins.list[str]:
    """Return the names of the curated datasets, sorted."""
    return sorted(p.name for p in root().iterdir() if p.is_dir() and not p.name.startswith("."))


def path(name: str) -> Path:
    """Return the folder of a curated dataset.

    For an incident case, load ``path(name) / "evidence"`` and compare with
    ``path(name) / "truth.json"``.

    Raises
    ------
    DatasetNotFoundError
        If there is no dataset of that name (the message lists the ones there are).
    """
    folder = root() / name
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"no dataset named {name!r}; the datasets are: {', '.join(list())}"
        )
    return folder
