"""Files that come with a source checkout of ftbench (`pip install -e .`): the bundled `datasets/` (demo data,
the tiny model's tokenizer corpus) and the `tasks/` folder of evaluation task YAMLs."""

from __future__ import annotations

from pathlib import Path

from ftbench.api.errors import UsageError

SOURCE_ROOT = Path(__file__).resolve().parents[2]


def datasets_dir() -> Path:
    """The bundled `datasets/` folder."""
    here = SOURCE_ROOT / "datasets"
    if not here.is_dir():
        raise UsageError(
            f"the bundled datasets/ folder is missing ({here}): it comes with a source checkout of "
            "ftbench (git clone, then pip install -e .)"
        )
    return here


def tasks_dir() -> Path:
    """The bundled `tasks/` folder (it may be missing in a wheel install: callers look elsewhere too)."""
    return SOURCE_ROOT / "tasks"
