r"""Find evidence files, read them safely, and fingerprint them.

Sources are files, folders (walked recursively) and globs. Compressed files are
recognised by their content, not their name: gzip (single or multi-member) and
zip archives, whose members become evidence files of their own
(``archive.zip::member``). Nothing is ever written next to the evidence: members
are read in memory, so a member name cannot escape the archive; members whose
names try to (absolute paths, ``..``) are listed but not read.

Every read is bounded by ``max_bytes`` of decompressed content and raises
:class:`~kmsforensics.errors.DecompressionLimitError` beyond it, instead of
filling memory.

Only regular files are ever opened. Named pipes (a FIFO would block the load
forever), sockets, devices, dangling symbolic links and symbolic-link loops are
listed with the reason they are not read, and so are zip archives that cannot be
opened (corrupt, or nested deeper than :data:`MAX_ARCHIVE_DEPTH`) and members that
cannot be read (encrypted, unsupported compression). Members are opened by their
entry in the archive, so two members with the same name are both read.

Examples
--------
>>> import gzip, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.json.gz").write_bytes(gzip.compress(b'{"a": 1}\n'))
>>> [f.display for f in discover([folder])] == [str(folder / "a.json.gz")]
True
>>> discover([folder])[0].read(max_bytes=1024).data
b'{"a": 1}\n'
"""

from __future__ import annotations

import errno
import glob
import hashlib
import io
import os
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import cast

import isal.igzip as igzip
import isal.isal_zlib as izlib

from .errors import DecompressionLimitError, EvidenceNotFoundError, UnreadableEvidenceError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
ZIP_EMPTY_MAGIC = b"PK\x05\x06"
#: Default bound on the decompressed size of one evidence file (8 GiB).
DEFAULT_MAX_BYTES = 8 * 1024**3
#: How deep zip archives inside zip archives are opened (the outermost is level 1);
#: an archive deeper than this is listed, with this reason, and not opened.
MAX_ARCHIVE_DEPTH = 3
#: What reading a damaged or unusual zip member can raise (turned into a reason).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    RuntimeError,
    NotImplementedError,
    EOFError,
    OSError,
    ValueError,
    zlib.error,
)
_CHUNK = 16 * 1024 * 1024
#: The most a deflate stream can expand (bytes out per byte in).
DEFLATE_MAX_RATIO = 1032
#: Compressed bytes fed to the inflater at a time (damage loses at most this much input).
_SLICE = 64 * 1024
_INFLATE_ERROR = cast("type[Exception]", izlib.error)
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class EvidenceFile:
    """One evidence file: a file on disk or a member of a zip archive.

    Attributes
    ----------
    display : str
        The name used in the manifest, in issues and in ``source_file``.
    path : Path
        The file on disk (the outermost archive for members).
    members : tuple of str
        Zip member names from the outermost archive inwards; empty for a plain file.
    problem : str or None
        Why the file must not be read (an unsafe member name, a FIFO...), if so.
    entries : tuple of int
        The members' positions in their archives (entries, not names, are opened).
    regular : bool
        False for what is not a regular file (FIFO, socket, device, broken link):
        such a file is never opened, not even to be fingerprinted.
    """

    display: str
    path: Path
    members: tuple[str, ...] = ()
    problem: str | None = None
    entries: tuple[int, ...] = ()
    regular: bool = True

    @property
    def on_disk(self) -> bool:
        """True when the file is a regular file on disk (not an archive member)."""
        return not self.members and self.regular

    def raw_bytes(self, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        """Return the bytes of the file as stored (members decompressed by zip only).

        Raises :class:`~kmsforensics.errors.UnreadableEvidenceError` for a file that
        is not a regular file, and for a member that cannot be read.
        """
        if not self.regular:
            raise UnreadableEvidenceError(self.display, self.problem or "not a regular file")
        if not self.members:
            if self.path.stat().st_size > max_bytes:
                raise DecompressionLimitError(self.display, max_bytes)
            return self.path.read_bytes()
        source: Path | io.BytesIO = self.path
        data = b""
        for entry in self.entries:
            try:
                data = _read_zip_member(source, entry, self.display, max_bytes)
            except DecompressionLimitError:
                raise
            except _ZIP_ERRORS as exc:
                raise UnreadableEvidenceError(self.display, _zip_reason(exc)) from exc
            source = io.BytesIO(data)
        return data

    def read(self, max_bytes: int = DEFAULT_MAX_BYTES) -> Content:
        """Read, fingerprint and decompress the file, bounded by ``max_bytes``."""
        raw = self.raw_bytes(max_bytes)
        digest = hashlib.sha256(raw).hexdigest()
        if raw[:2] == GZIP_MAGIC:
            data, problem = gunzip(raw, max_bytes, self.display)
            return Content(data, digest, len(raw), "gzip", problem)
        if len(raw) > max_bytes:
            raise DecompressionLimitError(self.display, max_bytes)
        return Content(raw, digest, len(raw), "none", None)


@dataclass
class Content:
    """The decompressed content of an evidence file, with its fingerprint.

    Attributes
    ----------
    data : bytes
        Decompressed content (what the readers parse).
    sha256 : str
        SHA-256 of the file as stored (the compressed bytes for a ``.gz``).
    size : int
        Size of the file as stored, in bytes.
    compression : str
        ``"gzip"`` or ``"none"``.
    problem : str or None
        Why decompression stopped early (truncated or corrupt stream); the data
        read up to that point is kept.
    """

    data: bytes
    sha256: str
    size: int
    compression: str
    problem: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def gunzip(raw: bytes, max_bytes: int, name: str) -> tuple[bytes, str | None]:
    """Decompress gzip data: in one call when it cannot exceed the bound and is sound.

    Anything else (a file that could expand past ``max_bytes``, or a damaged one)
    goes through :func:`gunzip_careful`, which enforces the bound and keeps the data
    before any damage.
    """
    if len(raw) * DEFLATE_MAX_RATIO <= max_bytes:
        try:
            return igzip.decompress(raw), None
        except (OSError, EOFError, ValueError, _INFLATE_ERROR):
            pass
    return gunzip_careful(raw, max_bytes, name)


def gunzip_careful(raw: bytes, max_bytes: int, name: str) -> tuple[bytes, str | None]:
    """Decompress every gzip member of ``raw``, bounded by ``max_bytes``.

    Each member's header is read here and its deflate data inflated in small input
    slices, so a truncated or corrupt stream keeps everything decompressed before
    the damage; a checksum mismatch keeps the data and says so. The reason for any
    damage is the second item. (:class:`Inflated` gives the same content in pieces.)

    Examples
    --------
    >>> import gzip
    >>> gunzip(gzip.compress(b"a") + gzip.compress(b"b"), 10, "x.gz")
    (b'ab', None)
    >>> gunzip_careful(gzip.compress(b"abc" * 100)[:20], 1000, "x.gz")[1].split("; ")[1]
    'the 300 decompressed bytes before the cut were read, the rest is lost'
    >>> gunzip_careful(gzip.compress(b"abc") + b"junk", 1000, "x.gz")[1].split("; ")[1]
    'everything before them was read (3 decompressed bytes)'
    """
    inflated = Inflated(raw, max_bytes, name)
    data = b"".join(inflated)
    return data, inflated.damage


class Inflated:
    """The decompressed content of every gzip member of ``raw``, chunk by chunk.

    Iterating yields the chunks :func:`gunzip_careful` joins (ISA-L, bounded by
    ``max_bytes``); afterwards :attr:`damage` says what a damaged stream lost
    (``None`` for a sound one).

    Examples
    --------
    >>> import gzip
    >>> inflated = Inflated(gzip.compress(b"abc")[:-3], 100, "x.gz")
    >>> b"".join(inflated), inflated.damage.split(";")[0]
    (b'abc', 'truncated gzip stream: the file ends before the compressed data does')
    """

    def __init__(self, raw: bytes, max_bytes: int, name: str) -> None:
        self.raw = raw
        self.max_bytes = max_bytes
        self.name = name
        self.damage: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        raw, max_bytes, name = self.raw, self.max_bytes, self.name
        total = 0
        pos = 0
        while pos < len(raw):
            start = _gzip_header_end(raw, pos)
            if start is None:
                if not raw[pos:].strip(b"\x00"):
                    break
                what = (
                    "a damaged gzip header" if raw[pos : pos + 2] == GZIP_MAGIC else "trailing data"
                )
                self.damage = (
                    f"{len(raw) - pos:,} bytes of {what} after the gzip stream, ignored; "
                    f"everything before them was read ({total:,} decompressed bytes)"
                )
                return
            decomp = izlib.decompressobj(wbits=-15)
            crc = 0
            size = 0
            cursor = start
            while not decomp.eof:
                if cursor >= len(raw):
                    self.damage = _truncated(total)
                    return
                pending: bytes = raw[cursor : cursor + _SLICE]
                cursor += len(pending)
                try:
                    while pending:
                        chunk = decomp.decompress(pending, _CHUNK)
                        total += len(chunk)
                        if total > max_bytes:
                            raise DecompressionLimitError(name, max_bytes)
                        crc = izlib.crc32(chunk, crc)
                        size += len(chunk)
                        yield chunk
                        if decomp.eof:
                            break
                        pending = decomp.unconsumed_tail
                except _INFLATE_ERROR as exc:
                    self.damage = (
                        f"corrupt gzip data after {total:,} decompressed bytes ({exc}); "
                        "what came before was read, the rest of the file cannot be"
                    )
                    return
            trailer_at = cursor - len(decomp.unused_data)
            trailer = raw[trailer_at : trailer_at + 8]
            if len(trailer) < 8:
                self.damage = _truncated(total)
                return
            if (
                int.from_bytes(trailer[:4], "little") != crc
                or int.from_bytes(trailer[4:], "little") != size & 0xFFFFFFFF
            ):
                self.damage = (
                    "gzip checksum mismatch: the content is damaged; all of it was read, "
                    "but some bytes may be wrong"
                )
                return
            pos = trailer_at + 8


def _truncated(total: int) -> str:
    return (
        "truncated gzip stream: the file ends before the compressed data does; the "
        f"{total:,} decompressed bytes before the cut were read, the rest is lost"
    )


def _gzip_header_end(raw: bytes, pos: int) -> int | None:
    """Return where a gzip member's deflate data starts, or ``None`` if no header is there."""
    if raw[pos : pos + 2] != GZIP_MAGIC or len(raw) < pos + 10 or raw[pos + 2] != 8:
        return None
    flags = raw[pos + 3]
    cursor = pos + 10
    if flags & 4:  # FEXTRA
        if len(raw) < cursor + 2:
            return None
        cursor += 2 + int.from_bytes(raw[cursor : cursor + 2], "little")
    for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & bit:
            end = raw.find(b"\x00", cursor)
            if end < 0:
                return None
            cursor = end + 1
    if flags & 2:  # FHCRC
        cursor += 2
    return cursor if cursor <= len(raw) else None


def inflate_head(raw: bytes, size: int) -> bytes:
    """Return up to ``size`` decompressed bytes from the start of gzip data (never raises)."""
    decomp = izlib.decompressobj(wbits=31)
    try:
        return bytes(decomp.decompress(raw[: 4 * size], size))
    except _INFLATE_ERROR:
        return b""


def peek(ef: EvidenceFile, size: int = 65536) -> bytes:
    """Return up to ``size`` decompressed bytes from the start of a file on disk."""
    with open(ef.path, "rb") as fh:
        head = fh.read(size)
        if head[:2] != GZIP_MAGIC:
            return head
        decomp = izlib.decompressobj(wbits=31)
        out = b""
        data = head
        while len(out) < size and data:
            try:
                out += decomp.decompress(data, size - len(out))
            except _INFLATE_ERROR:
                break
            if decomp.eof:
                break
            data = decomp.unconsumed_tail or fh.read(size)
        return out


def sha256_file(path: Path) -> str:
    """Return the SHA-256 of a file on disk, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def discover(sources: Iterable[str | os.PathLike[str]]) -> list[EvidenceFile]:
    """Expand files, folders and globs into evidence files, zip members included.

    Folders are walked recursively in sorted order; a source that matches nothing
    raises :class:`~kmsforensics.errors.EvidenceNotFoundError`. A file reached twice
    through overlapping sources is listed once.
    """
    seen: set[Path] = set()
    found: list[EvidenceFile] = []
    for source in sources:
        for path in _expand(source):
            problem = special_file_reason(path)
            if problem is not None:
                found.append(EvidenceFile(str(path), path, problem=problem, regular=False))
                continue
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            found.append(EvidenceFile(str(path), path))
    expanded: list[EvidenceFile] = []
    for ef in found:
        if not is_zip(ef):
            expanded.append(ef)
            continue
        try:
            members = zip_members(ef)
        except _ZIP_ERRORS as exc:
            expanded.append(
                _with_problem(ef, f"zip archive that cannot be opened: {_zip_reason(exc)}")
            )
            continue
        expanded.append(ef)
        expanded.extend(members)
    return expanded


def special_file_reason(path: Path) -> str | None:
    """Return why ``path`` is not a regular file that can be read, or ``None``.

    Nothing is opened: the answer comes from the file's metadata only.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "loop").symlink_to(folder / "loop")
    >>> special_file_reason(folder / "loop")
    'symbolic link loop: not read'
    >>> os.mkfifo(folder / "pipe")
    >>> special_file_reason(folder / "pipe")
    'named pipe (FIFO): not read, as opening it could block the load'
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop: not read"
        if os.path.islink(path):
            return f"dangling symbolic link (to {os.readlink(path)!r}): not read"
        return f"cannot be examined ({exc.strerror or exc}): not read"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO): not read, as opening it could block the load"
    if stat.S_ISSOCK(mode):
        return "socket: not read"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file: not read"
    if stat.S_ISDIR(mode):
        return "symbolic link to a folder: not followed (load that folder itself)"
    return "not a regular file: not read"


def is_zip(ef: EvidenceFile) -> bool:
    """Tell whether a regular file on disk is a zip archive (by its first bytes)."""
    if not ef.on_disk or ef.problem is not None:
        return False
    with open(ef.path, "rb") as fh:
        return fh.read(4) in (ZIP_MAGIC, ZIP_EMPTY_MAGIC)


def zip_members(archive: EvidenceFile, depth: int = 1) -> list[EvidenceFile]:
    """List the members of a zip archive as evidence files (nested archives opened).

    Members are listed by entry: two entries with the same name are both listed,
    the second as ``name [entry N]``. An encrypted member, or a nested archive past
    :data:`MAX_ARCHIVE_DEPTH` or that cannot be opened, is listed with the reason.
    """
    source: Path | io.BytesIO = archive.path if archive.on_disk else io.BytesIO(archive.raw_bytes())
    members: list[EvidenceFile] = []
    with zipfile.ZipFile(source) as zf:
        infos = zf.infolist()
        names = [info.filename for info in infos]
        for index, info in enumerate(infos):
            if info.is_dir():
                continue
            display = f"{archive.display}::{info.filename}"
            if names.index(info.filename) != index:
                display += f" [entry {index + 1}]"
            member = EvidenceFile(
                display,
                archive.path,
                (*archive.members, info.filename),
                unsafe_member_reason(info.filename) or _member_reason(info),
                (*archive.entries, index),
            )
            inner: list[EvidenceFile] = []
            if member.problem is None:
                member, inner = _open_nested(zf, info, member, depth)
            members.append(member)
            members.extend(inner)
    return members


def _open_nested(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, member: EvidenceFile, depth: int
) -> tuple[EvidenceFile, list[EvidenceFile]]:
    """Open a member that is itself a zip archive: the member, and what is in it."""
    try:
        with zf.open(info) as fh:
            nested = fh.read(4) in (ZIP_MAGIC, ZIP_EMPTY_MAGIC)
    except _ZIP_ERRORS as exc:
        return _with_problem(member, f"zip member that cannot be read: {_zip_reason(exc)}"), []
    if not nested:
        return member, []
    if depth >= MAX_ARCHIVE_DEPTH:
        return _with_problem(
            member,
            f"zip archive nested {depth + 1} levels deep: not opened, so nothing in it "
            f"is read (archives are opened {MAX_ARCHIVE_DEPTH} levels deep; extract it "
            "and load it on its own)",
        ), []
    try:
        return member, zip_members(member, depth + 1)
    except _ZIP_ERRORS as exc:
        return _with_problem(member, f"zip archive that cannot be opened: {_zip_reason(exc)}"), []
    except UnreadableEvidenceError as exc:
        return _with_problem(member, exc.reason), []


def _member_reason(info: zipfile.ZipInfo) -> str | None:
    if info.flag_bits & 0x1:
        return "encrypted zip member: it needs a password, so it is not read"
    return None


def _with_problem(ef: EvidenceFile, problem: str) -> EvidenceFile:
    return EvidenceFile(ef.display, ef.path, ef.members, problem, ef.entries, ef.regular)


def _zip_reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def unsafe_member_reason(name: str) -> str | None:
    """Return why a zip member name is unsafe (escapes the archive), or ``None``.

    Examples
    --------
    >>> unsafe_member_reason("logs/a.json") is None
    True
    >>> unsafe_member_reason("../../etc/passwd")
    "unsafe member name '../../etc/passwd': it points outside the archive (path traversal)"
    """
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (len(name) > 1 and name[1] == ":"):
        return f"unsafe member name {name!r}: it points outside the archive (path traversal)"
    return None


def _read_zip_member(archive: Path | io.BytesIO, entry: int, display: str, max_bytes: int) -> bytes:
    with zipfile.ZipFile(archive) as zf, zf.open(zf.infolist()[entry]) as fh:
        parts: list[bytes] = []
        total = 0
        while chunk := fh.read(_CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise DecompressionLimitError(display, max_bytes)
            parts.append(chunk)
        return b"".join(parts)


def _expand(source: str | os.PathLike[str]) -> list[Path]:
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return _walk(path)
    if os.path.lexists(path):  # a file, or something to list as not read
        return [path]
    if _GLOB_CHARS & set(text):
        matches = sorted(glob.glob(str(path), recursive=True))
        files: list[Path] = []
        for match in matches:
            m = Path(match)
            files.extend(_walk(m) if m.is_dir() else [m])
        if files:
            return files
    raise EvidenceNotFoundError(text)


def _walk(folder: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        links = [d for d in dirs if os.path.islink(os.path.join(root, d))]  # not followed
        files.extend(Path(root) / name for name in sorted(names + links))
    return files
