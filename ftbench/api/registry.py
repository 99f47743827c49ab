"""Named plug-ins: one `Registry` per kind of thing ftbench lets you choose by name (training backends, metrics,
scorers, commands). A name maps to a class, or to a ``"module:attr"`` string imported only when that name is used,
so listing what exists stays cheap (`ftbench --help` imports no command, `ftbench backends` no torch).

Names come from three places, later ones winning: the built-ins a registry is created with, installed packages'
entry points in the registry's group (as datasette and lm-eval discover plug-ins), and `register()` calls in code.
An unknown name is a `UsageError` that lists the known ones, with a "did you mean" when one is close.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Callable, Generic, TypeVar

from ftbench.api.errors import UsageError

T = TypeVar("T")

BUILT_IN = "built-in"
IN_CODE = "registered in code"


@dataclass
class RegistryEntry:
    """One name as `ftbench backends` (and friends) list it: where it comes from and whether it loads."""

    name: str
    source: str  # "built-in", "registered in code", or "entry point (package X)"
    target: str  # "module:attr"
    description: str = ""
    error: str | None = None  # why it cannot be loaded, if it cannot

    def to_json(self) -> dict:
        return asdict(self)


def import_target(target: str) -> Any:
    """The object a ``"module:attr.sub"`` string names."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def target_text(target: Any) -> str:
    """ "module:attr" for a string, a class or function; "module:<Class name>" for another registered object."""
    if isinstance(target, str):
        return target
    if hasattr(target, "__qualname__"):
        return f"{target.__module__}:{target.__qualname__}"
    return f"{type(target).__module__}:<{type(target).__name__} {getattr(target, 'name', '')}>"


class Registry(Generic[T]):
    """name -> class (or any object) of one kind, from built-ins, entry points and code registration.

    ``base``: loaded objects must be subclasses of it. ``describe(obj)`` gives the one-line description
    listings show (default: the class's ``description`` attribute, else its docstring's first line).
    """

    def __init__(
        self,
        kind: str,
        *,
        base: type | None = None,
        entry_point_group: str | None = None,
        builtins: dict[str, Any] | None = None,
        listing: str | None = None,
        describe: Callable[[Any], str] | None = None,
    ):
        self.kind = kind
        self.base = base
        self.entry_point_group = entry_point_group
        self.builtins: dict[str, Any] = dict(builtins or {})
        self.listing = listing  # the command that lists them, named in "unknown name" errors
        self._describe = describe or _default_description
        self._code: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}

    # --- registration -----------------------------------------------------------------------------------
    def register(self, name: str, target: Any = None, *, replace: bool = False):
        """Make ``target`` (a class, or a ``"module:attr"`` string) available as ``name``; without ``target``,
        a class decorator. A name already taken is refused unless ``replace``."""
        if target is None:

            def decorator(obj):
                self.register(name, obj, replace=replace)
                return obj

            return decorator
        if not replace and (name in self._code or name in self.builtins):
            raise ValueError(f"a {self.kind} named {name!r} is already registered")
        self._code[name] = target
        self._loaded.pop(name, None)
        return target

    def _entry_points(self) -> list[metadata.EntryPoint]:
        if not self.entry_point_group:
            return []
        return list(metadata.entry_points(group=self.entry_point_group))

    def targets(self) -> dict[str, tuple[Any, str]]:
        """name -> (target, source); code registrations win over entry points, entry points over built-ins."""
        found: dict[str, tuple[Any, str]] = {n: (t, BUILT_IN) for n, t in self.builtins.items()}
        for ep in self._entry_points():
            if self.builtins.get(ep.name) == ep.value:
                continue  # ftbench's own entry point for a built-in
            package = ep.dist.name if getattr(ep, "dist", None) is not None else "unknown package"
            found[ep.name] = (ep.value, f"entry point (package {package})")
        for name, target in self._code.items():
            found[name] = (target, IN_CODE)
        return found

    # --- lookup -----------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self.targets())

    def __contains__(self, name: str) -> bool:
        return name in self.targets()

    def __iter__(self):
        return iter(self.names())

    def load(self, name: str) -> T:
        """The class (or object) registered as ``name``; UsageError naming the known ones if there is none."""
        targets = self.targets()
        if name not in targets:
            raise UsageError(self.unknown(name, targets))
        target, source = targets[name]
        cached = self._loaded.get(name)
        if cached is not None and cached[0] is target:
            return cached[1]
        try:
            obj = self._import(target)
        except Exception as e:
            raise UsageError(
                f"{self.kind} '{name}' ({source}, {target_text(target)}) cannot be loaded: {type(e).__name__}: {e}"
            ) from e
        self._loaded[name] = (target, obj)
        return obj

    def create(self, name: str, *args, **kwargs) -> Any:
        """An instance of the class registered as ``name``."""
        return self.load(name)(*args, **kwargs)

    def unknown(self, name: str, targets: dict | None = None) -> str:
        """The "unknown name" message: what is known, and what the name was probably meant to be."""
        known = sorted(targets if targets is not None else self.targets())
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        text = f"unknown {self.kind} '{name}'"
        if close:
            text += f" (did you mean '{close[0]}'?)"
        text += f"; installed: {', '.join(known)}" if self.entry_point_group else f"; choose from: {', '.join(known)}"
        return text + (f" (see `{self.listing}`)" if self.listing else "")

    def entries(self) -> list[RegistryEntry]:
        """Every name, sorted, with its source and description; one that fails to load carries its error
        instead (a broken plug-in must not break a listing)."""
        out = []
        for name, (target, source) in sorted(self.targets().items()):
            try:
                obj = self._import(target)
                out.append(RegistryEntry(name, source, target_text(target), self._describe(obj)))
            except Exception as e:
                out.append(RegistryEntry(name, source, target_text(target), error=f"{type(e).__name__}: {e}"))
        return out

    def _import(self, target: Any) -> Any:
        obj = import_target(target) if isinstance(target, str) else target
        if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise TypeError(f"{target_text(target)} is not a {self.base.__name__} subclass")
        return obj


def _default_description(obj: Any) -> str:
    text = getattr(obj, "description", None) or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
    return text if isinstance(text, str) else ""
