"""Imported once by the render pool's fork server (``reports.render``): loads WeasyPrint and
lays out a scrap of Chinese text with a page-number box, so that fontconfig's font list, the
CJK font and Pango's shaping tables are loaded *before* the render processes are forked from
it. Each process then starts warm instead of spending a second or two on its first part."""
from weasyprint import HTML

HTML(string='<html style="font-family: \'Noto Sans CJK SC\', sans-serif"><style>@page '
            '{ @bottom-right { content: "第 " counter(page) " 页 / 共 " counter(pages) " 页" } }'
            '</style><body><table><thead><tr><th>表头</th></tr></thead><tbody><tr><td>'
            '审计报告 Audit 0123456789</td></tr></tbody></table></body></html>').write_pdf()
