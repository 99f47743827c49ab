"""Declared schemas for the structures users hand us (training and train-and-compare settings, dataset_info.json
entries, prediction rows, metrics.json), checked with msgspec before anything uses them: types, ranges, finite
numbers, choices. A violation is one `SchemaError` naming the key, the value and what is allowed, in the words
training configs have always used: `lora_rank: must be > 0, got 0`, `learning_rate: expected a number, got
'fast'`, `eval_strategy: 'sometimes' is not one of no, steps, epoch`, `learning_rate: expected a finite number,
got nan`.

msgspec rather than pydantic: it imports in a third of the time (`ftbench validate` must start light) and its
errors carry the path of the bad value (`$.rows[3].prediction`), which becomes the finding's location. The
ranges are read back from the declaration itself, so a message always states the declared rule.
"""

from __future__ import annotations

import math
import re
import typing
from typing import Annotated, Any, Literal, Optional, TypeVar, Union

import msgspec

T = TypeVar("T")
_PATH = re.compile(r" - at `\$(.*)`$")
FLOAT_MAX = 1.7e308  # a bound every finite float meets: NaN and +-Infinity fail it


def number(
    *, ge: float | None = None, gt: float | None = None, le: float | None = None, lt: float | None = None
) -> Any:
    """A finite float within the given bounds (a float setting is never NaN or Infinity)."""
    low = {"gt": gt} if gt is not None else {"ge": -FLOAT_MAX if ge is None else ge}
    high = {"lt": lt} if lt is not None else {"le": FLOAT_MAX if le is None else le}
    return Annotated[float, msgspec.Meta(**low, **high)]


Finite = number()
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]  # what click's IntRange(1) allows for the same options
# Upper bounds where a huge value would hang or exhaust the machine rather than fail: no model reads or writes a
# million tokens (a cutoff or a generation length past that is a typo), and torch.set_num_threads(100_000)
# starts that many OpenMP threads and hangs. The same bounds are the options' click.IntRange.
MAX_TOKENS = 1_048_576
MAX_THREADS = 1024
Tokens = Annotated[int, msgspec.Meta(gt=0, le=MAX_TOKENS)]
Threads = Annotated[int, msgspec.Meta(gt=0, le=MAX_THREADS)]
MAX_SEEDS = 64  # training runs per setting (--seeds): each is a whole training
Seeds = Annotated[int, msgspec.Meta(gt=0, le=MAX_SEEDS)]


class MetricsFile(msgspec.Struct):
    """What `compare` reads from a train-and-compare metrics.json: figures are numbers (or null), signatures text.
    Other keys are kept by the caller and not checked."""

    after: dict[str, Optional[Finite]]
    before: Optional[dict[str, Optional[Finite]]] = None
    signatures: Optional[dict[str, Optional[str]]] = None


class SchemaError(ValueError):
    """A value that does not fit its schema: ``path`` (`threads`, `[3].prediction`), ``value`` and ``reason``
    (`must be > 0, got 0`)."""

    def __init__(self, path: str, value: Any, reason: str):
        self.path, self.value, self.reason = path.lstrip("."), value, reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


def check(data: Any, schema: Any, *, coerce: bool = False, name: str = "") -> Any:
    """``data`` converted to ``schema`` (a msgspec Struct or any type msgspec converts to); SchemaError at the
    first violation. ``coerce`` accepts numbers and true/false written as text ("8", "5e-5"), as YAML 1.1 and
    key=value overrides give them. ``name`` prefixes the error's path (the key a lone value was read from)."""
    try:
        return msgspec.convert(data, schema, strict=not coerce)
    except msgspec.ValidationError as e:
        message = str(e)
        match = _PATH.search(message)
        path = match.group(1) if match else ""
        message = message[: match.start()] if match else message
        if "[...]" in path:  # msgspec names no key inside a mapping: find the first value that fails
            path = _mapping_key(data, schema, path, coerce)
        field = re.match(r"Object (?:missing required|contains unknown) field `(.*)`$", message)
        if field:
            path += f".{field.group(1)}"
        value = _lookup(data, path)
        raise SchemaError(
            name + path if name else path, value, _reason(message, value, _type_at(schema, path))
        ) from None


def _reason(message: str, value: Any, declared: Any) -> str:
    """msgspec's "Expected `int` >= 1" in words, stated as declared: "must be > 0, got 0"."""
    shown = "null" if value is None else repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    if "missing required field" in message:
        return "required"
    if "contains unknown field" in message:
        return "unknown key"
    meta, choices = _declared(declared)
    if _non_finite(value) and message.startswith("Expected `float"):
        return f"expected a finite number, got {shown}"
    if message.startswith("Invalid enum value"):
        return f"{shown} is not one of {', '.join(map(str, choices))}" if choices else f"{shown} is not allowed"
    kind = re.match(r"Expected `([^`]*)`, got `", message)
    if kind:
        return f"expected {_words(kind.group(1))}, got {shown}"
    bound = re.match(r"Expected `[^`]*` ([<>]=? .*)$", message)
    if bound:
        return f"must be {_bounds(meta, bound.group(1)) or bound.group(1)}, got {shown}"
    return message[:1].lower() + message[1:]


def _non_finite(value: Any) -> bool:
    try:
        return isinstance(value, (float, str)) and not math.isfinite(float(value))
    except ValueError:
        return False


def _bounds(meta: msgspec.Meta | None, violated: str) -> str | None:
    """The declared bound a value broke (``violated``: msgspec's "<" or ">=" ...): `> 0`, `<= 1048576`; a
    fraction's whole interval, `in [0, 1)`. The +-FLOAT_MAX of `number` is never shown (the value is not finite)."""
    if meta is None:
        return None
    low = (
        f"[{meta.ge}" if meta.ge is not None and meta.ge != -FLOAT_MAX else f"({meta.gt}" if meta.gt is not None else ""
    )
    high = (
        f"{meta.le}]" if meta.le is not None and meta.le != FLOAT_MAX else f"{meta.lt})" if meta.lt is not None else ""
    )
    if low and high and (meta.le if meta.le is not None else meta.lt) <= 1:
        return f"in {low}, {high}"
    if violated.startswith(">") and low:
        return (">= " if low[0] == "[" else "> ") + low[1:]
    if violated.startswith("<") and high:
        return ("<= " if high[-1] == "]" else "< ") + high[:-1]
    return None


def _declared(declared: Any) -> tuple[msgspec.Meta | None, tuple]:
    """The Meta and the Literal choices of a declared type (through Optional and Annotated)."""
    meta, choices = None, ()
    for _ in range(4):
        origin = typing.get_origin(declared)
        if origin is Annotated:
            meta = next((m for m in declared.__metadata__ if isinstance(m, msgspec.Meta)), meta)
            declared = typing.get_args(declared)[0]
        elif origin is Union:
            members = [a for a in typing.get_args(declared) if a is not type(None)]
            if len(members) != 1:
                break
            declared = members[0]
        elif origin is Literal:
            choices = typing.get_args(declared)
            break
        else:
            break
    return meta, choices


def _type_at(schema: Any, path: str) -> Any:
    """The declared type of the value at a `.a.b[3]` path of ``schema`` (None where it cannot be followed)."""
    declared = schema
    for name, _ in re.findall(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]", path):
        declared = unwrap(declared)[0]
        if isinstance(declared, type) and issubclass(declared, msgspec.Struct):
            declared = typing.get_type_hints(declared, include_extras=True).get(name) if name else None
        elif typing.get_origin(declared) in (dict, list, tuple, set, frozenset):
            declared = typing.get_args(declared)[-1] if typing.get_args(declared) else None
        else:
            return None
    return declared


def unwrap(declared: Any) -> tuple[Any, bool, tuple]:
    """A declared type without Annotated and Optional around it, whether None is allowed, and its choices (the
    values of a Literal; () for other types)."""
    optional = False
    for _ in range(4):
        origin = typing.get_origin(declared)
        members = [a for a in typing.get_args(declared) if a is not type(None)]
        if origin is Annotated:
            declared = members[0]
        elif origin is Union and len(members) == 1:
            declared, optional = members[0], True
        else:
            break
    return declared, optional, typing.get_args(declared) if typing.get_origin(declared) is Literal else ()


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


def _words(kind: str) -> str:
    """msgspec's type names in words: `int | null` -> "an integer or null"."""
    words = {
        "int": "an integer",
        "float": "a number",
        "str": "a string",
        "bool": "true or false",
        "array": "a list",
        "object": "a mapping",
        "null": "null",
    }
    return " or ".join(words.get(part.strip(), part.strip()) for part in kind.split("|"))
