"""The HTML reports in a real headless browser (Debian's chromium, driven by Playwright): they load from
file:// with no console error and no network request, the improved/regressed filter works, and injection
payloads in the data are shown as text and never run.

In CI (CI=true) a missing browser is a failure, not a skip: `.ci/run` installs chromium.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from helpers import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAYLOADS = [
    '<script>window.__pwned = "script"</script>',
    "<img src=x onerror=\"window.__pwned='img'\">",
    '"><svg onload="window.__pwned=\'svg\'">',
    "</script><script>window.__pwned='close'</script>",
    "{{name}} 你好 <b>bold?</b>",
]


def _browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    sync_api = (
        pytest.importorskip("playwright.sync_api")
        if not os.environ.get("CI")
        else __import__("playwright.sync_api", fromlist=["sync_playwright"])
    )
    return sync_api.sync_playwright


@pytest.fixture(scope="module")
def page_factory():
    sync_playwright = _browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )

        def open_page(path):
            page = browser.new_page()
            events = {"console": [], "requests": [], "errors": []}
            page.on(
                "console",
                lambda m: events["console"].append((m.type, m.text)) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: events["errors"].append(str(e)))
            page.on("request", lambda r: events["requests"].append(r.url))
            page.goto("file://" + os.path.abspath(path))
            page.wait_for_load_state("load")
            return page, events

        yield open_page
        browser.close()


@pytest.fixture(scope="module")
def injected_report(tmp_path_factory):
    """A comparison whose prompts, references and predictions all carry injection payloads."""
    folder = tmp_path_factory.mktemp("xss")
    labels = [f"reference {i} {p}\n#### {i}" for i, p in enumerate(PAYLOADS)]
    # before: only sample 1 right; after: the even samples right, sample 1 wrong -> improved, regressed, unchanged
    before = [
        {
            "prompt": f"<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n",
            "predict": f"{p} #### {i if i == 1 else i + 1}",
            "label": labels[i],
        }
        for i, p in enumerate(PAYLOADS)
    ]
    after = [dict(r, predict=f"{PAYLOADS[i]} #### {i if i % 2 == 0 else i + 7}") for i, r in enumerate(before)]
    for name, rows in (("a.jsonl", before), ("b.jsonl", after)):
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = folder / "compare.html"
    result = run_cli("compare", str(folder / "a.jsonl"), str(folder / "b.jsonl"), "--task", "gsm8k", "--html", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_injection_payloads_are_shown_never_run(page_factory, injected_report):
    page, events = page_factory(injected_report)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    text = page.inner_text("#samples-body")
    for payload in PAYLOADS[:3]:
        assert payload in text  # shown verbatim, as text
    assert page.locator("#samples-body img, #samples-body svg, #samples-body b").count() == 0
    assert not events["errors"] and not events["console"]
    assert all(url.startswith("file://") for url in events["requests"])


def test_the_compare_page_is_its_own_a_b_page(page_factory, injected_report):
    """`compare --html` labels its sides A and B and carries none of a run report's sections that do not apply
    (an empty model header, "No loss was logged.", "GSM8K was not evaluated" above GSM8K rows: issue 24, 8c)."""
    html = injected_report.read_text()
    for absent in ("No loss was logged", "GSM8K was not evaluated", "model <code></code>", ">before<", ">after<"):
        assert absent not in html, absent
    page, events = page_factory(injected_report)
    headings = page.eval_on_selector_all("table th", "cells => cells.map(c => c.textContent)")
    assert "A" in headings and "B" in headings and "Δ (B − A)" in headings
    assert page.inner_text("#answer").startswith("Is B better than A?")
    assert not events["errors"]


def test_improved_regressed_filter(page_factory, injected_report):
    page, _ = page_factory(injected_report)
    total = page.locator("#samples-body tr").count()
    assert total == len(PAYLOADS)
    seen = 0
    for status in ("improved", "regressed", "unchanged"):
        page.click(f"button[data-status='{status}']")
        statuses = page.eval_on_selector_all("#samples-body tr", "rows => rows.map(r => r.dataset.status)")
        assert set(statuses) <= {status}
        seen += len(statuses)
    assert seen == total  # the three filters partition the samples
    page.click("button[data-status='regressed']")
    assert page.locator("#samples-body tr").count() >= 1
    page.click("button[data-status='all']")
    page.fill("#search", "reference 3")
    assert page.locator("#samples-body tr").count() == 1


def test_demo_report_loads_cleanly(page_factory, tmp_path_factory, tiny_model):
    """The real train-and-compare report (from the demo run of test_train_and_compare, or a fresh short one)."""
    import subprocess
    import sys

    from helpers import REPO

    out = tmp_path_factory.mktemp("browser-run") / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftbench",
            "train-and-compare",
            "--model",
            "tiny",
            "--output-dir",
            str(out),
            "num_train_epochs=1",
            "--gsm8k-limit",
            "8",
            "--max-new-tokens",
            "24",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    page, events = page_factory(out / "report.html")
    assert not events["errors"] and not events["console"], events
    assert all(url.startswith("file://") for url in events["requests"])
    assert page.locator("svg[aria-label='loss curves'] path").count() >= 2  # train and eval curves
    assert "chosen: step" in page.text_content("svg[aria-label='loss curves']")
    assert page.locator("#samples-body tr").count() > 0
