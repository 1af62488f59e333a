"""Where records came from, as a reader sees it: paths relative to the evidence root.

The frames of a case keep each file's full path (``case.manifest.path``, the
``source_file`` of every record, ``"archive.zip::member"`` for a zip member): that is the
provenance, and it stays as it is. What is put in front of a reader (the report, the
notebooks' grids, ``case.search``) names a file by its path under the *evidence root*,
the deepest folder that holds every evidence file, as the evidence was handed over; a
frame shown so keeps the root in ``frame.attrs["evidence_root"]``, so that
``root / path`` is the full path again.

Examples
--------
>>> evidence_root(["/cases/7/sls/a.json.gz", "/cases/7/trail/b.zip::x/y.json"])
'/cases/7'
>>> relative_path("/cases/7/trail/b.zip::x/y.json", "/cases/7")
'trail/b.zip::x/y.json'
>>> evidence_root(["/cases/7/a.json", "b.json"]) is None  # no one root: paths left as they are
True
>>> import pandas as pd
>>> files = pd.DataFrame({"path": ["/cases/7/sls/a.json.gz", "/cases/7/b.json"]})
>>> shown = relative_paths(files)
>>> shown.path.tolist(), shown.attrs["evidence_root"]
(['sls/a.json.gz', 'b.json'], '/cases/7')
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

import pandas as pd

#: Columns of the package's frames that hold an evidence file's path.
PATH_COLUMNS = ("path", "source_file")
#: How a zip member's path names the archive it is in (``archive.zip::member``).
MEMBER = "::"


def _file(path: str) -> str:
    """Return the file on disk a path names (the outermost archive for a zip member)."""
    return path.split(MEMBER, 1)[0]


def evidence_root(paths: Iterable[object]) -> str | None:
    """Return the deepest folder that holds every file in ``paths`` (None: no paths)."""
    folders = {os.path.dirname(_file(str(p))) for p in paths if isinstance(p, str) and p}
    if not folders:
        return None
    try:
        return os.path.commonpath(sorted(folders)) if len(folders) > 1 else folders.pop()
    except ValueError:  # full and relative paths mixed: no one root
        return None


def relative_path(path: str, root: str | None) -> str:
    """Return ``path`` under ``root`` (as it is when it is not under ``root``)."""
    if not root:
        return path
    outer = PurePosixPath(_file(path))
    if not outer.is_relative_to(root):
        return path
    return os.path.relpath(_file(path), root) + path[len(_file(path)) :]


def relative_paths(
    frame: pd.DataFrame, root: str | None = None, columns: Sequence[str] = PATH_COLUMNS
) -> pd.DataFrame:
    """Return a copy of a frame with its evidence paths relative to the evidence root.

    Parameters
    ----------
    frame : pandas.DataFrame
        A manifest, records, a timeline, search results: whatever holds paths.
    root : str, optional
        The evidence root; by default the deepest folder holding every path in the
        frame (for ``case.manifest``: the case's evidence root).
    columns : sequence of str
        The columns that hold paths (those the frame has are changed).

    Returns
    -------
    pandas.DataFrame
        The same rows, paths relative to ``root``, which is kept in
        ``attrs["evidence_root"]`` (the full path of a file is ``root/path``).
    """
    present = [c for c in columns if c in frame.columns]
    if root is None:
        root = evidence_root(v for c in present for v in frame[c].dropna().unique())
    out = frame.copy()
    for name in present:
        column = out[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = column.cat.rename_categories(
                [relative_path(str(v), root) for v in column.cat.categories]
            )
            continue
        values = column.astype(object)
        shown = {v: relative_path(v, root) for v in values.dropna().unique() if isinstance(v, str)}
        out[name] = values.where(~values.isin(list(shown)), values.map(shown))
    out.attrs["evidence_root"] = root
    return out
