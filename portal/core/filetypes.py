"""What a file is, judged by its bytes: never by its name or the type the browser sent.

``sniff`` knows the kinds the portal accepts as documents: images Pillow can open (PNG, JPEG,
GIF, WebP; Pillow is asked for these formats only, so no other decoder ever runs on an upload),
PDF (the ``%PDF-`` signature), Excel workbooks (a zip that starts like one and holds
``[Content_Types].xml`` and ``xl/workbook.xml``, without macros) and CSV (UTF-8 or GB18030
text with commas, no NUL or other control bytes, not markup). Anything else, an executable
renamed ``.pdf`` included, answers ``None``.

A zip (an XLSX workbook is one) is judged by its central directory before anything opens it
further: ``zip_problem`` names what makes it too much to unpack (a zip bomb), and every upload
that takes a zip-based file calls it (``sniff`` does, for evidence; the ticket import does
before openpyxl reads a workbook). Nothing is ever decompressed to check. ``is_archive`` tells
a plain archive (zip, rar, 7z, tar, gzip...) by its signature, so that its refusal can say why.
"""
from __future__ import annotations

import codecs
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from flask import current_app
from flask_babel import gettext as _
from PIL import Image

from portal.core.errors import ServiceError
from portal.core.uploads import FORMATS as IMAGE_FORMATS

CHUNK = 1 << 20
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")  # tab, newlines and form feed are text


@dataclass(frozen=True)
class FileType:
    content_type: str
    kind: str                      # "image", "pdf" or "spreadsheet"
    extensions: tuple[str, ...]    # the first is the one to give a file that has none of them


_IMAGES = {"image/png": (".png",), "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
           "image/gif": (".gif",), "image/webp": (".webp",)}
PDF = FileType("application/pdf", "pdf", (".pdf",))
WORKBOOK = FileType(XLSX, "spreadsheet", (".xlsx",))


def sniff(f: BinaryIO) -> FileType | None:
    """The type of the seekable binary file ``f`` (read from the start), or ``None``.
    Raises ``UnsafeArchive`` for a zip that ``zip_problem`` finds too much to unpack."""
    f.seek(0)
    head = f.read(8)
    f.seek(0)
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        check_zip(f)
        return WORKBOOK if _is_workbook(f) else None
    return _image(f) or _csv(f)


def _is_workbook(f: BinaryIO) -> bool:
    try:
        with zipfile.ZipFile(f) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    macros = any(n.lower().endswith("vbaproject.bin") for n in names)
    return {"[Content_Types].xml", "xl/workbook.xml"} <= names and not macros


# --- archives -----------------------------------------------------------------------------
# What a zip may declare before the portal (or openpyxl) opens it: a real workbook or document
# expands to a few MB, its parts compressed 5 to 30 to 1, in a few dozen parts. The total it
# may expand to is the setting UPLOAD_MAX_EXPANDED_BYTES (100 MB).

MAX_MEMBERS = 10_000
MAX_RATIO = 100                # uncompressed to compressed, for a part larger than RATIO_FLOOR
RATIO_FLOOR = 1_000_000        # a smaller part may be compressed as much as it likes
# Parsing a central directory takes about 600 bytes of memory per entry, and ``ZipFile`` reads
# all of it, however many entries the end record admits to: a directory larger than MAX_MEMBERS
# entries with long names would make is refused from the end record alone, unparsed.
DIRECTORY_MAX_BYTES = 4_000_000
# The only compressions a member may use. zipfile never gives more of a stored or deflated
# member than its declared size: it cuts the output there, and the CRC then fails ("Bad
# CRC-32") unless it was forged to match the cut; so checking the declared sizes bounds what
# unpacking can produce. A bzip2 or LZMA member is decompressed a whole read at a time,
# whatever it declares (a 370-byte bzip2 member of 300 MB of zeros that declared 1 KB took
# 600 MB of memory on its first 64 KB read): Office files never use them, so they are refused.
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# A part that is itself an archive (including an Office file embedded in another).
NESTED = (".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz", ".zst",
          ".lz", ".lzma", ".z", ".cab", ".jar", ".apk", ".iso", ".xlsx", ".xlsm", ".xlsb",
          ".docx", ".docm", ".pptx", ".pptm", ".odt", ".ods", ".odp")
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")   # and empty, spanned
_ARCHIVE_SIGNATURES = _ZIP_SIGNATURES + (
    b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c", b"\x1f\x8b", b"\x1f\x9d",    # rar, 7z, gzip, compress
    b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"LZIP", b"MSCF")  # bzip2, xz, zstd, lzip, cab


class UnsafeArchive(ServiceError):
    """A zip refused by ``zip_problem``; ``problem`` is the code of why."""

    def __init__(self, problem: str, max_expanded: int | None = None):
        super().__init__(zip_problem_text(problem, max_expanded), "file")
        self.problem = problem


def check_zip(f: BinaryIO, max_expanded: int | None = None) -> None:
    """Raise ``UnsafeArchive`` if the zip ``f`` is too much to unpack."""
    problem = zip_problem(f, max_expanded)
    if problem:
        raise UnsafeArchive(problem, max_expanded)


def zip_problem(f: BinaryIO, max_expanded: int | None = None) -> str | None:
    """Why the zip ``f`` (a seekable binary file) may not be unpacked, judged from its central
    directory alone (``ZipInfo.file_size`` and ``compress_size``; nothing is decompressed):
    ``"members"`` (too many parts), ``"expanded"`` (more than UPLOAD_MAX_EXPANDED_BYTES in
    all), ``"ratio"`` (a part compressed beyond MAX_RATIO), ``"nested"`` (a part that is an
    archive) or ``"method"`` (a compression other than Deflate). ``None`` when nothing is
    wrong, or when ``f`` is not a readable zip (whoever opens it says so). ``f`` is left at
    its start. ``max_expanded`` replaces UPLOAD_MAX_EXPANDED_BYTES (a ticket import, read as a
    stream, may expand as far as a CSV import may be large: IMPORT_MAX_BYTES)."""
    try:
        return _zip_problem(f, max_expanded or current_app.config["UPLOAD_MAX_EXPANDED_BYTES"])
    finally:
        f.seek(0)


def _zip_problem(f: BinaryIO, max_expanded: int) -> str | None:
    try:
        members = _members(f)
    except _DirectoryTooLarge:
        return "members"
    if members is None:
        return None
    if len(members) > MAX_MEMBERS:
        return "members"
    if sum(m.file_size for m in members) > max_expanded:
        return "expanded"
    if any(m.file_size > RATIO_FLOOR and m.file_size > MAX_RATIO * m.compress_size
           for m in members):
        return "ratio"
    if any(m.filename.lower().endswith(NESTED) for m in members):
        return "nested"
    if any(m.compress_type not in ZIP_METHODS for m in members):
        return "method"
    return None


class _DirectoryTooLarge(Exception):
    pass


def _members(f: BinaryIO) -> list[zipfile.ZipInfo] | None:
    """The zip ``f``'s central directory (``None`` if ``f`` is no readable zip), unless it is
    larger than DIRECTORY_MAX_BYTES: then ``_DirectoryTooLarge``, before it is parsed."""
    try:
        # zipfile's own (private) reading of the end record, so that the size measured is
        # exactly that of the directory ``ZipFile`` then reads and parses whole
        end = zipfile._EndRecData(f)
        if end is None:
            return None
        if end[zipfile._ECD_SIZE] > DIRECTORY_MAX_BYTES:
            raise _DirectoryTooLarge
        with zipfile.ZipFile(f) as zf:
            return zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None


def zip_problem_text(problem: str, max_expanded: int | None = None) -> str:
    """What to tell the user about a ``zip_problem``."""
    if problem == "expanded":
        limit = max_expanded or current_app.config["UPLOAD_MAX_EXPANDED_BYTES"]
        return _("The file expands to more than %(mb)s MB when opened (an XLSX file is "
                 "compressed, like a zip archive), so it is refused. Split it into smaller "
                 "files.", mb=f"{limit / 1e6:g}")
    return {
        "members": _("The file holds more than %(n)s parts inside (an XLSX file is a zip "
                     "archive of parts), so it is refused.", n=f"{MAX_MEMBERS:,}"),
        "ratio": _("A part of the file is compressed more than %(n)s to 1, which no real "
                   "document is: it is refused as a zip bomb.", n=MAX_RATIO),
        "nested": _("The file holds another archive inside (a zip, rar, 7z… or an embedded "
                    "Office file), so it is refused. Upload the files one by one instead."),
        "method": _("The file is compressed in a way Office files never are (only Deflate is "
                    "accepted), so it is refused."),
    }.get(problem, problem)


def is_archive(f: BinaryIO) -> bool:
    """Whether ``f`` is an archive or compressed file (zip, rar, 7z, tar, gzip, bzip2, xz,
    zstd, lzip, cab, compress), judged by its signature; an Office or OpenDocument file is a
    zip too, but not an archive of files. Tells the reason of a refusal, never accepts."""
    f.seek(0)
    head = f.read(262)
    try:
        if head.startswith(_ZIP_SIGNATURES):
            try:
                names = {m.filename for m in _members(f) or ()}
            except _DirectoryTooLarge:
                return True
            return not names & {"[Content_Types].xml", "mimetype"}
        return head.startswith(_ARCHIVE_SIGNATURES) or head[257:262] == b"ustar"
    finally:
        f.seek(0)


def _image(f: BinaryIO) -> FileType | None:
    try:
        with Image.open(f, formats=list(IMAGE_FORMATS)) as img:
            fmt = img.format
            img.verify()
    except (Image.UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError, EOFError):
        return None
    finally:
        f.seek(0)
    content_type = IMAGE_FORMATS.get(fmt)
    return FileType(content_type, "image", _IMAGES[content_type]) if content_type else None


def _csv(f: BinaryIO) -> FileType | None:
    for encoding in ("utf-8", "gb18030"):   # GB18030: CSV as Excel saves it on Chinese Windows
        f.seek(0)
        verdict = _text_with_commas(f, encoding)
        if verdict is not None:
            f.seek(0)
            if not verdict:
                return None
            return FileType(f"text/csv; charset={encoding}", "spreadsheet", (".csv",))
    f.seek(0)
    return None


def _text_with_commas(f: BinaryIO, encoding: str) -> bool | None:
    """True: text with a comma; False: never CSV (NUL or control bytes, markup, or no comma);
    None: not text in ``encoding``."""
    decoder = codecs.getincrementaldecoder(encoding)()
    comma, start = False, ""
    try:
        while chunk := f.read(CHUNK):
            if b"\0" in chunk:
                return False
            text = decoder.decode(chunk)
            if _CONTROL.search(text):
                return False
            comma = comma or "," in text
            start = start or text.lstrip("\ufeff \t\r\n")[:1]
            if start == "<":   # markup (HTML, SVG, XML), whatever commas it has
                return False
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return comma


def safe_filename(name: str | None, default: str = "file", limit: int = 200) -> str:
    """The last part of a name a browser sent, fit to show: no folders, no control or
    direction-changing characters (which can make ``exe.pdf`` read as ``fdp.exe``), at most
    ``limit`` characters, keeping the extension."""
    name = re.split(r"[/\\]", name or "")[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = " ".join(name.split()).strip(" .") or default
    if len(name) > limit:
        _stem, dot, ext = name.rpartition(".")
        ext = dot + ext if dot and len(ext) <= 10 else ""
        name = name[:limit - len(ext)].rstrip(" .") + ext
    return name


def download_name(filename: str, filetype_extensions: tuple[str, ...]) -> str:
    """``filename`` with an extension that matches what the file is, so that the computer it is
    saved on opens it with the right program (``photo.exe`` holding a PNG: ``photo.exe.png``)."""
    if not filetype_extensions or filename.lower().endswith(filetype_extensions):
        return filename
    return filename + filetype_extensions[0]


def extensions_of(content_type: str) -> tuple[str, ...]:
    """The extensions a file of ``content_type`` (as ``sniff`` answered it) may carry."""
    base = content_type.split(";", 1)[0].strip()
    if base in _IMAGES:
        return _IMAGES[base]
    return {PDF.content_type: PDF.extensions, XLSX: WORKBOOK.extensions,
            "text/csv": (".csv",)}.get(base, ())
