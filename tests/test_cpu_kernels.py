"""MKL_CBWR=AVX2 on non-Intel x86 CPUs (`ftbench.cpu_kernels`): which CPUs get it, and that a user's own
setting wins. test_train_and_compare checks that the CLI sets it for a real run; the speed it buys is measured
in benchmarks/bench_llamafactory.py (docs/performance.md)."""

from __future__ import annotations

from ftbench.cpu_kernels import MKL_SETTING, mkl_branch, use_avx2_mkl

AMD = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2

processor\t: 1
vendor_id\t: AuthenticAMD
flags\t\t: fpu vme sse sse2
"""


def test_which_cpus_get_the_avx2_branch():
    assert mkl_branch(AMD) == "AVX2"
    assert mkl_branch(AMD.replace("AuthenticAMD", "HygonGenuine")) == "AVX2"
    assert mkl_branch(AMD.replace("AuthenticAMD", "GenuineIntel")) is None  # MKL picks Intel's best itself
    assert mkl_branch(AMD.replace(" avx2", "")) is None  # no AVX2: the branch would not run
    assert mkl_branch(AMD.replace(" fma", "")) is None
    assert mkl_branch("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n") is None  # arm64: no MKL
    assert mkl_branch("") is None


def test_set_once_and_a_users_own_setting_kept(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(AMD)
    environ: dict[str, str] = {}
    assert use_avx2_mkl(environ, str(cpuinfo)) == "AVX2" and environ == {MKL_SETTING: "AVX2"}
    mine = {MKL_SETTING: "COMPATIBLE"}
    assert use_avx2_mkl(mine, str(cpuinfo)) == "COMPATIBLE" and mine == {MKL_SETTING: "COMPATIBLE"}
    cpuinfo.write_text(AMD.replace("AuthenticAMD", "GenuineIntel"))
    untouched: dict[str, str] = {}
    assert use_avx2_mkl(untouched, str(cpuinfo)) is None and untouched == {}
    assert use_avx2_mkl({}, str(tmp_path / "absent")) is None  # no procfs: MKL chooses
