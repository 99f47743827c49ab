"""`ftbench score` as users run it: files in, figures, uncertainty, signatures, samples and clear errors out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO, SHARED_GSM8K, run_cli

GSM8K_TEST = os.path.join(SHARED_GSM8K, "test.jsonl")

LLAMAFACTORY_ROWS = [
    {
        "prompt": "system\nYou are a helpful assistant.\nuser\n用一句话介绍 LoRA。\nassistant\n",
        "predict": "LoRA 只训练插入的低秩矩阵，原模型权重保持冻结。",
        "label": "LoRA 冻结原模型权重，只训练低秩矩阵。",
    },
    {
        "prompt": "user\nTranslate: 今天很热。\nassistant\n",
        "predict": "It is hot today.",
        "label": "Today is very hot.",
    },
    {"prompt": "user\n总结一下。\nassistant\n", "predict": "", "label": "没有内容。"},
    {
        "prompt": "user\n列出三点。\nassistant\n",
        "predict": "1. 数据\n2. 模型\n\n3. 评测",
        "label": "1. 数据\n2. 评测\n3. 模型",
    },
]


def write_jsonl(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")  # as LLaMA-Factory writes them
    return str(path)


def score_json(*args) -> tuple[int, dict]:
    result = run_cli("score", "--json", *args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def _console_script() -> str:
    return os.path.join(os.path.dirname(sys.executable), "ftbench")


def test_similarity_json_shape_and_values(tmp_path):
    from ftbench.metrics.scoring import score_pairs

    path = write_jsonl(tmp_path / "generated_predictions.jsonl", LLAMAFACTORY_ROWS)
    code, out = score_json(path)
    assert code == 0
    assert {"metrics", "n", "stderr", "ci95", "signatures"} <= set(out)
    assert out["n"] == 4 and out["task"] == "similarity"
    expected = score_pairs([r["predict"] for r in LLAMAFACTORY_ROWS], [r["label"] for r in LLAMAFACTORY_ROWS])
    assert out["metrics"] == expected.metrics
    for figure in ("bleu-4", "rouge-1", "rouge-2", "rouge-l"):
        assert set(out[key][figure] is not None for key in ("stderr", "ci95")) == {True}
        lo, hi = out["ci95"][figure]
        assert lo <= out["metrics"][figure] <= hi
        assert out["signatures"][figure].startswith(figure + "|def:llamafactory")
    assert "tok:jieba-" in out["signatures"]["rouge-l"] and "smooth:nltk-method3" in out["signatures"]["bleu-4"]


def test_text_report_and_samples_file(tmp_path):
    path = write_jsonl(tmp_path / "generated_predictions.jsonl", LLAMAFACTORY_ROWS)
    samples = tmp_path / "samples.jsonl"
    result = run_cli("score", path, "--samples", str(samples))
    assert result.exit_code == 0
    assert "bleu-4" in result.stdout and "95% CI" in result.stdout and "signatures:" in result.stdout
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert rows[2]["rouge-1"] == 0.0 and rows[2]["bleu-4"] == 0.0  # empty prediction


def test_gsm8k_samples_and_diagnosis(tmp_path):
    rows = [
        {"prompt": "q", "predict": "#### 18\n\nQuestion: A robe takes 2 bolts", "label": "so 18\n#### 18"},
        {"prompt": "q", "predict": "The answer is 3.", "label": "#### 3"},
        {"prompt": "q", "predict": "#### 70000\nProfit: $70,000.00", "label": "#### 70000"},
        {"prompt": "q", "predict": "#### 5", "label": "#### 6"},
    ]
    path = write_jsonl(tmp_path / "preds.jsonl", rows)
    samples = tmp_path / "s.jsonl"
    code, out = score_json(path, "--task", "gsm8k", "--samples", str(samples))
    assert code == 0
    assert out["metrics"] == {"exact_match,strict-match": 0.5, "exact_match,flexible-extract": 0.25}
    assert set(out["disagreement"]["causes"]) == {"text-after-answer", "no-marker", "number-format"}
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(lines) == 4
    assert [(r["strict"], r["flexible"]) for r in lines] == [
        ("18", "2"),
        ("[invalid]", "3."),
        ("70000", "$70,000.00"),
        ("5", "5"),
    ]
    assert [r["strict_correct"] for r in lines] == [True, False, True, False]
    assert [r["flexible_correct"] for r in lines] == [False, True, False, False]
    assert lines[0]["target"] == "so 18\n#### 18"
    text = run_cli("score", path, "--task", "gsm8k").stdout
    assert "Why the two differ" in text and "text-after-answer" in text and "line 1:" in text


def test_lm_eval_samples_file_is_read(tmp_path):
    rows = [
        {
            "doc_id": 0,
            "doc": {"question": "q"},
            "target": "x\n#### 4",
            "arguments": {},
            "resps": [["#### 4"]],
            "filtered_resps": ["4"],
        },
        {"doc_id": 1, "doc": {"question": "q"}, "target": "#### 5", "resps": [["5"]], "filtered_resps": ["[invalid]"]},
    ]
    code, out = score_json(write_jsonl(tmp_path / "samples_gsm8k.jsonl", rows), "--task", "gsm8k")
    assert code == 0 and out["format"] == "lm-eval-samples"
    assert out["metrics"]["exact_match,strict-match"] == 0.5


@pytest.mark.parametrize(
    "rows,expected",
    [
        ([{"prompt": "p", "label": "l"}], ":1 [0].predict: error"),
        ([{"predict": "a", "label": "b"}, {"predict": "a", "output": "b"}], ":2 [1].label: error"),
        ([{"predict": "a", "label": None}], "[0].label: error [bad-prediction-record] expected a string, got null"),
        ([["a", "b"]], ":1 [0]: error"),
    ],
)
def test_bad_records_are_one_located_line(tmp_path, rows, expected):
    result = run_cli("score", write_jsonl(tmp_path / "bad.jsonl", rows))
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and expected in message and "Traceback" not in message


def test_syntax_error_line_is_reported(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"predict": "a", "label": "b"}\n{"predict": "a", "label": "b"\n', encoding="utf-8")
    result = run_cli("score", str(path))
    assert result.exit_code == 1
    assert f"{path}:2" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_usage_errors(tmp_path):
    assert run_cli("score", str(tmp_path / "missing.jsonl")).exit_code == 2
    path = write_jsonl(tmp_path / "p.jsonl", LLAMAFACTORY_ROWS)
    result = run_cli("score", path, "--metrics", "bleu")
    assert result.exit_code == 2 and "unknown metric 'bleu'" in result.stderr
    assert run_cli("score", path, "--until", "x").exit_code == 2


def test_console_script_on_real_files(tmp_path):
    """The installed `ftbench` script, as a user runs it, on a LLaMA-Factory file and on real GSM8K answers."""
    path = write_jsonl(tmp_path / "generated_predictions.jsonl", LLAMAFACTORY_ROWS * 3)
    proc = subprocess.run([_console_script(), "score", path, "--json"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n"] == 12
    if not os.path.exists(GSM8K_TEST):
        pytest.skip(f"GSM8K test split not found at {GSM8K_TEST} (CI clones the repo next to shared/)")
    with open(GSM8K_TEST, encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh][:300]
    rows = []
    for i, doc in enumerate(docs):  # gold solutions, some rewritten the ways models get them wrong
        answer = doc["answer"]
        if i % 3 == 1:
            answer += "\n\nQuestion: Tom has 3 apples and buys 4 more.\nAnswer: 3 + 4 = 7"
        elif i % 3 == 2:
            answer = answer.split("####")[0] + "The answer is " + answer.split("#### ")[-1]
        rows.append({"prompt": doc["question"], "predict": answer, "label": doc["answer"]})
    path = write_jsonl(tmp_path / "gsm8k_predictions.jsonl", rows)
    proc = subprocess.run(
        [_console_script(), "score", path, "--task", "gsm8k", "--json"], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["metrics"]["exact_match,strict-match"] == pytest.approx(2 / 3)
    # flexible-extract reads the 7 of the made-up next question: right only where the answer is 7
    sevens = sum(1 for i, doc in enumerate(docs) if i % 3 == 1 and doc["answer"].endswith("#### 7"))
    assert out["metrics"]["exact_match,flexible-extract"] == pytest.approx((200 + sevens) / 300)
    causes = out["disagreement"]["causes"]
    assert causes["text-after-answer"]["count"] == 100 - sevens and causes["no-marker"]["count"] == 100


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from ftbench.cli import cli; import ftbench.cli.score, ftbench.metrics, ftbench.evaluation.tasks; "
        "print(sorted(m for m in ('torch', 'transformers', 'lm_eval', 'datasets', 'jieba', 'nltk', 'sacrebleu') "
        "if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
