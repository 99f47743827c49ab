"""`ftbench judge` against a deterministic judge server on 127.0.0.1 (fixed preferences, one prompt on which it
always picks the first position, one it cannot decide): the win rate is exactly what the preferences imply, swap
inconsistencies count as ties, unparseable replies are retried then recorded, and a run killed in the middle
resumes with nothing judged twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, run_cli
from serving import JudgeServer

N = 10  # 0-5: B's answer is better, 6-7: A's, 8: the judge always says [[A]], 9: it never gives a verdict


def _files(tmp_path):
    questions = [f"question {i}" for i in range(8)] + ["biased question", "garbled question"]
    good_b = [True] * 6 + [False] * 2 + [True, True]
    a = [
        {
            "prompt": f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n",
            "predict": "bad answer" if g else "GOOD answer",
            "label": "",
        }
        for q, g in zip(questions, good_b)
    ]
    b = [{**r, "predict": "GOOD answer, longer" if g else "bad answer, longer"} for r, g in zip(a, good_b)]
    paths = []
    for name, rows in (("a.jsonl", a), ("b.jsonl", b)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        paths.append(str(tmp_path / name))
    return paths


@pytest.fixture
def server():
    s = JudgeServer()
    yield s
    s.close()


def test_the_win_rate_is_what_the_judges_preferences_imply(server, tmp_path):
    a, b = _files(tmp_path)
    out = tmp_path / "judgments.jsonl"
    result = run_cli(
        "judge", a, b, "--judge-url", server.url, "--judge-model", "judge", "-o", str(out), "--retries", "1", "--json"
    )
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert (r["n"], r["judged"], r["wins"], r["losses"], r["ties"], r["unparseable"], r["inconsistent"]) == (
        N,
        9,
        6,
        2,
        1,
        1,
        1,
    )
    assert r["win_rate"] == pytest.approx((6 + 0.5) / 9)
    assert r["pairs"][8]["verdicts"] == {"ab": "A", "ba": "A"} and r["pairs"][8]["outcome"] == "tie"
    assert r["pairs"][0]["reasons"]["ab"] == "B is right. [[B]]"
    # every prompt twice, swapped; the garbled one asked again once per order (--retries 1): each reply counted once
    replies = 2 * N + 2
    assert r["tokens"] == {"prompt_tokens": 10 * replies, "completion_tokens": 5 * replies}
    # a reply lost in transport is asked again by the HTTP client, not judged again (seen once under CI load)
    assert replies <= len(server.asked) <= replies + 1
    assert {(q, x) for q, x in server.asked if q == "question 0"} == {
        ("question 0", "bad answer"),
        ("question 0", "GOOD answer, longer"),
    }
    assert r["length_bias"]["candidate_longer"]["n"] == 9  # B's answers are the longer ones here
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert "header" in rows[0] and len(rows) == 1 + 2 * N
    assert [row["attempts"] for row in rows[1:] if row["index"] == 9] == [2, 2]


def test_a_killed_judge_resumes_with_nothing_judged_twice(tmp_path):
    slow = JudgeServer(delay=0.15)
    try:
        a, b = _files(tmp_path)
        out = tmp_path / "judgments.jsonl"
        cmd = [
            sys.executable,
            "-m",
            "ftbench",
            "judge",
            a,
            b,
            "--judge-url",
            slow.url,
            "--judge-model",
            "judge",
            "-o",
            str(out),
            "--concurrency",
            "1",
            "--quiet",
        ]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 6):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = len(out.read_text().splitlines()) - 1
        assert 5 <= before < 2 * N
        again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()[1:]]
        keys = [(row["index"], row["order"]) for row in rows]
        assert len(keys) == len(set(keys)) == 2 * N  # each prompt and order judged exactly once
        asked = [x for x in slow.asked if x[0] != "garbled question"]
        assert len(asked) - len(set(asked)) <= 1  # at most the reply in flight when killed was asked again
    finally:
        slow.close()


def test_judging_other_prompts_into_the_same_file_is_refused(server, tmp_path):
    a, b = _files(tmp_path)
    out = tmp_path / "j.jsonl"
    assert run_cli("judge", a, b, "--judge-url", server.url, "--judge-model", "j", "-o", str(out)).exit_code == 0
    result = run_cli("judge", b, a, "--judge-url", server.url, "--judge-model", "j", "-o", str(out))
    assert result.exit_code == 2 and "another judge" in result.output


def prefers_longer(question: str, a: str, b: str) -> str:
    """A judge with a bias anyone can compute from the answers: the longer one wins, equal lengths tie."""
    why = "<script>alert('judge')</script> longer."  # a server's words are data: shown, never run
    return "[[C]]" if len(a) == len(b) else f"{why} [[A]]" if len(a) > len(b) else f"{why} [[B]]"


def _expected(before: str, after: str) -> tuple[int, int, int]:
    rows = [[json.loads(x) for x in open(p, encoding="utf-8")] for p in (before, after)]
    lengths = [(len(x["predict"]), len(y["predict"])) for x, y in zip(*rows)]
    return sum(b > a for a, b in lengths), sum(b < a for a, b in lengths), sum(b == a for a, b in lengths)


def test_train_and_compare_with_a_judge(tmp_path, tiny_model):
    """The judge scorers in a run: the held-out and the retention answers judged (the run generates nothing more),
    each figure exactly what the judge's preference implies on the run's own answers, the reasons in the report,
    and a rerun judges nothing again."""
    judge = JudgeServer(rule=prefers_longer)
    try:
        prompts = tmp_path / "general.jsonl"
        prompts.write_text(
            "".join(
                json.dumps({"instruction": p, "output": ""}) + "\n" for p in ("Name a colour.", "2+2?", "你好吗？")
            ),
            encoding="utf-8",
        )
        config = tmp_path / "c.yaml"
        config.write_text(
            f"model_name_or_path: tiny\ndataset: {os.path.join(REPO, 'datasets', 'identity.json')}\nmax_samples: 16\n"
            f"val_size: 6\nnum_train_epochs: 1\nper_device_train_batch_size: 4\nretention: {prompts}\n"
            "judge:\n  model: judge-model\n  retries: 0\n"
        )
        run = tmp_path / "run"
        cmd = ["train-and-compare", "--config", str(config), "--gsm8k", "none", "--max-new-tokens", "12"]
        cmd += ["--judge-url", judge.url, "--output-dir", str(run), "--quiet"]
        result = run_cli(*cmd)
        assert result.exit_code == 0, result.output
        metrics = json.loads((run / "metrics.json").read_text())
        for figure, scorer, files in (
            ("judge-win-rate", "judge", "predictions"),
            ("retention-win-rate", "retention-judge", "retention_predictions"),
        ):
            wins, losses, ties = _expected(run / f"{files}_before.jsonl", run / f"{files}_after.jsonl")
            entry = metrics["comparison"][figure]
            assert (entry["wins"], entry["losses"], entry["ties"]) == (wins, losses, ties)
            n = wins + losses + ties
            assert metrics["n"][scorer] == n == (6 if scorer == "judge" else 3)
            assert entry["after"] == pytest.approx(100 * (wins + ties / 2) / n)
            assert entry["delta"] == pytest.approx(entry["after"] - 50)
            assert metrics["signatures"][figure].startswith(f"{figure}|judge:judge-model|where:server")
            judgments = (run / f"{scorer}_judgments.jsonl").read_text().splitlines()
            assert len(judgments) == 1 + 2 * n  # a header, then each prompt in both orders
        assert "reference:shown" in metrics["signatures"]["judge-win-rate"]
        assert "reference" not in metrics["signatures"]["retention-win-rate"]
        assert metrics["judge"]["after"]["tokens"] == {"prompt_tokens": 10 * 12, "completion_tokens": 5 * 12}
        assert "judge" in metrics["run"]["durations"] and "retention-judge" in metrics["run"]["durations"]
        assert len(judge.asked) == 2 * (6 + 3)
        page = (run / "report.html").read_text()
        assert "Judge judge-model on 6 held-out samples: the fine-tuned answer won" in page
        assert "A = base, B = fine-tuned" in page  # each verdict's replies, in the samples table
        assert "judge " in page and f"({15 * 12} tokens judged)" in page  # the cost of this verdict, per stage
        assert "<script>alert(" not in page and "\\u003cscript\\u003ealert(" in page
        assert not list(run.glob("judge_predictions_*"))  # the judge generates nothing of its own
        # a rerun reads the judgments back: nothing is asked again
        again = run_cli(*cmd)
        assert again.exit_code == 0, again.output
        assert len(judge.asked) == 2 * (6 + 3)
        assert (
            json.loads((run / "metrics.json").read_text())["comparison"]["judge-win-rate"]
            == metrics["comparison"]["judge-win-rate"]
        )
    finally:
        judge.close()


def test_judge_settings_are_checked_before_any_work(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model_name_or_path: tiny\njudge:\n  model: j\n  temperature: 0\n")
    result = run_cli("train-and-compare", "--config", str(config), "--output-dir", str(tmp_path / "r"))
    assert result.exit_code == 1 and "judge" in result.output and "temperature" in result.output
    assert "Traceback" not in result.output
    result = run_cli("train-and-compare", "--judge-url", "http://127.0.0.1:9/v1", "--output-dir", str(tmp_path / "s"))
    assert result.exit_code == 2 and "--judge-url needs --judge-model" in result.output


def test_a_sweep_judges_every_run(tmp_path, tiny_model):
    """`sweep --judge-url --judge-model`: each run of the sweep judges its own answers against the shared base
    answers (the retention prompts are left out of a sweep, so is their judge)."""
    judge = JudgeServer(rule=prefers_longer)
    try:
        config = tmp_path / "c.yaml"
        config.write_text(
            f"model_name_or_path: {tiny_model}\ndataset: {os.path.join(REPO, 'datasets', 'identity.json')}\n"
            "max_samples: 16\nval_size: 4\nnum_train_epochs: 1\nper_device_train_batch_size: 4\ngsm8k: none\n"
            "max_new_tokens: 8\n"
        )
        out = tmp_path / "sweep"
        result = run_cli(
            "sweep", "--config", str(config), "--vary", "lr", "--lr-factors", "1,3", "--output-dir", str(out),
            "--judge-url", judge.url, "--judge-model", "j", "--quiet",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        runs = sorted(p for p in (out / "runs").iterdir() if p.is_dir())
        assert len(runs) == 2
        for run in runs:
            metrics = json.loads((run / "metrics.json").read_text())
            wins, losses, ties = _expected(run / "predictions_before.jsonl", run / "predictions_after.jsonl")
            entry = metrics["comparison"]["judge-win-rate"]
            assert (entry["wins"], entry["losses"], entry["ties"]) == (wins, losses, ties)
            assert "retention-judge" not in metrics["n"]
        assert len(judge.asked) == 2 * 2 * 4
    finally:
        judge.close()


def test_a_local_judge(tmp_path, tiny_model):
    """Without --judge-url the judge runs here, rendered with its own chat template: every prompt asked in both
    orders, each recorded verdict the one its reply holds (the random tiny model gives none: retried, then
    recorded as unparseable)."""
    from ftbench.evaluation.judging import parse_verdict

    a, b = _files(tmp_path)
    out = tmp_path / "local.jsonl"
    result = run_cli(
        "judge", a, b, "--judge-model", "tiny", "-o", str(out), "--max-new-tokens", "8", "--retries", "1", "--json"
    )
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    rows = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert sorted((row["index"], row["order"]) for row in rows) == [(i, o) for i in range(N) for o in ("ab", "ba")]
    assert all(row["verdict"] == parse_verdict(row["reply"]) for row in rows)
    assert all(row["attempts"] == (1 if row["verdict"] else 2) for row in rows)
    assert r["judged"] + r["unparseable"] == N and r["tokens"]["completion_tokens"] > 0
