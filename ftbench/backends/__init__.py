"""Training backends by name: the built-in `peft`, backends registered in code, and third-party ones found
through the `ftbench.backends` entry-point group (see docs/backends.md).

Listing backends imports only their modules (no torch); a backend that fails to import is listed with its error
rather than breaking `ftbench backends`.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from importlib import metadata

from ftbench.api.backends import DEFAULT_BACKEND, TrainerBackend
from ftbench.api.errors import UsageError

ENTRY_POINT_GROUP = "ftbench.backends"

# built into ftbench (also declared as entry points in pyproject.toml; code registration makes them work
# before a reinstall)
BUILTIN: dict[str, str] = {"peft": "ftbench.backends.peft:PeftBackend"}

_registered: dict[str, type[TrainerBackend] | str] = {}


@dataclass
class BackendInfo:
    """One installed backend as `ftbench backends` lists it."""

    name: str
    source: str  # "built-in", "registered in code", or "entry point (package X)"
    target: str  # module:Class
    description: str = ""
    error: str | None = None  # why it cannot be loaded, if it cannot

    def to_json(self) -> dict:
        return asdict(self)


def register_backend(name: str, backend: type[TrainerBackend] | str, *, replace: bool = False) -> None:
    """Make a backend class (or a "module:Class" string, imported on first use) available under ``name``."""
    if not replace and (name in _registered or name in BUILTIN):
        raise ValueError(f"a backend named {name!r} is already registered")
    _registered[name] = backend


def _entry_points() -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def _targets() -> dict[str, tuple[type[TrainerBackend] | str, str]]:
    """name -> (class or "module:Class", source); code registrations win over entry points over built-ins."""
    found: dict[str, tuple[type[TrainerBackend] | str, str]] = {n: (t, "built-in") for n, t in BUILTIN.items()}
    for ep in _entry_points():
        if BUILTIN.get(ep.name) == ep.value:
            continue  # our own entry point
        package = ep.dist.name if getattr(ep, "dist", None) is not None else "unknown package"
        found[ep.name] = (ep.value, f"entry point (package {package})")
    for name, target in _registered.items():
        found[name] = (target, "registered in code")
    return found


def _load(name: str, target: type[TrainerBackend] | str) -> type[TrainerBackend]:
    if not isinstance(target, str):
        cls = target
    else:
        module, _, attr = target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        cls = obj
    if not (isinstance(cls, type) and issubclass(cls, TrainerBackend)):
        raise TypeError(f"{target} is not a TrainerBackend subclass")
    return cls


def available_backends() -> list[BackendInfo]:
    """Every backend that can be named, sorted by name (those that fail to load carry their error)."""
    infos = []
    for name, (target, source) in sorted(_targets().items()):
        text = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
        try:
            cls = _load(name, target)
            infos.append(BackendInfo(name, source, text, cls.description or (cls.__doc__ or "").strip().split("\n")[0]))
        except Exception as e:  # a broken third-party backend must not break the listing
            infos.append(BackendInfo(name, source, text, error=f"{type(e).__name__}: {e}"))
    return infos


def get_backend(name: str | None = None) -> TrainerBackend:
    """An instance of the backend called ``name`` (default: peft); UsageError naming the installed ones if unknown."""
    name = name or DEFAULT_BACKEND
    targets = _targets()
    if name not in targets:
        raise UsageError(f"unknown backend '{name}'; installed: {', '.join(sorted(targets))} "
                         "(see `ftbench backends`)")
    target, source = targets[name]
    try:
        cls = _load(name, target)
    except Exception as e:
        raise UsageError(f"backend '{name}' ({source}, {target}) cannot be loaded: {type(e).__name__}: {e}") from e
    return cls()
