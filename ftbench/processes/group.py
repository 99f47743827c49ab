"""Every process ftbench starts runs in its own process group and does not outlive ftbench.

* `OwnedProcess` starts a command as the leader of a new process group (so torchrun's workers and anything else
  it starts are reachable with one `killpg`), records it in an owner file in the folder it works in, and on
  leaving its `with` block stops whatever of the group is still alive: the signal ftbench got (SIGTERM when it
  ended normally), then SIGKILL after a grace period (`FTBENCH_STOP_GRACE`, default 10 s).
* `signals_raised()` turns SIGTERM and SIGHUP (a closed terminal, `timeout`, `kill`) into a `Stopped` exception
  in the main thread, as SIGINT is a KeyboardInterrupt, so the `with` blocks run instead of ftbench dying with
  its children orphaned.
* `refuse_if_running(folder)`: the owner file of a run whose group is still alive (ftbench was SIGKILLed) makes
  a rerun stop in one line instead of starting a second trainer on the same output folder.

A child in its own group no longer gets the terminal's Ctrl-C directly: ftbench forwards it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

from ftbench.api.errors import UsageError

OWNER_FILE = "ftbench_child.json"
GRACE_ENV = "FTBENCH_STOP_GRACE"
DEFAULT_GRACE = 10.0
_POSIX = os.name == "posix"


class Stopped(KeyboardInterrupt):
    """ftbench was told to stop by a signal (SIGTERM, SIGHUP); handled as Ctrl-C is, the signal kept."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_signal(error: BaseException | None) -> int:
    """The signal to forward to children for ``error``: the one ftbench got, SIGINT for Ctrl-C, else SIGTERM."""
    if isinstance(error, Stopped):
        return error.signum
    return signal.SIGINT if isinstance(error, KeyboardInterrupt) else signal.SIGTERM


def grace_seconds() -> float:
    """How long a group gets between the forwarded signal and SIGKILL."""
    try:
        return max(0.0, float(os.environ.get(GRACE_ENV, DEFAULT_GRACE)))
    except ValueError:
        raise UsageError(f"{GRACE_ENV}={os.environ[GRACE_ENV]}: expected a number of seconds") from None


@contextlib.contextmanager
def signals_raised():
    """Inside: SIGTERM and SIGHUP raise `Stopped` in the main thread. Elsewhere (a worker thread, Windows) this
    changes nothing."""
    if not _POSIX or threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_stopped(signum, _frame):
        raise Stopped(signum)

    saved = {s: signal.signal(s, raise_stopped) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def group_alive(pgid: int | None) -> bool:
    """Whether any process of group ``pgid`` is still running (zombies do not count)."""
    if not pgid or not _POSIX:
        return False
    if os.path.isdir("/proc/self"):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue  # exited while we looked
            if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _signal_group(pgid: int | None, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError, TypeError, OSError):
        pass  # gone already (or a fake pid in a test)


def stop_all(processes: list["OwnedProcess"], sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to every group still alive, give them the grace period together, then SIGKILL the rest."""
    alive = [p for p in processes if p.alive()]
    for p in alive:
        p.send(sig)
    deadline = time.monotonic() + (0.0 if sig == signal.SIGKILL else grace_seconds())
    try:
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [p for p in alive if p.alive()]
    except KeyboardInterrupt:  # a second Ctrl-C (or signal) while waiting: no more grace
        for p in alive:
            p.send(signal.SIGKILL)
        raise
    for p in alive:
        p.send(signal.SIGKILL)
    deadline = time.monotonic() + 5.0  # SIGKILL cannot be ignored: this is only the kernel's reaping
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if p.alive()]


class OwnedProcess:
    """A command started as the leader of its own process group; see the module docstring. ``owner_dir``: the
    folder it works in, which holds the owner file while it runs."""

    def __init__(self, cmd: list[str], *, owner_dir: str | None = None, **popen):
        self.cmd, self.owner_dir, self.popen = cmd, owner_dir, popen
        self.process: subprocess.Popen | None = None

    def start(self) -> "OwnedProcess":
        if self.owner_dir:
            refuse_if_running(self.owner_dir)
        group = ({"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}) if _POSIX else {}
        self.process = subprocess.Popen(self.cmd, **self.popen, **group)
        if self.owner_dir:
            _write_owner(self.owner_dir, self.process.pid, self.cmd)
        return self

    def __enter__(self) -> "OwnedProcess":
        return self.start()

    def __exit__(self, kind, error, tb) -> None:
        self.close(stop_signal(error))

    @property
    def pid(self) -> int | None:
        return getattr(self.process, "pid", None)

    def poll(self) -> int | None:
        return self.process.poll()

    def alive(self) -> bool:
        """The leader still running, or any process of its group (torchrun's workers outlive a killed launcher)."""
        if self.process is not None and self.process.poll() is None:
            return True
        return _POSIX and group_alive(self.pid)

    def send(self, sig: int) -> None:
        """Send ``sig`` to the whole group."""
        if _POSIX:
            _signal_group(self.pid, sig)
        elif self.process.poll() is None:
            self.process.kill() if sig == getattr(signal, "SIGKILL", None) else self.process.terminate()

    def close(self, sig: int = signal.SIGTERM) -> None:
        """Stop what of the group is alive (``sig``, then SIGKILL after the grace period); drop the owner file."""
        if self.process is None:
            return
        try:
            stop_all([self], sig)
        finally:  # also when a second signal cut the grace short (`timeout` signals the child and its group)
            with contextlib.suppress(Exception):
                self.process.wait(timeout=5)
            deadline = time.monotonic() + 5.0
            while self.alive() and time.monotonic() < deadline:  # SIGKILLed: only the kernel's reaping is left
                time.sleep(0.05)
            if self.owner_dir and not self.alive():
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.owner_dir, OWNER_FILE))


def _write_owner(folder: str, pid: int, cmd: list[str]) -> None:
    from ftbench.io import write_json

    os.makedirs(folder, exist_ok=True)
    write_json(
        os.path.join(folder, OWNER_FILE),
        {"pgid": pid, "ftbench_pid": os.getpid(), "command": cmd, "started": time.strftime("%Y-%m-%dT%H:%M:%S")},
    )


def refuse_if_running(folder: str) -> None:
    """A UsageError when ``folder``'s owner file names a process group that is still running."""
    path = os.path.join(folder, OWNER_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            owner = json.load(fh)
        pgid = int(owner["pgid"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # none, or unreadable: nothing known to be running
    if group_alive(pgid):
        what = " ".join(str(c) for c in owner.get("command", []))[:120]
        raise UsageError(
            f"{folder}: a process an earlier ftbench started is still running there (process group "
            f"{pgid}, started {owner.get('started', '?')}: {what}); stop it (kill -TERM -- -{pgid}) "
            f"or wait for it to end, then rerun"
        )
