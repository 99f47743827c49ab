"""Where this process stands in a multi-process launch, and what it may print.

`rank`, `world_size` and `local_rank` read what `torchrun` / `accelerate launch` set (RANK, WORLD_SIZE,
LOCAL_RANK); a plain run is rank 0 of 1. Progress lines and warnings go to stderr from the main process only,
so a launch over N GPUs prints once. `configure(quiet=True)` (what `--quiet` and `--json` do) silences both:
only errors are printed then.
"""

from __future__ import annotations

import os
import sys

_settings = {"quiet": False}


def rank() -> int:
    """This process's global rank under torchrun/accelerate (0 when not launched by them)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """How many processes the launch has (1 when not launched by torchrun/accelerate)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """This process's rank on its machine: the GPU it owns."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Rank 0 of a torchrun/accelerate launch, or the only process."""
    return rank() == 0


def configure(*, quiet: bool) -> bool:
    """Set quiet mode; returns the previous setting (so an in-process caller can restore it)."""
    previous, _settings["quiet"] = _settings["quiet"], quiet
    return previous


def say(message: str, quiet: bool = False) -> None:
    """A progress line on stderr, from rank 0 only."""
    if not (quiet or _settings["quiet"]) and is_main_process():
        print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """`ftbench: warning: ...` on stderr, from rank 0 only."""
    if not _settings["quiet"] and is_main_process():
        print(f"ftbench: warning: {message}", file=sys.stderr, flush=True)
