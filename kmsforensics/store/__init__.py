"""The case store: evidence parsed once into Parquet, partitioned by source and day.

``kf.ingest(EVIDENCE..., out=CASE_DIR)`` (or ``kmsforensics ingest``) reads the
evidence in bounded batches with the loader's parser (the same parsing and
normalising code as :func:`kmsforensics.load`, so the same rows) and commits each
batch to the store;
``kf.open(CASE_DIR)`` opens it without reading the events. The modules:

- :mod:`.layout`: where each file goes, the store file, durable writes;
- :mod:`.lock`: one writer at a time (an ``flock`` that names its holder);
- :mod:`.write`: ``kf.ingest`` (leftovers removed, numbers reserved, files hashed,
  batches committed);
- :mod:`.read`: :class:`Store`, which reads only committed files and checks them;
- :mod:`.case`: ``kf.open`` and :class:`StoreCase`.

The store imports neither the loader nor the dask engine: :mod:`kmsforensics` hands
the loader's parser to :func:`set_parser` and registers :func:`open_for_load` with
the loader (``kf.load(CASE_DIR)``), so the three modules form no import circle.

Re-ingesting evidence whose SHA-256 is already in the manifest does nothing; new files
are appended. An event already in the store (same id, time and name) is counted as a
duplicate of its file, as :func:`kmsforensics.load` does within one load; the keys are
kept per day (duplicates share their time, so their day), so memory follows the busiest
day, not the case.

Examples
--------
>>> import kmsforensics as kf
>>> report = kf.ingest(kf.datasets.path("vendor-samples"), out="case-store",
...                    progress=False)  # doctest: +SKIP
>>> case = kf.open("case-store")  # doctest: +SKIP
>>> case.between("2026-03-02", "2026-03-03").activity  # doctest: +SKIP
"""

from __future__ import annotations

from ..errors import StoreError, StoreIntegrityError, StoreLockedError
from .case import ENGINES, StoreCase, open, open_for_load, open_store
from .layout import FRAMES, STORE_FILE, is_store, looks_like_store
from .read import Store
from .write import BATCH_BYTES, IngestReport, ingest, set_parser

__all__ = [
    "BATCH_BYTES",
    "ENGINES",
    "FRAMES",
    "STORE_FILE",
    "IngestReport",
    "Store",
    "StoreCase",
    "StoreError",
    "StoreIntegrityError",
    "StoreLockedError",
    "ingest",
    "is_store",
    "looks_like_store",
    "open",
    "open_for_load",
    "open_store",
    "set_parser",
]
