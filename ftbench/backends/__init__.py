"""Training backends by name: the built-in `peft` and `llamafactory`, backends registered in code, and third-party
ones found through the `ftbench.backends` entry-point group (see docs/backends.md).

Listing backends imports only their modules (no torch); a backend that fails to import is listed with its error
rather than breaking `ftbench backends`.
"""

from __future__ import annotations

import os

from ftbench.api.backends import DEFAULT_BACKEND, TrainerBackend
from ftbench.api.registry import Registry, RegistryEntry

ENTRY_POINT_GROUP = "ftbench.backends"

BACKENDS: Registry[type[TrainerBackend]] = Registry(
    "backend",
    base=TrainerBackend,
    entry_point_group=ENTRY_POINT_GROUP,
    listing="ftbench backends",
    builtins={
        "peft": "ftbench.backends.peft:PeftBackend",
        "llamafactory": "ftbench.backends.llamafactory:LlamaFactoryBackend",
    },
)


def register_backend(name: str, backend: type[TrainerBackend] | str, *, replace: bool = False) -> None:
    """Make a backend class (or a "module:Class" string, imported on first use) available under ``name``."""
    BACKENDS.register(name, backend, replace=replace)


def available_backends() -> list[RegistryEntry]:
    """Every backend that can be named, sorted by name (those that fail to load carry their error)."""
    return BACKENDS.entries()


def get_backend(name: str | None = None) -> TrainerBackend:
    """An instance of the backend called ``name`` (default: peft); UsageError naming the installed ones if unknown."""
    return BACKENDS.create(name or DEFAULT_BACKEND)


def _loadable_backends() -> list[type[TrainerBackend]]:
    """Every backend class that loads (a broken plug-in is skipped here; `ftbench backends` lists its error)."""
    return [BACKENDS.load(e.name) for e in BACKENDS.entries() if e.error is None]


def backend_of_run(output_dir: str) -> type[TrainerBackend] | None:
    """The backend that made a finished output folder, known by the ``config_file`` it declares; a folder holding
    none (a trainer ran alone) belongs to the backend that ``reads_unmarked_runs``; None if no backend does."""
    backends = _loadable_backends()
    for backend in backends:
        if backend.config_file and os.path.isfile(os.path.join(output_dir, backend.config_file)):
            return backend
    return next((b for b in backends if b.reads_unmarked_runs), None)


def run_config_file(output_dir: str) -> str | None:
    """The config a finished run was trained with, as the backend that made it recorded it (None if none did)."""
    backend = backend_of_run(output_dir)
    path = os.path.join(output_dir, backend.config_file) if backend and backend.config_file else None
    return path if path and os.path.isfile(path) else None
