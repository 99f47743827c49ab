"""The options every command shares (--json, --quiet, --debug) and the one way a command prints --json."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import click


@dataclass
class Settings:
    """The options every command shares; set on the group or on the command, whichever is given."""

    json: bool = False
    quiet: bool = False
    debug: bool = False


def settings(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings()
    return root.obj


def _set_flag(name: str):
    def callback(ctx: click.Context, _param, value: bool):
        if value:
            setattr(settings(ctx), name, True)
        return value

    return callback


def common_options(f):
    """Add --json, --quiet and --debug to a command (they may also be given before the command name)."""
    f = click.option("--debug", is_flag=True, expose_value=False, callback=_set_flag("debug"),
                     help="Show tracebacks and internal detail.")(f)
    f = click.option("--quiet", "-q", is_flag=True, expose_value=False, callback=_set_flag("quiet"),
                     help="Print only errors.")(f)
    f = click.option("--json", "json_", is_flag=True, expose_value=False, callback=_set_flag("json"),
                     help="Machine-readable output on stdout, and nothing else there.")(f)
    return f


def print_json(obj, *, redact: Callable[[str], str] | None = None) -> None:
    """--json output: one indented JSON document on stdout (numpy values allowed; other objects as str), and
    nothing else there. ``redact`` rewrites the text before it is printed (e.g. to mask a secret)."""
    import orjson

    data = orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY, default=str) + b"\n"
    if redact is not None:
        data = redact(data.decode("utf-8")).encode("utf-8")
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
