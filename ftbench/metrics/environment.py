"""Facts about the running environment that signatures and worker counts need (nothing is imported)."""

from __future__ import annotations

import os
from importlib import metadata


def package_version(name: str) -> str:
    """Installed version of a distribution, or "missing" (read from its metadata, not imported)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
