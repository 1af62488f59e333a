"""Large gzip JSON-lines files, read piece by piece (one SLS download of a whole day).

A single file of a million records would otherwise be decompressed whole, then split
whole, before its first record is extracted: one core busy, the other idle, and the
whole content in memory. :class:`LinePieces` inflates it with ISA-L in pieces of
about :data:`PIECE_BYTES`, each cut after its last line break, and splits each piece
into records numbered by their line in the file. The loader extracts one piece while
the next one is inflated on the other core, and memory follows the piece, not the
file.

The pieces are those of :class:`~kmsforensics.evidence.Inflated`, the careful
reader that a whole file goes through when it is damaged: a truncated, corrupt or
mis-summed stream gives the same records and the same note, read whole or in pieces.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..evidence import Inflated
from ..issues import IssueLog
from .lines import split_json_lines
from .records import Split

#: Decompressed bytes read at a time.
PIECE_BYTES = 64 * 1024 * 1024
#: Compressed files at least this large are read in pieces.
STREAM_MIN_BYTES = 16 * 1024 * 1024


class LinePieces:
    r"""The records of a gzip JSON-lines file, piece by piece.

    Iterating yields ``(split, size, issues)`` per piece: the records
    (``source_record`` is the line in the whole file), the decompressed bytes the
    piece held and the issues found in it (a log of its own, so that pieces can be
    split on another thread). After the
    last piece, :attr:`decompressed` is the whole content's size and :attr:`damage`
    says what a damaged stream lost (``None`` for a sound one).

    Examples
    --------
    >>> import gzip
    >>> raw = gzip.compress(b'{"a": 1}\n\n{"a": 2}\r\n{"a": 3}')
    >>> pieces = LinePieces(raw, "x.json.gz", 10**6, piece_bytes=9)
    >>> [split.records.column("source_record").to_pylist() for split, _, _ in pieces]
    [[1, 3], [4]]
    >>> pieces.decompressed, pieces.damage
    (28, None)
    """

    def __init__(
        self,
        raw: bytes,
        name: str,
        max_bytes: int,
        strict: bool = False,
        piece_bytes: int | None = None,
    ) -> None:
        self.raw = raw
        self.name = name
        self.max_bytes = max_bytes
        self.strict = strict
        self.piece_bytes = piece_bytes or PIECE_BYTES
        self.decompressed = 0
        self.damage: str | None = None

    def __iter__(self) -> Iterator[tuple[Split, int, IssueLog]]:
        line = 1
        carry = b""
        for chunk in self._inflated():
            data = carry + chunk
            cut = data.rfind(b"\n") + 1  # a piece ends after a line break
            if not cut:
                carry = data
                continue
            piece, carry = data[:cut], data[cut:]
            split = self._split(piece, line)
            yield split
            line += split[0].breaks  # the piece ends after a line break
        if carry:
            yield self._split(carry, line)

    def _split(self, piece: bytes, line: int) -> tuple[Split, int, IssueLog]:
        issues = IssueLog(self.strict)
        return split_json_lines(piece, self.name, issues, first_line=line), len(piece), issues

    def _inflated(self) -> Iterator[bytes]:
        """Yield the decompressed content in pieces of about ``piece_bytes``."""
        inflated = Inflated(self.raw, self.max_bytes, self.name)
        gathered: list[bytes] = []
        size = 0
        for chunk in inflated:
            gathered.append(chunk)
            size += len(chunk)
            if size >= self.piece_bytes:
                yield b"".join(gathered)
                self.decompressed += size
                gathered, size = [], 0
        if gathered:
            yield b"".join(gathered)
            self.decompressed += size
        self.damage = inflated.damage
