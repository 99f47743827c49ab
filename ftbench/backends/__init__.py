"""Training backends by name: the built-in `peft` and `llamafactory`, backends registered in code, and third-party ones found
through the `ftbench.backends` entry-point group (see docs/backends.md).

Listing backends imports only their modules (no torch); a backend that fails to import is listed with its error
rather than breaking `ftbench backends`.
"""

from __future__ import annotations

from ftbench.api.backends import DEFAULT_BACKEND, TrainerBackend
from ftbench.api.registry import Registry, RegistryEntry

ENTRY_POINT_GROUP = "ftbench.backends"

BACKENDS: Registry[type[TrainerBackend]] = Registry(
    "backend", base=TrainerBackend, entry_point_group=ENTRY_POINT_GROUP, listing="ftbench backends",
    builtins={"peft": "ftbench.backends.peft:PeftBackend",
              "llamafactory": "ftbench.backends.llamafactory:LlamaFactoryBackend"})


def register_backend(name: str, backend: type[TrainerBackend] | str, *, replace: bool = False) -> None:
    """Make a backend class (or a "module:Class" string, imported on first use) available under ``name``."""
    BACKENDS.register(name, backend, replace=replace)


def available_backends() -> list[RegistryEntry]:
    """Every backend that can be named, sorted by name (those that fail to load carry their error)."""
    return BACKENDS.entries()


def get_backend(name: str | None = None) -> TrainerBackend:
    """An instance of the backend called ``name`` (default: peft); UsageError naming the installed ones if unknown."""
    return BACKENDS.create(name or DEFAULT_BACKEND)
