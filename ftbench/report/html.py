"""Building self-contained HTML pages: every piece of data escaped, inline CSS only, no network requests."""

from __future__ import annotations

import html

BASE_CSS = """
:root { --fg:#1d232b; --muted:#5b6673; --line:#dde2e8; --bg:#fff; --err:#b3261e; --warn:#9a6700; --ok:#1a7f37; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif;
       color: var(--fg); background: var(--bg); margin: 0 auto; padding: 24px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); }
.muted { color: var(--muted); } .err { color: var(--err); } .warn { color: var(--warn); } .ok { color: var(--ok); }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.pill { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; border: 1px solid currentColor; }
.text { white-space: pre-wrap; word-break: break-word; }
"""


def esc(value) -> str:
    """Escape any value for HTML text or a quoted attribute (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, css: str = "", script: str = "") -> str:
    """A complete page. The CSP forbids every network request, so a page can never phone home even if a
    payload slipped past escaping."""
    csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
    js = f"<script>{script}</script>" if script else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{BASE_CSS}{css}</style></head>"
            f"<body>{body}{js}</body></html>\n")
