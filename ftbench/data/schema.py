"""Declared schemas for the structures users hand us (train-and-compare's settings, prediction rows,
metrics.json), checked with msgspec before anything uses them: types, ranges, finite numbers, choices. A
violation is one line naming the key, the value and what is allowed.

msgspec rather than pydantic: it imports in a third of the time (`ftbench validate` must start light) and its
errors carry the path of the bad value (`$.rows[3].prediction`), which becomes the finding's location.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Optional, TypeVar

import msgspec

T = TypeVar("T")
_PATH = re.compile(r" - at `\$(.*)`$")

Finite = Annotated[float, msgspec.Meta(ge=-1.7e308, le=1.7e308)]  # NaN and +-Infinity fail both bounds


class MetricsFile(msgspec.Struct):
    """What `compare` reads from a train-and-compare metrics.json: figures are numbers (or null), signatures text.
    Other keys are kept by the caller and not checked."""

    after: dict[str, Optional[Finite]]
    before: Optional[dict[str, Optional[Finite]]] = None
    signatures: Optional[dict[str, Optional[str]]] = None


class SchemaError(ValueError):
    """A value that does not fit its schema: ``path`` (`.threads`, `[3].prediction`), ``value``, ``allowed``."""

    def __init__(self, path: str, value: Any, allowed: str):
        self.path, self.value, self.allowed = path.lstrip("."), value, allowed
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        super().__init__(f"{self.path or 'the value'}: {shown} is not allowed: {allowed}")


def check(data: Any, schema: type[T], *, coerce: bool = False) -> T:
    """``data`` converted to ``schema`` (a msgspec Struct or type); SchemaError at the first violation.
    ``coerce`` accepts numbers written as text ("8"), as key=value overrides give them."""
    try:
        return msgspec.convert(data, schema, strict=not coerce)
    except msgspec.ValidationError as e:
        message = str(e)
        match = _PATH.search(message)
        path = match.group(1) if match else ""
        allowed = message[:match.start()] if match else message
        if "[...]" in path:  # msgspec names no key inside a mapping: find the first value that fails
            path = _mapping_key(data, schema, path, coerce)
        value = _lookup(data, path)
        if isinstance(value, float) and not math.isfinite(value):
            allowed = "expected a finite number"
        raise SchemaError(path, value, _explain(allowed)) from None


def _mapping_key(data: Any, schema: Any, path: str, coerce: bool) -> str:
    """`.after[...]` -> `.after.rouge-l`: try the mapping's entries one at a time (metrics files are small)."""
    prefix, _, rest = path.partition("[...]")
    container = _lookup(data, prefix)
    if not isinstance(container, dict):
        return path
    for key, value in container.items():
        try:
            msgspec.convert(_replace(data, prefix, {key: value}), schema, strict=not coerce)
        except msgspec.ValidationError:
            return f"{prefix}.{key}{rest}"
    return path


def _replace(data: Any, path: str, new: Any) -> Any:
    """A copy of ``data`` with the value at a `.a.b` path replaced (copies along the path only)."""
    names = re.findall(r"\.([^.\[]+)", path)
    if not names:
        return new
    head, tail = names[0], "".join("." + n for n in names[1:])
    return {**data, head: _replace(data[head], tail, new)}


def _lookup(data: Any, path: str) -> Any:
    """The value at a msgspec path such as `.rows[3].prediction` (best effort, for the message)."""
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path):
        try:
            data = data[name] if name else data[int(index)]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
    return data


def _explain(allowed: str) -> str:
    """msgspec's "Expected `int` >= 1" in words: "expected an integer >= 1"."""
    words = {"`int`": "an integer", "`float`": "a number", "`str`": "text", "`bool`": "true or false",
             "`array`": "a list", "`object`": "a mapping", "`null`": "null", "`int | null`": "an integer or null",
             "`float | null`": "a number or null", "`str | null`": "text or null"}
    for raw, word in words.items():
        allowed = allowed.replace(raw, word)
    return allowed[:1].lower() + allowed[1:]
