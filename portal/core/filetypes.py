"""What a file is, judged by its bytes: never by its name or the type the browser sent.

``sniff`` knows the kinds the portal accepts as documents: images Pillow can open (PNG, JPEG,
GIF, WebP; Pillow is asked for these formats only, so no other decoder ever runs on an upload),
PDF (the ``%PDF-`` signature), Excel workbooks (a zip that starts like one and holds
``[Content_Types].xml`` and ``xl/workbook.xml``, without macros) and CSV (UTF-8 or GB18030
text with commas, no NUL or other control bytes, not markup). Anything else, an executable
renamed ``.pdf`` included, answers ``None``.
"""
from __future__ import annotations

import codecs
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

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
    """The type of the seekable binary file ``f`` (read from the start), or ``None``."""
    f.seek(0)
    head = f.read(8)
    f.seek(0)
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
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
