"""The command line as users run it: help, version, exit codes, output channels, start-up cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from helpers import REPO, run_cli, validate_json

FINDING_KEYS = {"code", "message", "hint", "file", "line", "column", "record", "path"}


def _console_script() -> str:
    path = os.path.join(os.path.dirname(sys.executable), "ftbench")
    assert os.path.exists(path), "the ftbench console script is not installed in this environment"
    return path


def test_help_lists_every_command():
    from ftbench.cli import COMMANDS

    result = run_cli("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.stdout


def test_version():
    from ftbench import __version__

    result = run_cli("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


def test_json_shape_and_nothing_else_on_stdout():
    code, report = validate_json("datasets/broken/missing-field.jsonl")
    assert code == 1
    assert set(report) == {"ok", "records", "errors", "warnings", "stats"}
    assert report["records"] == 3
    for finding in report["errors"] + report["warnings"]:
        assert set(finding) == FINDING_KEYS


def test_exit_codes():
    assert run_cli("validate", "datasets/alpaca_demo.json").exit_code == 0
    assert run_cli("validate", "datasets/broken/role-order.json").exit_code == 1
    missing = run_cli("validate", "no/such/file.json")
    assert missing.exit_code == 2 and missing.stderr.strip() == "ftbench: error: no/such/file.json: no such file"
    bad_option = run_cli("validate", "--no-such-option", "datasets/alpaca_demo.json")
    assert bad_option.exit_code == 2 and len(bad_option.stderr.strip().splitlines()) == 1
    assert run_cli("validate").exit_code == 2


def test_text_output_shows_locations_and_verdict():
    result = run_cli("validate", "datasets/broken/role-order.json")
    assert "datasets/broken/role-order.json:2 [0].conversations[1].from: error [role-order]" in result.stdout
    assert "FAILED" in result.stdout


def test_quiet_prints_only_errors():
    result = run_cli("validate", "--quiet", "datasets/broken/role-order.json")
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "[role-order]" in result.stderr
    assert run_cli("-q", "validate", "datasets/alpaca_demo.json").output == ""


def test_html_report_escapes_data(tmp_path):
    data = tmp_path / "xss.jsonl"
    payload = '<script>alert(1)</script><img src=x onerror="alert(2)">{{name}}'
    data.write_text(json.dumps({"instruction": payload, "input": "", "output": payload}) + "\n")
    out = tmp_path / "report.html"
    result = run_cli("validate", str(data), "--html", str(out))
    assert result.exit_code == 0
    page = out.read_text()
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page or "{{name}}" in page
    assert "http://" not in page and "https://" not in page


def test_jsonl_saved_as_json_is_read_line_by_line(tmp_path):
    path = tmp_path / "lines.json"
    path.write_text('{"instruction": "a", "input": "", "output": "b"}\n{"instruction": "c", "output": "d"}\n')
    code, report = validate_json(str(path))
    assert code == 0 and report["records"] == 2


def test_installed_console_script_runs_as_a_user_would():
    out = subprocess.run(
        [_console_script(), "validate", "--json", "datasets/broken/empty-field.jsonl"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["errors"][0]["path"] == "[1].instruction"
    module = subprocess.run(
        [sys.executable, "-m", "ftbench", "validate", "datasets/identity.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert module.returncode == 0 and "OK" in module.stdout


def test_start_up_does_not_import_heavy_libraries():
    for args in (["--help"], ["validate", "datasets/identity.json"]):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "ftbench", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.perf_counter() - start
        assert out.returncode == 0, out.stderr[-500:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
        assert not imported & {"torch", "transformers", "datasets", "lm_eval", "peft"}, args
        assert elapsed < 3.0, f"{args}: {elapsed:.2f}s"  # generous for a loaded CI box; ~0.2 s here
