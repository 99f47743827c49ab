"""Child processes owned (`ftbench.processes`): `ftbench train --backend llamafactory` with a fake trainer (set
as FTBENCH_LLAMAFACTORY_CLI) that starts a child and ignores SIGTERM, SIGINT and SIGHUP. Whatever stops ftbench
(Ctrl-C, SIGTERM, SIGHUP, a parent `timeout`), it ends within the grace period plus a little, in one line, and
no process of the trainer's group is left alive; a trainer orphaned by a SIGKILLed ftbench makes the rerun stop
in one line instead of starting a second one next to it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml
from helpers import REPO

FAKE_TRAINER = """#!{python}
import json, os, signal, subprocess, sys, time
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)  # a trainer that will not stop: only SIGKILL ends it (and its child)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])  # like torchrun's workers
with open(os.environ["FAKE_PIDS"] + ".tmp", "w") as fh:
    json.dump({{"trainer": os.getpid(), "child": child.pid}}, fh)
os.replace(os.environ["FAKE_PIDS"] + ".tmp", os.environ["FAKE_PIDS"])
print("Num examples = 10", flush=True)
time.sleep(3600)
"""
GRACE = 1.0


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for init is not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


@pytest.fixture
def fake_run(tiny_model, tmp_path):
    """(command, env, pids file, output dir) of `ftbench train --backend llamafactory` on the fake trainer."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("reads /proc")
    script = tmp_path / "llamafactory-cli"
    script.write_text(FAKE_TRAINER.format(python=sys.executable))
    script.chmod(0o755)
    out = tmp_path / "out"
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_name_or_path": tiny_model,
                "stage": "sft",
                "do_train": True,
                "finetuning_type": "lora",
                "dataset": "identity",
                "dataset_dir": os.path.join(REPO, "datasets"),
                "template": "qwen",
                "output_dir": str(out),
            }
        )
    )
    pids = tmp_path / "pids.json"
    env = {
        **os.environ,
        "PYTHONPATH": REPO,
        "FTBENCH_LLAMAFACTORY_CLI": str(script),
        "FTBENCH_STOP_GRACE": str(GRACE),
        "FAKE_PIDS": str(pids),
    }
    cmd = [sys.executable, "-m", "ftbench", "train", str(config), "--backend", "llamafactory", "-q"]
    started: list[int] = []
    yield cmd, env, pids, out, started
    for pid in started:  # a failing test must not leave the trainer behind either
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def wait_for(pids, proc, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while not pids.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the fake trainer never started"
        time.sleep(0.05)
    return json.loads(pids.read_text())


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGHUP", "timeout"])
def test_nothing_survives_ftbench(fake_run, how):
    cmd, env, pids, out, started = fake_run
    if how == "timeout":
        if not shutil.which("timeout"):
            pytest.skip("no timeout(1)")
        cmd = ["timeout", "-s", "TERM", "15", *cmd]
    launched = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = wait_for(pids, proc)
        started.append(found["trainer"])
        assert running(found["trainer"]) and running(found["child"])
        assert os.getpgid(found["child"]) == found["trainer"] != os.getpgid(proc.pid)  # its own group
        assert os.path.exists(out / "ftbench_child.json")
        if how != "timeout":
            time.sleep(0.3)
            proc.send_signal(getattr(signal, how))
        began = launched + 15 if how == "timeout" else time.monotonic()
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - began < GRACE + 10  # the forwarded signal, the grace, then SIGKILL: never forever
    expected = {"SIGINT": 1, "SIGTERM": 1, "SIGHUP": 1, "timeout": 124}[how]  # timeout(1) says 124 itself
    assert proc.returncode == expected, stderr
    lines = stderr.strip().splitlines()
    said = "ftbench: aborted" + ("" if how == "SIGINT" else " (SIGTERM)" if how == "timeout" else f" ({how})")
    assert lines == [said] and "Traceback" not in stderr, stderr
    time.sleep(0.2)
    assert not running(found["trainer"]) and not running(found["child"])
    assert not (out / "ftbench_child.json").exists()


def test_a_rerun_refuses_while_an_orphaned_trainer_runs(fake_run):
    cmd, env, pids, out, started = fake_run
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found = wait_for(pids, proc)
    started.append(found["trainer"])
    proc.send_signal(signal.SIGKILL)  # nothing can forward this one: the trainer is orphaned
    proc.communicate(timeout=30)
    assert running(found["trainer"])
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "still running" in lines[0] and f"kill -TERM -- -{found['trainer']}" in lines[0]
    assert str(out) in lines[0]
    os.killpg(found["trainer"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while running(found["trainer"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    pids.unlink()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started.append(wait_for(pids, proc)["trainer"])  # the group is gone: the rerun starts a trainer again
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
