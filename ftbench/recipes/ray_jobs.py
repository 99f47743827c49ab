"""Sweep runs as Ray tasks on an existing Ray cluster (`ftbench sweep --ray ADDRESS`): past one machine, the way
LLaMA-Factory itself distributes runs.

Each run is one task that starts `ftbench train-and-compare --config RUN.yaml --output-dir RUN` on whichever node
Ray places it, with one GPU when the cluster has GPUs (else one CPU), exactly as `--devices` does on one machine;
its console output goes to `runs/<name>/sweep_run.log`. The sweep folder must be on a filesystem every node sees
(the run YAMLs, the data and the run folders are read and written by path), and every node needs ftbench and the
model. Resuming is the run folders' business, as without Ray: a finished run is skipped before any task starts, an
interrupted one resumes in its folder. Interrupting the sweep cancels its tasks.
"""

from __future__ import annotations

import os

from ftbench.api.errors import InputError, UsageError
from ftbench.console import say


def _run_task(name: str, config: str, folder: str) -> tuple[str, int, str]:
    """Inside a Ray worker: the run as its own process group, which a cancelled task stops with it."""
    import subprocess
    import sys

    from ftbench.processes.group import OwnedProcess
    from ftbench.recipes.run_folder import RunFolder

    log = RunFolder(folder).sweep_log
    os.makedirs(folder, exist_ok=True)
    cmd = [sys.executable, "-m", "ftbench", "train-and-compare", "--config", config, "--output-dir", folder, "--quiet"]
    with (
        open(log, "w", encoding="utf-8") as out,
        OwnedProcess(cmd, owner_dir=folder, stdout=out, stderr=subprocess.STDOUT) as proc,
    ):
        code = proc.process.wait()
    return name, code, log


def connect(address: str):
    """The ray module, connected to the cluster at ``address``; one line when Ray is missing or unreachable."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs the ray package on this machine and every node: pip install 'ray>=2.9'") from None
    if not ray.is_initialized():
        _reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR", configure_logging=False)
        except Exception as e:  # ConnectionError, ValueError (bad address), RuntimeError: Ray's own words
            raise UsageError(
                f"--ray {address}: cannot connect to a Ray cluster ({str(e).splitlines()[0][:200]}); "
                "start one with `ray start --head` and pass its address (host:port)"
            ) from None
    return ray


def _reachable(address: str) -> None:
    """One line, at once, when nothing listens at ``address`` (Ray itself keeps retrying for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray {address}: give the head node's host:port (e.g. 127.0.0.1:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as e:
        raise UsageError(
            f"--ray {address}: cannot connect to a Ray cluster ({e.strerror or e}); start one with "
            "`ray start --head` and pass its address (host:port)"
        ) from None


def run_on_ray(jobs: list[tuple[str, str, str]], address: str, quiet: bool) -> None:
    """Each job (name, config, folder) as a Ray task; waits for all, and names the ones that failed."""
    ray = connect(address)
    resources = ray.cluster_resources()
    per_task = {"num_gpus": 1} if resources.get("GPU", 0) >= 1 else {"num_cpus": 1}
    task = ray.remote(max_retries=0, **per_task)(_run_task)
    pending = {task.remote(name, config, folder): name for name, config, folder in jobs}
    for name in pending.values():
        say(
            f"  {name}: submitted to the Ray cluster at {address} ({'1 GPU' if 'num_gpus' in per_task else '1 CPU'})",
            quiet,
        )
    failed = []
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(done[0])
            try:
                _, code, log = ray.get(done[0])
            except Exception as e:  # the task itself died (node lost, worker killed)
                failed.append(f"{name} (Ray task failed: {str(e).splitlines()[0][:200]})")
                continue
            if code != 0:
                failed.append(f"{name} (exit {code}, log {log})")
            else:
                say(f"  {name}: done on the Ray cluster", quiet)
    finally:
        for ref in pending:  # interrupted: cancel what still runs (each resumes on the next sweep)
            ray.cancel(ref, force=True)
    if failed:
        raise InputError(
            f"{len(failed)} sweep run(s) failed: {'; '.join(failed)}; the finished runs are kept, "
            "rerun the same command to resume"
        )
