"""Shared test helpers: run the real CLI in-process (CliRunner) and parse its --json output."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from ftbench.cli import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROKEN = os.path.join(REPO, "datasets", "broken")
SHARED_GSM8K = os.path.join(REPO, "..", "shared", "datasets", "gsm8k")


def run_cli(*args: str):
    """Invoke `ftbench ARGS` in-process from the repo root; returns click's Result."""
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(cwd)


def validate_json(*args: str) -> tuple[int, dict]:
    result = run_cli("validate", "--json", *args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def located(findings: list[dict]) -> set[tuple]:
    """(code, line, path) of each finding: what the location tests compare."""
    return {(f["code"], f["line"], f["path"]) for f in findings}
