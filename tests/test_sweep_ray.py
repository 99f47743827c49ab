"""`ftbench sweep --ray ADDRESS` on a real Ray cluster started on this machine (127.0.0.1, CPU resources): every run
is a Ray task, and sweep.json's figures equal those of the same sweep run without Ray."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
from helpers import REPO

ray = pytest.importorskip("ray")
ARGS = [
    "sweep",
    "--model",
    "tiny",
    "num_train_epochs=1",
    "--vary",
    "data",
    "--fractions",
    "0.5,1",
    "--gsm8k",
    "none",
    "--max-new-tokens",
    "16",
    "--threads",
    "1",
    "--quiet",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A head node on 127.0.0.1 with 2 CPUs, as `ray start --head` makes it; stopped afterwards."""
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    start = subprocess.run(
        [
            ray_bin,
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--num-gpus",
            "0",
            "--include-dashboard=false",
            "--object-store-memory",
            str(100 * 2**20),
            "--temp-dir",
            str(temp),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def _figures(sweep: dict) -> dict:
    return {r["name"]: (r["train_size"], r["value"], r["ci95"], r["before"]) for r in sweep["runs"]}


def test_a_ray_sweep_gives_the_figures_of_the_same_sweep_without_ray(ray_cluster, tmp_path, tiny_model):
    here, there = tmp_path / "local", tmp_path / "ray"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    for out, extra in ((here, []), (there, ["--ray", ray_cluster])):
        proc = subprocess.run(
            [sys.executable, "-m", "ftbench", *ARGS, "--output-dir", str(out), *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    a = json.loads((here / "sweep.json").read_text(encoding="utf-8"))
    b = json.loads((there / "sweep.json").read_text(encoding="utf-8"))
    assert _figures(a) == _figures(b) and len(a["runs"]) == 2
    assert a["analysis"]["verdicts"] == b["analysis"]["verdicts"]
    for name in ("baseline", "data-50pct"):  # each run was a Ray task, logged in its folder
        assert (there / "runs" / name / "sweep_run.log").is_file()
        assert not (here / "runs" / name / "sweep_run.log").exists()


def test_an_unreachable_cluster_is_one_line(tmp_path, tiny_model):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftbench",
            *ARGS,
            "--output-dir",
            str(tmp_path / "s"),
            "--ray",
            f"127.0.0.1:{_free_port()}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"),
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("ftbench: error: --ray 127.0.0.1:") and "Traceback" not in proc.stderr
