"""`ftbench sweep` end to end on the tiny model, as a user runs it: killed after its first run and resumed, its
sweep.json and report read back, the report in headless Chromium (no console error, no network, links to every
run's report, injected text shown as text); bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, run_cli
from test_report_browser import PAYLOADS, page_factory  # noqa: F401 (a fixture)

ARGS = [
    "sweep",
    "--model",
    "tiny",
    "num_train_epochs=1",
    "--fractions",
    "0.5,1",
    "--lr-factors",
    "1,3",
    "--gsm8k",
    "none",
    "--max-new-tokens",
    "24",
    "--select-by",
    "rouge-l",
]


def _cmd(out) -> list[str]:
    return [sys.executable, "-m", "ftbench", *ARGS, "--output-dir", str(out)]


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory, tiny_model):
    """A sweep killed (SIGKILL) once its first run has finished, then run again to the end."""
    out = tmp_path_factory.mktemp("sweep") / "reports" / "s"  # in a reports/ folder: the index is rewritten
    first = out / "runs" / "baseline" / "metrics.json"
    proc = subprocess.Popen(
        _cmd(out), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.time() + 600
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert first.exists(), proc.stderr.read()[-3000:] if proc.poll() is not None else "timed out"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "sweep.json").exists()  # killed before the end
    kept = first.stat().st_mtime_ns
    resumed = subprocess.run(_cmd(out), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return out, kept, resumed


def test_a_killed_sweep_resumes_keeping_finished_runs(killed_and_resumed):
    out, kept, resumed = killed_and_resumed
    assert "run baseline: finished earlier, kept" in resumed.stderr
    assert (out / "runs" / "baseline" / "metrics.json").stat().st_mtime_ns == kept
    sweep = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in sweep["runs"]] == ["baseline", "data-50pct", "lr-0.03"]
    for r in sweep["runs"]:
        assert (out / r["report"]).is_file()


def test_every_run_is_scored_on_the_same_held_out_samples_with_the_base_shared(killed_and_resumed):
    out, _, _ = killed_and_resumed
    runs = out / "runs"
    labels = {
        name: [json.loads(line)["label"] for line in (runs / name / "predictions_after.jsonl").open()]
        for name in ("baseline", "data-50pct", "lr-0.03")
    }
    assert labels["baseline"] == labels["data-50pct"] == labels["lr-0.03"] and len(labels["baseline"]) == 36
    base = (runs / "baseline" / "predictions_before.jsonl").read_bytes()
    assert all((runs / n / "predictions_before.jsonl").read_bytes() == base for n in ("data-50pct", "lr-0.03"))
    sweep = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    sizes = {r["name"]: r["train_size"] for r in sweep["runs"]}
    assert sizes["data-50pct"] == (sizes["baseline"] + 1) // 2
    half = (out / "data" / "sweep_train_50pct.jsonl").read_text(encoding="utf-8").splitlines()
    full = set((out / "data" / "sweep_train_100pct.jsonl").read_text(encoding="utf-8").splitlines())
    assert set(half) <= full  # nested subsets


def test_sweep_json_has_the_fit_and_a_verdict_per_lever(killed_and_resumed):
    out, _, resumed = killed_and_resumed
    sweep = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    analysis = sweep["analysis"]
    curve = analysis["levers"]["data"]
    assert [p["size"] for p in curve["points"]] == sorted(p["size"] for p in curve["points"])
    lo, hi = curve["slope_ci95"]
    assert lo <= curve["slope"] <= hi
    levers = {v["lever"] for v in analysis["verdicts"]}
    assert {"data", "lr", "epochs"} <= levers
    # --select-by rouge-l scored every checkpoint: the epochs lever reads rouge-l by checkpoint (no extra training)
    by_checkpoint = analysis["levers"]["epochs"]["metric"]["baseline"]["points"]
    assert [p["step"] for p in by_checkpoint] == [20, 35] and by_checkpoint[-1]["epoch"] == pytest.approx(1.0)
    for v in analysis["verdicts"]:
        assert v["text"] in resumed.stdout and v["evidence"]
    # each verdict box is coloured by its evidence: grey when it cannot call a change (issue 24, point 2; the trial
    # found both boxes green, Jinja's v.clear being the dict's clear method)
    boxes = re.findall(r'<div class="(verdict[^"]*)"><b>', (out / "report.html").read_text(encoding="utf-8"))
    assert boxes == ["verdict" if v["clear"] else "verdict unclear" for v in analysis["verdicts"]]
    # the run's figure is the chosen checkpoint's own metrics.json figure
    base = next(r for r in sweep["runs"] if r["name"] == "baseline")
    metrics = json.loads((out / "runs" / "baseline" / "metrics.json").read_text(encoding="utf-8"))
    assert base["value"] == pytest.approx(metrics["after"]["rouge-l"])


def test_select_by_scores_every_checkpoint_beside_its_eval_loss(page_factory, killed_and_resumed):  # noqa: F811
    out, _, _ = killed_and_resumed
    for name in ("baseline", "data-50pct", "lr-0.03"):
        metrics = json.loads((out / "runs" / name / "metrics.json").read_text(encoding="utf-8"))
        sel = metrics["checkpoint"]["selection"]
        assert sel["by"] == "rouge-l" and len(sel["scores"]) >= (1 if name == "data-50pct" else 2)  # 18 steps: one
        best = max(sel["scores"], key=lambda c: (c["rouge-l"], -c["step"]))
        assert metrics["checkpoint"]["step"] == best["step"]
        assert metrics["after"]["rouge-l"] == pytest.approx(best["rouge-l"])  # the chosen one's own figure
        lowest = min(
            (c for c in sel["scores"] if c["eval_loss"] is not None), key=lambda c: (c["eval_loss"], c["step"])
        )
        assert sel["differ"] == (lowest["step"] != best["step"]) and sel["by_eval_loss"]["step"] == lowest["step"]
    baseline = json.loads((out / "runs" / "baseline" / "metrics.json").read_text(encoding="utf-8"))
    sel = baseline["checkpoint"]["selection"]
    page, events = page_factory(out / "runs" / "baseline" / "report.html")
    assert not events["errors"] and not events["console"], events
    assert page.locator("#selection-table tr").count() == len(sel["scores"]) + 1
    assert "lowest eval loss" in page.inner_text("#selection")


def test_sweep_report_in_chromium(page_factory, killed_and_resumed):  # noqa: F811
    out, _, _ = killed_and_resumed
    page, events = page_factory(out / "report.html")
    assert not events["errors"] and not events["console"], events
    assert all(url.startswith("file://") for url in events["requests"])
    assert page.locator("#verdicts .verdict").count() >= 2
    assert page.locator("svg[aria-label='metric against data size'] circle.pt").count() == 2
    assert page.locator("svg[aria-label='metric against data size'] line.fit").count() == 1
    assert page.locator("svg[aria-label='loss curves of every run'] path").count() == 3
    assert "20: " in page.inner_text("#epochs")
    links = page.eval_on_selector_all("#runs a", "as => as.map(a => a.href)")
    assert len(links) == 3 and all(link.startswith("file://") and link.endswith("/report.html") for link in links)
    for link in links:
        assert os.path.isfile(link[len("file://") :])


def test_injected_names_in_a_sweep_report_are_text(page_factory, tmp_path):  # noqa: F811
    from ftbench.evaluation.sweep import RunOutcome, analyse
    from ftbench.report.sweep_report import render_sweep_report

    scores = [[float(i % 7) for i in range(20)], [float(i % 5) + 3 for i in range(20)]]
    outcomes = [
        RunOutcome("baseline", "baseline", {"data": 1.0, "lr": 1e-3, "rank": 8, "model": PAYLOADS[0]}, 100, scores[0]),
        RunOutcome(PAYLOADS[1], "model", {"data": 1.0, "lr": 1e-3, "rank": 8, "model": PAYLOADS[2]}, 100, scores[1]),
    ]
    runs = [
        {
            "name": o.name,
            "lever": o.lever,
            "settings": o.settings,
            "train_size": 100,
            "value": o.mean,
            "ci95": None,
            "before": 1.0,
            "checkpoint": {"name": PAYLOADS[3]},
            "report": PAYLOADS[4],
            "log": [],
        }
        for o in outcomes
    ]
    sweep = {
        "model": PAYLOADS[0],
        "backend": "peft",
        "demo_note": PAYLOADS[3],
        "created": "now",
        "run_seconds": 1,
        "runs": runs,
        "analysis": analyse(outcomes, "rouge-l"),
        "settings": {"models": PAYLOADS[2]},
    }
    path = tmp_path / "report.html"
    path.write_text(render_sweep_report(sweep), encoding="utf-8")
    page, events = page_factory(path)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert PAYLOADS[0] in page.inner_text("body") and PAYLOADS[2] in page.inner_text("#verdicts")
    assert page.locator("body img, #verdicts svg, #runs b").count() == 0
    assert not events["errors"] and not events["console"], events


def test_reports_index_lists_the_sweep_and_runs_escaped(page_factory, killed_and_resumed):  # noqa: F811
    from ftbench.recipes.reports_index import update_index_for, write_index

    out, _, _ = killed_and_resumed
    reports = out.parent
    assert update_index_for(str(out / "runs" / "baseline")) is None  # only a folder directly in reports/
    assert (reports / "index.html").is_file()  # written by the sweep itself
    fake = reports / "run-x"
    fake.mkdir(exist_ok=True)
    (fake / "metrics.json").write_text(
        json.dumps(
            {
                "before": {"rouge-l": 1.0},
                "after": {"rouge-l": 2.5},
                "run": {"model": PAYLOADS[0], "config": {"dataset": PAYLOADS[1]}},
            }
        ),
        encoding="utf-8",
    )
    (reports / "broken").mkdir(exist_ok=True)
    (reports / "broken" / "metrics.json").write_text("{not json", encoding="utf-8")  # left out, not a crash
    page, events = page_factory(write_index(str(reports)))
    assert not events["errors"] and not events["console"], events
    assert page.evaluate("typeof window.__pwned") == "undefined"
    text = page.inner_text("#index")
    assert PAYLOADS[0] in text and "rouge-l 1.00 → 2.50" in text and "more data" in text
    assert page.locator("#index tr").count() == 3  # header, the sweep, the fake run
    assert sorted(page.eval_on_selector_all("#index a", "as => as.map(a => a.getAttribute('href'))")) == [
        "run-x/report.html",
        "s/report.html",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--vary", "colour"], "colour: choose from data, lr, epochs, rank, model"),
        (["--fractions", "0.5,zero"], "'zero' is not a fraction"),
        (["--lr-factors", "-1"], "-1 must be > 0"),
        (["--fractions", "0.5,2"], "2 must be > 0 and <= 1"),
        (["--metric", "accuracy"], "'accuracy' is not one of"),
        (["--vary", "model"], "--vary model needs --models"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    result = run_cli("sweep", "--output-dir", str(tmp_path / "s"), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_a_gsm8k_metric_without_gsm8k_is_refused(tmp_path, tiny_model):
    result = run_cli(
        "sweep", "--model", "tiny", "--gsm8k", "none", "--metric", "strict-match", "--output-dir", str(tmp_path / "s")
    )
    assert result.exit_code == 2 and "needs GSM8K problems" in result.output


def test_devices_run_one_process_per_gpu(monkeypatch, tmp_path):
    """The --devices scheduler (no GPU here): every job is `ftbench train-and-compare` in its own process with
    CUDA_VISIBLE_DEVICES set to one id, never two jobs on one GPU at a time, and a failed run named in one line."""
    from ftbench.api.errors import InputError
    from ftbench.recipes import sweep as recipe

    started, busy = [], {}

    class FakeProcess:
        def __init__(self, cmd, stdout, stderr, env, **group):
            assert group == {"process_group": 0}  # each run leads its own process group
            self.pid = 2**22 + len(started)  # above any Linux pid: its group is never alive
            device = env["CUDA_VISIBLE_DEVICES"]
            assert device not in busy  # one run per GPU at a time
            busy[device] = self
            started.append((cmd, device))
            self.device, self.polls, self.returncode = device, 0, None
            self.config = cmd[cmd.index("--config") + 1]

        def poll(self):  # each job finishes at its second poll; a config named bad fails
            self.polls += 1
            if self.polls >= 2:
                self.returncode = 1 if "bad" in self.config else 0
                busy.pop(self.device, None)
            return self.returncode

    monkeypatch.setattr(recipe.subprocess, "Popen", FakeProcess)
    monkeypatch.setattr(recipe.time, "sleep", lambda s: None)
    jobs = [(f"r{i}", f"/cfg/r{i}.yaml", str(tmp_path / f"r{i}")) for i in range(5)]
    recipe._run_on_devices(jobs, ("0", "1"), quiet=True)
    assert [cmd[cmd.index("--config") + 1] for cmd, _ in started] == [j[1] for j in jobs]
    assert {d for _, d in started} == {"0", "1"}
    assert all(cmd[1:4] == ["-m", "ftbench", "train-and-compare"] and "--output-dir" in cmd for cmd, _ in started)
    started.clear()
    with pytest.raises(InputError, match=r"1 sweep run\(s\) failed: bad \(exit 1, log .*sweep_run.log\)"):
        recipe._run_on_devices(
            [("ok", "/cfg/ok.yaml", str(tmp_path / "ok")), ("bad", "/cfg/bad.yaml", str(tmp_path / "bad"))],
            ("0",),
            quiet=True,
        )


def test_another_config_in_a_sweep_folder_is_refused(killed_and_resumed):
    out, _, _ = killed_and_resumed
    result = subprocess.run(
        _cmd(out)[:-2] + ["num_train_epochs=2", "--output-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "holds a sweep around another config (num_train_epochs differ)" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_figure_lists_agree():
    from ftbench.cli.train_and_compare import SELECT_BY
    from ftbench.metrics.registry import judged_figures
    from ftbench.recipes.run_settings import select_by_choices

    assert list(SELECT_BY.choices) == ["eval_loss", *judged_figures()]
    assert select_by_choices() == list(SELECT_BY.choices)  # what a YAML's select_by accepts (prepare_run checks)


def test_plan_moves_one_lever_at_a_time():
    from ftbench.api.backends import TrainConfig
    from ftbench.recipes.sweep import SweepSettings, plan_runs

    cfg = TrainConfig(model_name_or_path="m0", learning_rate=3e-4, lora_rank=8, lora_alpha=32)
    subsets = {0.25: ("t25", 25), 0.5: ("t50", 50), 1.0: ("t100", 100)}
    ss = SweepSettings("out", vary=("data", "lr", "rank", "model"), models=("m0", "m1"), ranks=(4, 8, 16))
    runs = {r.name: r for r in plan_runs(cfg, ss, subsets, "ev")}
    assert list(runs) == [
        "baseline",
        "data-25pct",
        "data-50pct",
        "lr-0.0001",
        "lr-0.0009",
        "rank-4",
        "rank-16",
        "model-m1",
    ]
    common = {"dataset": "t100", "eval_dataset": "ev", "val_size": 0.0}
    assert runs["baseline"].changes == common
    assert runs["data-25pct"].changes == {**common, "dataset": "t25"}
    assert runs["lr-0.0009"].changes == {**common, "learning_rate": 0.0009}
    assert runs["rank-16"].changes == {**common, "lora_rank": 16, "lora_alpha": 64}  # alpha/rank kept at 4
    assert runs["model-m1"].changes == {**common, "model_name_or_path": "m1"}
    for r in runs.values():  # every other lever stays at the baseline's setting
        moved = {k for k in r.settings if r.settings[k] != runs["baseline"].settings[k]}
        assert moved == (set() if r.lever == "baseline" else {r.lever})


def test_each_model_evaluates_its_base_once_and_the_others_copy_it(monkeypatch, tmp_path):
    """run_all's order: the first run of every model first (each evaluates its base model), then the rest with that
    model's base predictions copied in; finished runs are skipped."""
    from ftbench.api.backends import TrainConfig
    from ftbench.recipes import sweep as recipe
    from ftbench.recipes.run_folder import RunFolder
    from ftbench.recipes.run_settings import RunSettings

    order = []

    def fake_run(config, folder, quiet):
        f = RunFolder(folder)
        os.makedirs(folder, exist_ok=True)  # as train-and-compare does
        copied = os.path.exists(f.predictions("similarity", "before"))
        order.append((os.path.basename(folder), copied))
        if not copied:
            with open(f.predictions("similarity", "before"), "w", encoding="utf-8") as fh:
                fh.write(os.path.basename(folder))  # which run evaluated this base model
        with open(f.metrics, "w", encoding="utf-8") as fh:
            fh.write("{}")

    monkeypatch.setattr(recipe, "_run_in_process", fake_run)
    cfg = TrainConfig(model_name_or_path="m0", learning_rate=1e-3, lora_rank=8)
    ss = recipe.SweepSettings(str(tmp_path), vary=("lr", "model"), lr_factors=(1, 3), models=("m1",))
    runs = recipe.plan_runs(cfg, ss, {1.0: ("t", 10)}, "ev")
    recipe.run_all(cfg, RunSettings(str(tmp_path)), ss, runs, quiet=True)
    assert order == [("baseline", False), ("model-m1", False), ("lr-0.003", True)]
    base = RunFolder(str(tmp_path / "runs" / "lr-0.003")).predictions("similarity", "before")
    assert open(base, encoding="utf-8").read() == "baseline"  # the m0 base evaluation, not m1's
    order.clear()
    recipe.run_all(cfg, RunSettings(str(tmp_path)), ss, runs, quiet=True)
    assert order == []  # all finished: nothing runs again


def test_the_sweep_trains_exactly_the_samples_it_reports(tmp_path, tiny_model):
    """max_samples is applied per dataset (as LLaMA-Factory applies it) before the split and the nested subsets,
    and not again to the merged file: the baseline trains every sample sweep.json reports, and it is the same run
    train-and-compare makes of the same YAML (issue 24, point 1: the baseline trained 30 of 54 samples)."""
    config = tmp_path / "two.yaml"
    config.write_text(
        f"model_name_or_path: {tiny_model}\ndataset: identity,alpaca_demo\n"
        f"dataset_dir: {os.path.join(REPO, 'datasets')}\nmax_samples: 30\nval_size: 0.1\n"
        "num_train_epochs: 1\nper_device_train_batch_size: 4\ngradient_accumulation_steps: 1\n"
        "gsm8k: none\nmax_new_tokens: 8\n",
        encoding="utf-8",
    )
    out = tmp_path / "sweep"
    result = run_cli(
        "sweep", "--config", str(config), "--vary", "data", "--fractions", "0.5,1", "--output-dir", str(out), "--quiet"
    )
    assert result.exit_code == 0, result.output
    sweep = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    sizes = {r["name"]: r["train_size"] for r in sweep["runs"]}
    assert sizes == {"baseline": 54, "data-50pct": 27}  # 2 x 30 samples, 6 held out
    for name, size in sizes.items():
        run_yaml = (out / "runs" / f"{name}.yaml").read_text(encoding="utf-8")
        state = json.loads((out / "runs" / name / "train_result.json").read_text(encoding="utf-8"))
        steps = max(c["step"] for c in state["checkpoints"])
        assert steps == -(-size // 4), (name, steps, run_yaml)  # one epoch of every reported sample
    alone = tmp_path / "alone"
    # the sweep's runs leave retention out (they compare settings by the metric): so does this run
    result = run_cli(
        "train-and-compare", "--config", str(config), "--retention", "none", "--output-dir", str(alone), "--quiet"
    )
    assert result.exit_code == 0, result.output
    assert (alone / "predictions_after.jsonl").read_bytes() == (
        out / "runs" / "baseline" / "predictions_after.jsonl"
    ).read_bytes()
    assert (
        json.loads((alone / "metrics.json").read_text())["after"]
        == json.loads((out / "runs" / "baseline" / "metrics.json").read_text())["after"]
    )
