"""Progress lines and warnings on stderr, printed by the main process only (rank 0 under torchrun/accelerate).

`configure(quiet=True)` (what `--quiet` and `--json` do) silences both: only errors are printed then.
"""

from __future__ import annotations

import os
import sys

_settings = {"quiet": False}


def configure(*, quiet: bool) -> bool:
    """Set quiet mode; returns the previous setting (so an in-process caller can restore it)."""
    previous, _settings["quiet"] = _settings["quiet"], quiet
    return previous


def is_main_process() -> bool:
    """Rank 0 of a torchrun/accelerate launch, or the only process."""
    return os.environ.get("RANK", "0") == "0"


def say(message: str, quiet: bool = False) -> None:
    """A progress line on stderr, from rank 0 only."""
    if not (quiet or _settings["quiet"]) and is_main_process():
        print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """`ftbench: warning: ...` on stderr, from rank 0 only."""
    if not _settings["quiet"] and is_main_process():
        print(f"ftbench: warning: {message}", file=sys.stderr, flush=True)
