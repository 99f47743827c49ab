"""The scorer contract: a new scorer is one class plus one registry line, and every command, the run folder and
the choices on the command line follow it; a pairwise scorer (judging before and after together) needs no special
case; --scorer is the scorer's option everywhere, --task its hidden old name."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, run_cli

from ftbench.api.metrics import Comparison, SampleMetric, Scorer
from ftbench.metrics.registry import METRICS, SCORERS, judged_figures
from ftbench.metrics.scorers import SampleScorer


class ExactMetric(SampleMetric):
    """1 when the prediction equals the reference after stripping, else 0."""

    name = "exact-text"
    figures = ("exact",)

    def per_sample(self, predictions, references):
        return {"exact": np.array([float(p.strip() == r.strip()) for p, r in zip(predictions, references)])}

    def signatures(self):
        return {"exact": "exact|strip:yes"}


class ExactScorer(SampleScorer):
    """A new scorer: one class, nothing else anywhere."""

    name = "exact"
    default_metrics = ("exact-text",)
    figures = ("exact",)
    primary = "exact"
    accuracies = ("exact",)
    eval_set = "the held-out split"

    def eval_samples(self, held_out, settings):
        return list(held_out)


class PreferenceJudge(Scorer):
    """A pairwise scorer: it sees both answers of a sample at once (here: the longer answer wins)."""

    name = "longer"
    figures = ("win-rate",)
    judged = ()

    def compare(self, before, after):
        wins = [len(y["predict"]) > len(x["predict"]) for x, y in zip(before, after)]
        rate = sum(wins) / len(wins)
        rows = [
            {
                "i": i,
                "scorer": self.name,
                "primary": "win",
                "prompt": x.get("prompt", ""),
                "reference": x.get("label", ""),
                "before": x["predict"],
                "after": y["predict"],
                "scores_before": {"win": 0},
                "scores_after": {"win": int(w)},
                "status": "improved" if w else "unchanged",
            }
            for i, (x, y, w) in enumerate(zip(before, after, wins))
        ]
        return Comparison(
            self.name,
            len(before),
            {"win-rate": {"before": 0.5, "after": rate, "delta": rate - 0.5}},
            {"win-rate": "longer|judge:length"},
            {},
            {},
            rows,
        )


@pytest.fixture
def exact_scorer(monkeypatch):
    monkeypatch.setitem(METRICS._code, "exact-text", ExactMetric)
    monkeypatch.setitem(SCORERS._code, "exact", ExactScorer)


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


ROWS_A = [
    {"prompt": f"q{i}", "predict": p, "label": l}
    for i, (p, l) in enumerate([("yes", "yes"), ("no", "yes"), ("maybe", "no"), ("x", "y")])
]
ROWS_B = [{**r, "predict": p} for r, p in zip(ROWS_A, ["yes", "yes", "no", "z"])]


def test_a_registered_scorer_reaches_every_command(exact_scorer, tmp_path):
    a, b = _write(tmp_path / "a.jsonl", ROWS_A), _write(tmp_path / "b.jsonl", ROWS_B)
    scored = run_cli("score", a, "--scorer", "exact", "--json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["metrics"] == {"exact": 0.25}
    compared = run_cli("compare", a, b, "--scorer", "exact", "--json")
    assert compared.exit_code == 0, compared.output
    exact = json.loads(compared.stdout)["comparison"]["exact"]
    assert (exact["before"], exact["after"], exact["wins"], exact["losses"]) == (0.25, 0.75, 2, 0)
    assert exact["mcnemar"]["wrong_to_right"] == 2  # declared an accuracy: McNemar beside the bootstrap
    assert judged_figures()["exact"] == "exact"
    from ftbench.cli.train_and_compare import SELECT_BY
    from ftbench.recipes.run_folder import RunFolder

    assert "exact" in SELECT_BY.choices  # --select-by and sweep --metric offer its figure
    assert RunFolder("run").predictions("exact", "after").endswith("exact_predictions_after.jsonl")


def test_a_pairwise_scorer_compares_without_special_cases(monkeypatch, tmp_path):
    monkeypatch.setitem(SCORERS._code, "longer", PreferenceJudge)
    a, b = _write(tmp_path / "a.jsonl", ROWS_A), _write(tmp_path / "b.jsonl", ROWS_B)
    out = tmp_path / "page.html"
    result = run_cli("compare", a, b, "--scorer", "longer", "--json", "--html", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["comparison"]["win-rate"]["after"] == 0.25
    assert "win-rate" in out.read_text()
    assert "win-rate" not in judged_figures()  # no per-side figure: it cannot choose a checkpoint


def test_builtin_scorers_declare_what_used_to_be_decided_by_name():
    similarity, gsm8k = SCORERS.create("similarity"), SCORERS.create("gsm8k")
    assert similarity.prediction_file("before") == "predictions_before.jsonl"
    assert gsm8k.prediction_file("after") == "gsm8k_predictions_after.jsonl"
    assert (similarity.primary, gsm8k.primary) == ("rouge-l", "strict-match")
    assert list(judged_figures()) == ["bleu-4", "rouge-1", "rouge-2", "rouge-l", "strict-match", "flexible-extract"]

    class Settings:
        max_new_tokens, gsm8k_max_new_tokens = 128, None

    assert gsm8k.generation_length(Settings) == 128  # gsm8k_max_new_tokens falls back to max_new_tokens
    Settings.gsm8k_max_new_tokens = 300
    assert (gsm8k.generation_length(Settings), similarity.generation_length(Settings)) == (300, 128)
    assert gsm8k.recognises(["so\n#### 4", "#### 5\n"]) and not similarity.recognises(["#### 4"])


def test_scorer_option_and_its_old_name(tmp_path):
    path = _write(
        tmp_path / "g.jsonl",
        [
            {"prompt": "q", "predict": "#### 4", "label": "x\n#### 4"},
            {"prompt": "q", "predict": "#### 5", "label": "x\n#### 6"},
        ],
    )
    new = run_cli("score", path, "--scorer", "gsm8k", "--json")
    old = run_cli("score", path, "--task", "gsm8k", "--json")
    assert new.exit_code == old.exit_code == 0
    assert json.loads(new.stdout) == json.loads(old.stdout)
    assert json.loads(new.stdout)["scorer"] == "gsm8k"
    both = run_cli("score", path, "--scorer", "gsm8k", "--task", "similarity")
    assert both.exit_code == 2 and "--task is the old name of --scorer" in both.output
    unknown = run_cli("score", path, "--scorer", "nope")
    assert unknown.exit_code == 2 and "similarity" in unknown.output and "gsm8k" in unknown.output
    assert "--task" not in run_cli("score", "--help").output  # hidden: one word, one meaning
    assert "--scorer" in run_cli("compare", "--help").output
    until = run_cli("score", path, "--until", "Question:")
    assert until.exit_code == 2 and "--until" in until.output


def test_listing_scorers_in_help_imports_no_scoring_code():
    code = (
        "import sys; from click.testing import CliRunner; from ftbench.cli import cli; "
        "out = CliRunner().invoke(cli, ['score', '--help']).output; "
        "assert 'similarity|gsm8k' in out, out; "
        "heavy = {'torch', 'lm_eval', 'jieba', 'ftbench.metrics.scoring', 'ftbench.metrics.gsm8k'}"
        " & set(sys.modules); "
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-1000:]


def test_select_by_in_a_yaml_is_checked_against_the_scorers(tmp_path):
    from ftbench.api.errors import InputError
    from ftbench.recipes.run_settings import prepare_run

    data = _write(tmp_path / "d.jsonl", [{"instruction": f"q{i}", "input": "", "output": "a"} for i in range(10)])
    config = tmp_path / "c.yaml"
    config.write_text(f"model_name_or_path: tiny\ndataset: {data}\nselect_by: rouge-9\n")
    with pytest.raises(InputError, match=r"c.yaml:3.*select_by: 'rouge-9' is not one of eval_loss, bleu-4"):
        prepare_run(str(config), output_dir=str(tmp_path / "run"), gsm8k="none")
    config.write_text(f"model_name_or_path: tiny\ndataset: {data}\nselect_by: flexible-extract\n")
    _, rs, _ = prepare_run(str(config), output_dir=str(tmp_path / "run"), gsm8k="none")
    assert rs.select_by == "flexible-extract"
