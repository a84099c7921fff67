"""HTML to PDF with WeasyPrint, fetching nothing but the portal's own static files.

Chinese text needs a CJK font on the machine (Debian: fonts-noto-cjk, installed by the set-up
script); the stylesheets name it on ``html`` so that page-margin boxes use it too. Relative
URLs in a report resolve inside ``portal/static``; anything else (http, other files) is refused,
so a report that carries user text can never make the server fetch a URL.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app
from weasyprint import HTML
from weasyprint.urls import URLFetcher, path2url


class StaticOnlyFetcher(URLFetcher):
    def __init__(self, static_root: Path):
        super().__init__(allowed_protocols={"file", "data"}, fail_on_errors=False)
        self.static_root = static_root.resolve()

    def fetch(self, url, headers=None):
        parts = urlsplit(url)
        if parts.scheme == "file":
            path = Path(unquote(parts.path)).resolve()
            if self.static_root not in path.parents:
                raise ValueError(f"refused to fetch {url!r} while rendering a PDF")
        elif parts.scheme != "data":
            raise ValueError(f"refused to fetch {url!r} while rendering a PDF")
        return super().fetch(url, headers)


def render_pdf(html: str) -> bytes:
    static_root = Path(current_app.static_folder)
    doc = HTML(string=html, base_url=path2url(str(static_root.resolve())) + "/",
               url_fetcher=StaticOnlyFetcher(static_root))
    return doc.write_pdf()
