"""MKL's AVX2 kernels on AMD (and other non-Intel x86) CPUs, which it otherwise withholds.

torch's x86 wheels do fp32 matrix products with Intel's MKL, and MKL chooses its kernels by CPU vendor: on an
AMD EPYC it runs a generic SSE path (`MKL_VERBOSE=1` names it "Intel(R) Architecture processors"). Its
conditional-numerical-reproducibility setting ``MKL_CBWR=AVX2`` makes it take its AVX2 kernels on any CPU that
has AVX2. On a 2-core EPYC (2026-12-07): SmolLM2-135M's linears at 16 rows 132 -> 86 ms, `ftbench predict` on 48
GSM8K problems 134.7 -> 112.4 s with byte-identical rows (docs/performance.md, "Fourth pass").

MKL reads the variable at its first call, so the CLI sets it before any command imports torch; child processes
(trainers, LLaMA-Factory) inherit it. A user's own ``MKL_CBWR`` is kept. Intel CPUs are left alone: MKL already
gives them their best path, and AVX2 would cap one with AVX-512. Linux only (``/proc/cpuinfo``); the AVX-512
branch on AMD CPUs that have it was not tried (no such machine here), so they get AVX2 too.
"""

from __future__ import annotations

import os

MKL_SETTING = "MKL_CBWR"
CPUINFO = "/proc/cpuinfo"
_READ_AT_MOST = 65536  # the first processor's block is a few KB; a 256-core machine's whole file is ~1 MB


def mkl_branch(cpuinfo: str) -> str | None:
    """``"AVX2"`` for a non-Intel x86 CPU with AVX2 and FMA, as ``/proc/cpuinfo``'s first block describes it;
    ``None`` otherwise (Intel, other architectures, or no AVX2)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor describes them all
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    vendor, flags = fields.get("vendor_id", ""), set(fields.get("flags", "").split())
    if not vendor or vendor == "GenuineIntel" or not {"avx2", "fma"} <= flags:
        return None
    return "AVX2"


def use_avx2_mkl(environ=None, cpuinfo_path: str = CPUINFO) -> str | None:
    """Set ``MKL_CBWR`` in ``environ`` (this process's environment by default) where `mkl_branch` asks for it
    and nothing set it before; return its value now (``None``: unset)."""
    environ = os.environ if environ is None else environ
    if MKL_SETTING not in environ:
        try:
            with open(cpuinfo_path, encoding="utf-8", errors="replace") as fh:
                branch = mkl_branch(fh.read(_READ_AT_MOST))
        except OSError:  # not Linux, or no procfs: leave MKL to choose
            branch = None
        if branch:
            environ[MKL_SETTING] = branch
    return environ.get(MKL_SETTING)
