"""Long PDFs rendered in parallel, with one continuous "page X of Y".

WeasyPrint lays a document out on one core, and its time grows with the pages (FIELD-NOTES:
~0.1-0.2 s a table page). A long report is therefore cut into *parts* and each part is laid
out in its own process; the part PDFs are joined with pypdf.

How the cut keeps the document the same:

- A report template marks where it may be cut with ``PART_MARK`` (an HTML comment between two
  blocks of ``<body>``), and every marked block starts on a new page in print
  (``.part { break-before: page }``). Parts therefore never share a page, and rendering the
  whole HTML at once (``render_single``) paginates exactly as rendering the parts does.
  How the blocks are grouped into parts only changes the speed, never the document.
- Every part is rendered with the document's own ``<head>`` (same page size, margins, running
  head and footer text), except for the page number, which a part cannot know: its
  ``@bottom-right`` box is switched off.
- Once every part's page count is known, a light overlay of blank pages carrying only the
  page-number box (the same ``@page`` rule, so the same font and place, with the total written
  in) is laid out, in one chunk a process each starting at its own page number, and stamped on
  the joined pages: "第 N 页 / 共 M 页" is continuous over the whole document.
- The parts are cut at the block boundaries that give each process the same share of the
  layout work, estimated from the text and the tags (``balanced_parts``), so that the processes finish together.

The processes come from a ``forkserver`` pool whose server has already laid out a scrap of
Chinese (``reports.pdf_warmup``): a clean, single-threaded parent, safe to use from the
portal's background threads, whose children start with WeasyPrint and the fonts loaded. A
process lays a part out with the cyclic garbage collector paused (see ``render_part``), which
is where most of the gain beyond the second core comes from. Each task reports the peak RSS
of its process (``resource.getrusage``), so the benchmark and the job records show that a
render stays under ``MEMORY_LIMIT_MB``.

The cost: every part starts on a new page, so a long table cut into parts leaves the last
page of each part partly empty (the templates cut tables every ``jobs.CHUNK_ROWS`` rows); and
each part embeds its own subset of the font, so the file is somewhat larger.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
import re
import resource
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from io import BytesIO
from itertools import pairwise
from pathlib import Path

PART_MARK = "<!-- pdf:part -->"
MEMORY_LIMIT_MB = 600

# The body is cut into PARTS_PER_WORKER parts of equal layout work a process (each part costs
# about 0.06 s of its own: a document's style, fonts and PDF; two a process keep the progress
# bar moving), none much under PART_MIN_WEIGHT (a few pages of table) and, for long reports,
# more parts (a multiple of the processes), none over PART_MAX_WEIGHT (about 40 pages of
# table: a process laying out ~100 pages at once peaks near 400 MB). Weights: layout_weight.
PARTS_PER_WORKER = 2
PART_MIN_WEIGHT = 16_000
PART_MAX_WEIGHT = 80_000
PART_MIN_BYTES = 40_000   # for ``group_blocks`` (explicit part sizes, tests)

_NO_PAGE_NUMBER = "@page { @bottom-right { content: none !important; } }"
_ONLY_PAGE_NUMBER = ("@page { @top-left { content: none !important; } "
                     "@top-right { content: none !important; } "
                     "@bottom-left { content: none !important; } "
                     "@top-center { content: none !important; } "
                     "@bottom-center { content: none !important; } }"
                     " .blank-page { break-after: page; } .blank-page:last-child "
                     "{ break-after: auto; }")

# Fixed document metadata: two renders of the same HTML give the same bytes.
_METADATA = {"/Producer": "Service Standards Portal", "/Creator": "Service Standards Portal"}


@dataclass
class RenderStats:
    pages: int = 0
    parts: int = 0
    workers: int = 0
    seconds: float = 0.0
    part_pages: list[int] = field(default_factory=list)
    peak_rss_mb: float = 0.0      # the largest peak RSS of any process that rendered a part

    def as_dict(self) -> dict:
        return {"pages": self.pages, "parts": self.parts, "workers": self.workers,
                "seconds": round(self.seconds, 3), "part_pages": self.part_pages,
                "peak_rss_mb": round(self.peak_rss_mb, 1)}


# --- cutting --------------------------------------------------------------------------------

def split_document(html: str) -> tuple[str, list[str], str]:
    """``(prefix, blocks, suffix)``: everything up to and including ``<body ...>``, the body's
    blocks between ``PART_MARK``s, and ``</body></html>``."""
    start = html.find("<body")
    if start < 0:
        raise ValueError("a report needs a <body>")
    open_end = html.index(">", start) + 1
    end = html.rfind("</body>")
    if end < 0:
        end = len(html)
    return html[:open_end], html[open_end:end].split(PART_MARK), html[end:]


def group_blocks(blocks: list[str], target: int = PART_MIN_BYTES) -> list[str]:
    """Adjacent blocks joined into parts of about ``target`` bytes (never cut inside one)."""
    parts, current, size = [], [], 0
    for block in blocks:
        if current and size + len(block) > target:
            parts.append("".join(current))
            current, size = [], 0
        current.append(block)
        size += len(block)
    if current:
        parts.append("".join(current))
    return parts


def part_count(blocks: list[str], workers: int) -> int:
    """How many parts to cut ``blocks`` into for ``workers`` processes (see PARTS_PER_WORKER)."""
    total = sum(layout_weight(b) for b in blocks)
    if total < 2 * PART_MIN_WEIGHT:
        return 1
    count = max(PARTS_PER_WORKER * workers, -(-total // PART_MAX_WEIGHT))
    count = -(-count // workers) * workers                     # a multiple of the processes
    return max(1, min(count, total // PART_MIN_WEIGHT))


_TAG = re.compile(r"<[^>]*>")


def layout_weight(block: str) -> int:
    """About how long WeasyPrint takes to lay a block out, in units of a character of text:
    each character of text, plus three for every tag (a table cell costs about as much as
    three characters in it). Fitted on the audit report here: its ruling appendix (long
    rationales, few cells) and its violation tables (many short cells) take the same 0.28 s
    for 11.5 and 13.1 KB of HTML, which their sizes in bytes do not foresee."""
    text = " ".join(_TAG.sub(" ", block).split())
    return len(text) + 3 * block.count("<")


def balanced_parts(blocks: list[str], count: int, weight=layout_weight) -> list[str]:
    """Adjacent blocks joined into at most ``count`` parts of about equal ``weight``: each cut
    is made at the block boundary nearest to an equal share, so that processes given the same
    number of parts finish together (seven parts on two processes leave one process idle for
    a whole part at the end)."""
    weights = [weight(b) for b in blocks]
    total = sum(weights) or 1
    ends, running = [], 0            # ends[i]: weight up to and including block i
    for w in weights:
        running += w
        ends.append(running)
    cuts, last = [], 0                # a cut before block ``i``
    for k in range(1, count):
        goal = total * k / count
        best = min(range(last + 1, len(blocks)), key=lambda i: abs(ends[i - 1] - goal),
                   default=None)
        if best is None:
            break
        cuts.append(best)
        last = best
    bounds = [0, *cuts, len(blocks)]
    return ["".join(blocks[a:b]) for a, b in pairwise(bounds) if b > a]


# --- one process's work ---------------------------------------------------------------------

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _render(html: str, static_root: str, extra_css: str) -> tuple[bytes, int, float]:
    from weasyprint import CSS, HTML
    from weasyprint.urls import path2url

    from portal.core.pdf import StaticOnlyFetcher

    root = Path(static_root)
    doc = HTML(string=html, base_url=path2url(str(root.resolve())) + "/",
               url_fetcher=StaticOnlyFetcher(root))
    sheets = [CSS(string=extra_css)] if extra_css else None
    rendered = doc.render(stylesheets=sheets)
    return rendered.write_pdf(), len(rendered.pages), _peak_rss_mb()


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


# A process collects the garbage of its earlier parts before a new one when it holds more than
# this (the collection otherwise runs between reports, see ``collect_garbage``).
COLLECT_ABOVE_MB = 320


def render_part(html: str, static_root: str, extra_css: str = _NO_PAGE_NUMBER):
    """Run in a pool process: one part's PDF, its page count and the process's peak RSS.

    The cyclic garbage collector is paused while the part is laid out: WeasyPrint makes
    millions of small objects, and the collector's full passes over them took about a third
    of the time (10.3 s against 6.4 s for 100 table pages here) while freeing almost nothing
    until the render is over. The part's garbage is collected afterwards, once the report's
    parts are done (``collect_garbage``, run while the parent joins the parts: a collection
    takes ~0.08 s a part, which would otherwise hold up the report), or before the next part
    if the process already holds more than ``COLLECT_ABOVE_MB``."""
    enabled = gc.isenabled()
    if _rss_mb() > COLLECT_ABOVE_MB:
        gc.collect()
    gc.disable()
    try:
        return _render(html, static_root, extra_css)
    finally:
        if enabled:
            gc.enable()   # little is allocated between tasks: no pass runs until the next part


def collect_garbage() -> float:
    """Run in a pool process once a report's parts are done: frees what they left, returns
    the process's RSS afterwards."""
    gc.collect()
    return _rss_mb()


# --- the pool -------------------------------------------------------------------------------

_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def worker_count() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != workers:
            if _pool is not None:
                _pool.shutdown(wait=True)
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["portal.reports.pdf_warmup", "portal.core.pdf"])
            _pool, _pool_size = ProcessPoolExecutor(max_workers=workers, mp_context=ctx), workers
        return _pool


def shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None


# --- the whole document ---------------------------------------------------------------------

def _overlay_chunks(prefix: str, suffix: str, total: int, chunks: int) -> list[tuple[str, str]]:
    """The page-number overlay of ``total`` pages as ``chunks`` documents of blank pages, each
    with its first page number (``@page :first { counter-reset }``) and the total written
    in, so that the chunks are laid out at the same time in different processes."""
    numbered = prefix.replace("counter(pages)", f'"{total}"')
    size = -(-total // chunks)
    docs = []
    for start in range(1, total + 1, size):
        count = min(size, total + 1 - start)
        blanks = '<div class="blank-page"></div>' * count
        css = _ONLY_PAGE_NUMBER + f" @page :first {{ counter-reset: page {start}; }}"
        docs.append((numbered + blanks + suffix, css))
    return docs


def _stamp_page_numbers(parts: list[bytes], prefix: str, suffix: str, static_root: str,
                        pool=None, workers: int = 1):
    """Join the parts and stamp every page with its number out of the total (the overlay is
    laid out in the pool, one chunk a process, when there is one; else here)."""
    from pypdf import PdfReader, PdfWriter

    readers = [PdfReader(BytesIO(p)) for p in parts]
    total = sum(len(r.pages) for r in readers)
    chunks = _overlay_chunks(prefix, suffix, total, workers if pool else 1)
    if pool:
        futures = [pool.submit(render_part, doc, static_root, css) for doc, css in chunks]
        rendered = [f.result() for f in futures]
    else:
        rendered = [_render(doc, static_root, css) for doc, css in chunks]
    if pool:   # the processes clean up while the pages are joined and stamped here
        for _ in range(workers):
            pool.submit(collect_garbage)
    overlay_pages = [page for pdf, _n, _rss in rendered for page in PdfReader(BytesIO(pdf)).pages]
    if len(overlay_pages) != total:
        raise RuntimeError(f"page-number overlay has {len(overlay_pages)} pages, not {total}")
    writer = PdfWriter()
    for reader in readers:
        writer.append(reader, import_outline=True)
    for page, numbers in zip(writer.pages, overlay_pages, strict=True):
        page.merge_page(numbers)
    return writer, total


def _write(writer, title: str, ident: bytes) -> bytes:
    import hashlib

    from pypdf.generic import ArrayObject, ByteStringObject

    writer.add_metadata({**_METADATA, "/Title": title})
    digest = ByteStringObject(hashlib.md5(ident, usedforsecurity=False).digest())
    writer._ID = ArrayObject([digest, digest])  # a stable file id instead of a random one
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def render_parallel(html: str, static_root: str | Path, *, workers: int | None = None,
                    title: str = "", target: int | None = None,
                    progress=None) -> tuple[bytes, RenderStats]:
    """The PDF of ``html`` (a document marked with ``PART_MARK``), parts rendered in
    ``workers`` processes. ``progress(done, total)`` is called as parts finish."""
    started = time.perf_counter()
    static_root = str(static_root)
    workers = workers or worker_count()
    prefix, blocks, suffix = split_document(html)
    if target is None:
        parts = balanced_parts(blocks, part_count(blocks, workers))
    else:
        parts = group_blocks(blocks, target)
    stats = RenderStats(parts=len(parts), workers=workers)
    docs = [prefix + part + suffix for part in parts]
    if len(docs) == 1:   # nothing to join: the template's own footer numbers the pages
        pdf, single = render_single(html, static_root)
        if progress:
            progress(1, 1)
        single.workers = 1
        return pdf, single
    pool = _get_pool(workers) if workers > 1 else None
    if pool is None:
        results = []
        for i, d in enumerate(docs):
            results.append(render_part(d, static_root))
            if progress:
                progress(i + 1, len(docs))
    else:
        # the longest parts first, so that the short ones fill in at the end
        order = sorted(range(len(docs)), key=lambda i: -len(docs[i]))
        futures = {i: pool.submit(render_part, docs[i], static_root) for i in order}
        for done, future in enumerate(as_completed(futures.values()), 1):
            future.result()
            if progress:
                progress(done, len(docs))
        results = [futures[i].result() for i in range(len(docs))]
    stats.part_pages = [pages for _pdf, pages, _rss in results]
    stats.peak_rss_mb = max(rss for _pdf, _pages, rss in results)
    writer, stats.pages = _stamp_page_numbers([pdf for pdf, _p, _r in results], prefix, suffix,
                                              static_root, pool, workers)
    pdf = _write(writer, title, html.encode("utf-8"))
    stats.seconds = time.perf_counter() - started
    return pdf, stats


def render_single(html: str, static_root: str | Path) -> tuple[bytes, RenderStats]:
    """The same document in one WeasyPrint pass (short reports, and the benchmark's
    baseline): the template's own footer numbers the pages."""
    started = time.perf_counter()
    pdf, pages, rss = _render(html, str(static_root), "")
    return pdf, RenderStats(pages=pages, parts=1, workers=1, part_pages=[pages],
                            peak_rss_mb=rss, seconds=time.perf_counter() - started)
