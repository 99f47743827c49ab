"""Self-contained HTML pages from the Jinja2 templates in `templates/`: autoescaping on (every piece of data is
escaped), inline CSS and JS (no network request; the pages work from file://)."""

from __future__ import annotations

import json
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = None


def json_for_script(value) -> str:
    """JSON that is safe inside a <script> element: no `</script>`, no `<!--`, no HTML entities."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def number(value, places: int = 4) -> str:
    """A figure for a table cell: fixed decimals for floats, an en dash for a missing value."""
    if value is None:
        return "–"
    return f"{value:.{places}f}" if isinstance(value, float) else str(value)


def render(template: str, **context) -> str:
    """Render ``templates/<template>`` with ``context`` (autoescaped)."""
    global _ENV
    if _ENV is None:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined
        from markupsafe import Markup

        _ENV = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        _ENV.filters["num"] = number
        _ENV.filters["script_json"] = lambda value: Markup(json_for_script(value))
    return _ENV.get_template(template).render(**context)
