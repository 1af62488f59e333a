r"""A file larger than a batch, split into chunks of whole lines, so memory follows the batch.

``kf.load`` reads a file whole; a single JSON-lines file of several GB (an SLS download
of a KMS instance log is one) would need several times its size in memory. Ingest
therefore streams such a file (inflating gzip with ISA-L), writes chunks of whole lines
of about one batch each to a scratch folder, and parses them one at a time; each
chunk's rows get the file's name back and their line numbers in the whole file
(:func:`renumber`), so the store holds what ``kf.load`` of the whole file would give.

Only JSON-lines files are split (a line is a record); a file of another shape, or one
whose compressed stream is damaged, is parsed whole, as ``kf.load`` would.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> big = folder / "big.jsonl"
>>> _ = big.write_bytes(b"".join(b'{"request_id": "%d"}\n' % n for n in range(1000)))
>>> parts = split_lines(big, 5000, folder / "scratch")
>>> len(parts), parts[1].first_line, sum(p.lines for p in parts)
(3, 378, 1000)
>>> b"".join(p.path.read_bytes() for p in parts) == big.read_bytes()
True
"""

from __future__ import annotations

import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import isal.igzip as igzip
import pandas as pd

from ..formats import sniff

_GZIP_MAGIC = b"\x1f\x8b"
_BLOCK = 8 * 1024 * 1024


@dataclass
class Chunk:
    """One chunk of a split file: a plain file of whole lines."""

    path: Path
    first_line: int
    lines: int


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == _GZIP_MAGIC
    return igzip.open(path, "rb") if gzipped else open(path, "rb")


def estimate_size(path: Path) -> int:
    """Guess a file's decompressed size cheaply (a gzip file's trailer), to size batches.

    Examples
    --------
    >>> import gzip, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.gz"
    >>> _ = path.write_bytes(gzip.compress(b"x" * 100_000))
    >>> estimate_size(path)
    100000
    """
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
            size = fh.seek(0, 2)
            if magic != _GZIP_MAGIC or size < 18:
                return size
            fh.seek(-4, 2)
            return max(int.from_bytes(fh.read(4), "little"), size)
    except OSError:
        return 0


def split_lines(
    path: Path, limit: int, scratch: Path, column_map: dict[str, str] | None = None
) -> list[Chunk] | None:
    """Split a JSON-lines file (plain or gzip) into chunks of about ``limit`` bytes.

    Returns None, writing nothing, when the file is not JSON lines or cannot be
    streamed to its end (it is then parsed whole, which reports the damage).
    """
    try:
        with _open(path) as fh:
            head = fh.read(64 * 1024)
        if sniff(head, column_map).shape != "json-lines":
            return None
        scratch.mkdir(parents=True, exist_ok=True)
        return _split(path, limit, scratch)
    except (OSError, EOFError, zlib.error):
        shutil.rmtree(scratch, ignore_errors=True)
        return None


class _Writer:
    """Chunk files written one after another, counting the line ends in each."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.chunks: list[Chunk] = []
        self.out: IO[bytes] | None = None
        self.size = self.ends = 0
        self.line = 1
        self.last = b"\n"

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.out is None:
            path = self.scratch / f"part-{len(self.chunks) + 1:05d}.jsonl"
            self.chunks.append(Chunk(path, self.line, 0))
            self.out = open(path, "wb")  # noqa: SIM115 - closed by finish()
            self.size = self.ends = 0
        self.out.write(data)
        self.size += len(data)
        self.ends += data.count(b"\n")
        self.last = data[-1:]

    def finish(self) -> None:
        if self.out is None:
            return
        self.out.close()
        self.out = None
        self.chunks[-1].lines = self.ends + (self.last != b"\n")
        self.line += self.ends


def _split(path: Path, limit: int, scratch: Path) -> list[Chunk]:
    writer = _Writer(scratch)
    with _open(path) as fh:
        while block := fh.read(min(_BLOCK, max(limit // 4, 4096))):
            if writer.size + len(block) >= limit and (cut := block.rfind(b"\n")) >= 0:
                writer.write(block[: cut + 1])  # the chunk ends with a whole line
                writer.finish()
                block = block[cut + 1 :]
            writer.write(block)
    writer.finish()
    return writer.chunks


def renumber(frame: pd.DataFrame, name: str, offset: int) -> pd.DataFrame:
    """Give a chunk's rows (or issues) the whole file's name and line numbers."""
    if not len(frame) or "source_file" not in frame:
        return frame
    frame = frame.copy()
    names: pd.Series[Any] = pd.Series(name, index=frame.index, dtype=object)
    categorical = isinstance(frame["source_file"].dtype, pd.CategoricalDtype)
    frame["source_file"] = names.astype("category") if categorical else names
    if "source_record" in frame and offset:
        frame["source_record"] = frame["source_record"] + offset
    return frame
