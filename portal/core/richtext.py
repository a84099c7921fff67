"""Rich text the portal's authors write (lessons): Markdown in, safe HTML out.

markdown-it-py (CommonMark, with tables) turns headings, lists, emphasis, links and images into
HTML and escapes any raw HTML typed in; nh3 (the Rust ``ammonia`` sanitiser) then keeps only
the tags and attributes listed here, as a second wall. Images may only come from the portal's
own uploads (``/files/...``): a lesson can never make a reader's browser fetch another site.
"""
from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}) \
    .enable("table").enable("strikethrough")

TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "ul", "ol", "li", "strong", "em",
        "s", "del", "code", "pre", "blockquote", "a", "img", "table", "thead", "tbody", "tr",
        "th", "td"}
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"},
              "th": {"style"}, "td": {"style"}}


def _filter(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src" and not value.startswith("/files/"):
        return None  # only the portal's own uploads
    if attr == "style" and value not in ("text-align:left", "text-align:center",
                                         "text-align:right"):
        return None
    return value


def render(text: str) -> Markup:
    html = _md.render(text or "")
    clean = nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, attribute_filter=_filter,
                      url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer")
    return Markup(clean)  # nosec B704  # sanitised just above by nh3's whitelist
