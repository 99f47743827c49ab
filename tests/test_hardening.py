"""Issue 12's reproducers, each a regression test through the real CLI: bad input is one located line and exit
1 or 2, never an internal error (exit 3), a hang or a blow-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from helpers import REPO, run_cli, validate_json

from ftbench.api.errors import InputError


def _findings(report: dict) -> list[dict]:
    return report["errors"] + report["warnings"]


@pytest.mark.parametrize("role", [["human"], {"a": 1}, 5])
def test_sharegpt_role_of_wrong_type(tmp_path, role):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"conversations": [{"from": role, "value": "q"}, {"from": "gpt", "value": "a"}]}]))
    code, report = validate_json(str(path))
    assert code == 1
    assert [(f["code"], f["path"]) for f in report["errors"]] == [("wrong-type", "[0].conversations[0].from")]
    assert "expected a role string" in report["errors"][0]["message"]


@pytest.mark.parametrize(
    "entry, code, message",
    [
        ({"file_name": 5}, "dataset-info-invalid", "file_name must be a path"),
        ({"file_name": "a.json", "columns": ["prompt"]}, "dataset-info-invalid", '"columns" must map'),
        ({"file_name": "a.json", "columns": 5}, "dataset-info-invalid", '"columns" must map'),
        ({"file_name": "a.json", "columns": {"prompt": None}}, "dataset-info-invalid", "maps no text column"),
        ({"file_name": "a.json", "formatting": "sharegpt", "tags": "role"}, "dataset-info-invalid", '"tags" must map'),
        (
            {"file_name": "a.json", "formatting": "sharegpt", "tags": {"user_tag": ["human"]}},
            "dataset-info-invalid",
            '"tags" must map',
        ),
        ({"file_name": "a.json", "formatting": ["alpaca"]}, "dataset-info-invalid", "unknown formatting"),
        (None, "dataset-info-invalid", "must be an object"),
    ],
)
def test_dataset_info_values_of_wrong_type(tmp_path, entry, code, message):
    (tmp_path / "a.json").write_text('[{"instruction": "q", "output": "a"}]')
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": entry}))
    exit_code, report = validate_json("--dataset-info", str(tmp_path / "dataset_info.json"), "--dataset", "d")
    assert exit_code == 1
    assert [(f["code"], f["path"], f["line"]) for f in report["errors"]] == [(code, report["errors"][0]["path"], 1)]
    assert report["errors"][0]["path"].startswith("d")
    assert message in report["errors"][0]["message"]


def test_deep_nesting_is_located(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"a":' * 998)
    code, report = validate_json(str(path))
    assert code == 1
    assert [(f["code"], f["line"], f["column"]) for f in report["errors"]] == [("nesting-too-deep", 1, 5 * 500 + 1)]


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_special_files_refused_by_stat(tmp_path, special):
    if special == "fifo":
        special = str(tmp_path / "pipe.json")
        os.mkfifo(special)
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": {"file_name": special}}))
    t = time.perf_counter()
    result = run_cli("validate", special)
    assert result.exit_code == 2 and "not a regular file" in result.output
    code, report = validate_json("--dataset-info", str(tmp_path / "dataset_info.json"))
    assert code == 1 and report["errors"][0]["code"] in ("not-a-file", "unsupported-file-type")
    assert report["errors"][0]["path"] == "d.file_name"
    assert time.perf_counter() - t < 10


def test_huge_integer_is_located_on_its_line(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(
        "[\n"
        + '{"instruction": "q", "output": "a"},\n' * 3
        + '{"instruction": "q", "output": '
        + "1" * 100_000
        + "}\n]\n"
    )
    code, report = validate_json(str(path))
    assert code == 1
    codes = {(f["code"], f["line"]) for f in report["errors"]}
    assert ("number-too-long", 5) in codes
    assert ("wrong-type", 5) in codes  # repaired to 0, so the record is still checked: output is not a string
    assert "set_int_max_str_digits" not in json.dumps(report)


def test_large_one_line_file_is_diagnosed_in_bounded_time(tmp_path):
    path = tmp_path / "oneline.json"
    one = "{'instruction': 'q', 'output': True}, "
    path.write_text("[" + one * (8 * 2**20 // len(one)) + "{}]")
    t = time.perf_counter()
    code, report = validate_json(str(path))
    assert time.perf_counter() - t < 30
    assert code == 1
    assert [f["code"] for f in report["errors"]] == ["single-quotes", "python-literal"]
    assert report["warnings"][-1]["code"] == "too-many-findings"


def test_json_size_limit_is_a_finding(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"instruction": "q", "output": "a"}]')
    env = {**os.environ, "FTBENCH_MAX_JSON_MB": "0.00001"}
    out = subprocess.run(
        [sys.executable, "-m", "ftbench", "validate", "--json", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert [f["code"] for f in json.loads(out.stdout)["errors"]] == ["file-too-large"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("max_new_tokens: 0", "max_new_tokens: must be > 0, got 0"),
        ("threads: -2", "threads: must be > 0, got -2"),
        ("threads: 100000", "threads: must be <= 1024, got 100000"),
        ("gsm8k_limit: -3", "gsm8k_limit: must be > 0, got -3"),
        ("max_new_tokens: 99999999", "max_new_tokens: must be <= 1048576, got 99999999"),
        ("learning_rate: .nan", "learning_rate: expected a finite number, got nan"),
        ("adam_beta2: .inf", "adam_beta2: expected a finite number, got inf"),
    ],
)
def test_train_and_compare_settings_refused_before_any_model(tmp_path, line, message):
    from ftbench.recipes.run_settings import prepare_run

    config = tmp_path / "c.yaml"
    config.write_text(f"model_name_or_path: tiny\ndataset: {REPO}/datasets/alpaca_demo.json\n{line}\n")
    with pytest.raises(InputError) as err:
        prepare_run(str(config), output_dir=str(tmp_path / "run"))
    assert str(err.value) == f"{config}:3: {message}"


def test_yaml_alias_bomb_refused_quickly(tmp_path):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefg", "bcdefgh")]
    config = tmp_path / "bomb.yaml"
    config.write_text("\n".join(lines) + "\nlora_rank: *h\n")
    t = time.perf_counter()
    result = run_cli("train-and-compare", "--config", str(config), "--output-dir", str(tmp_path / "run"))
    assert time.perf_counter() - t < 10
    assert result.exit_code == 1
    assert "YAML aliases (*name) expand to more than 100,000 values" in result.output
    assert len(result.output) < 500


def test_score_lone_surrogate_is_located(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "q", "label": "a", "predict": "\\ud800 x"}\n')
    result = run_cli("score", str(path))
    assert result.exit_code == 1
    assert f"{path}:1 [0].predict" in result.output and "lone surrogate" in result.output


def test_score_metric_names_with_commas(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "q", "label": "#### 4", "predict": "#### 4"}\n')
    result = run_cli("score", str(path), "--task", "gsm8k", "--metrics", "exact_match,strict-match", "--json")
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)["metrics"]) == ["exact_match,strict-match"]


def test_compare_metrics_with_string_figures(tmp_path):
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text('{"after": {"rouge-l": "61.8"}}')
    result = run_cli("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert result.exit_code == 1
    assert "after.rouge-l: expected a number or null, got '61.8'" in result.output


def test_compare_json_array_of_prediction_rows(tmp_path):
    rows = [{"prompt": "q", "label": "a b", "predict": "a b"}]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "b.jsonl").write_text(json.dumps(rows[0]) + "\n")
    result = run_cli("compare", str(tmp_path / "a.json"), str(tmp_path / "b.jsonl"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "predictions"


# --- every structure read against its declared schema: a bad type, a value out of range, NaN, through the CLI ---


def _one_error_line(result) -> str:
    """The single `ftbench: error:` line of a failed command (no traceback, nothing else on stderr)."""
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("ftbench: error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.mark.parametrize(
    "line, message",
    [
        ("lora_rank: eight", "lora_rank: expected an integer, got 'eight'"),
        ("lora_dropout: 1.5", "lora_dropout: must be in [0, 1), got 1.5"),
        ("cutoff_len: 2000000", "cutoff_len: must be <= 1048576, got 2000000"),
        ("seed: 99999999999", "seed: must be <= 4294967295, got 99999999999"),
        ("warmup_ratio: .nan", "warmup_ratio: expected a finite number, got nan"),
        ("save_total_limit: 0", "save_total_limit: must be > 0, got 0"),
    ],
)
def test_training_yaml_schema_through_the_cli(tmp_path, line, message):
    config = tmp_path / "t.yaml"
    config.write_text(
        f"model_name_or_path: tiny\ndataset: {REPO}/datasets/alpaca_demo.json\noutput_dir: {tmp_path / 'out'}\n{line}\n"
    )
    result = run_cli("train", str(config))
    assert result.exit_code == 1
    assert _one_error_line(result) == f"ftbench: error: {config}:4: {message}"


@pytest.mark.parametrize(
    "entry, path, message",
    [
        ({"file_name": "a.json", "ranking": "true"}, "d.ranking", "ranking: expected true or false, got 'true'"),
        ({"file_name": "a.json", "num_samples": 0}, "d.num_samples", "num_samples: must be > 0, got 0"),
        (
            {"file_name": "a.json", "num_samples": float("nan")},
            "d.num_samples",
            "num_samples: expected an integer or null, got nan",
        ),
        (
            {"file_name": "a.json", "columns": {"prompt": 5}},
            "d.columns.prompt",
            '"columns" must map column names to the data\'s keys: prompt: expected a string or null, got 5',
        ),
        (
            {"file_name": "a.json", "formatting": "xml"},
            "d.formatting",
            "unknown formatting: 'xml' is not one of alpaca, sharegpt, openai",
        ),
    ],
)
def test_dataset_info_schema_through_the_cli(tmp_path, entry, path, message):
    (tmp_path / "a.json").write_text('[{"instruction": "q", "output": "a"}]')
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"d": entry}))
    result = run_cli("validate", "--dataset-info", str(info))
    assert result.exit_code == 1 and "Traceback" not in result.output
    findings = [line.strip() for line in result.output.splitlines() if "error [dataset-info-invalid]" in line]
    assert len(findings) == 1 and findings[0].startswith(f"{info}:1 {path}: error [dataset-info-invalid] {message}")


@pytest.mark.parametrize(
    "command, row, message",
    [
        (
            ["score"],
            {"prompt": "q", "predict": "a", "label": 5},
            ":1 [0].label: error [bad-prediction-record] expected a string, got 5",
        ),
        (
            ["score"],
            {"prompt": ["q"], "predict": "a", "label": "a"},
            ":1 [0].prompt: error [bad-prediction-record] expected a string or null, got ['q']",
        ),
        (
            ["score", "--task", "gsm8k"],
            '{"predict": "#### 4", "label": 1e400}',
            ":1 [0].label: error [bad-prediction-record] expected a finite number, got inf",
        ),
        (["score", "--task", "gsm8k"], {"predict": "#### 4", "label": float("nan")}, ":1:32 [0]: error [nan-infinity]"),
        (
            ["compare"],
            {"prompt": "q", "predict": None, "label": "a"},
            ":1 [0].predict: error [bad-prediction-record] expected a string, got null",
        ),
    ],
)
def test_prediction_row_schema_through_the_cli(tmp_path, command, row, message):
    path = tmp_path / "p.jsonl"
    path.write_text((row if isinstance(row, str) else json.dumps(row)) + "\n")
    args = [*command, str(path)] + ([str(path)] if command == ["compare"] else [])
    result = run_cli(*args)
    assert result.exit_code == 1
    assert _one_error_line(result).startswith(f"ftbench: error: {path}{message}")


@pytest.mark.parametrize(
    "line, message",
    [
        ("threads: 5000", "threads: must be <= 1024, got 5000"),
        ("max_new_tokens: fast", "max_new_tokens: expected an integer or null, got 'fast'"),
        ("learning_rate: .inf", "learning_rate: expected a finite number, got inf"),
    ],
)
def test_train_and_compare_yaml_schema_through_the_cli(tmp_path, line, message):
    config = tmp_path / "c.yaml"
    config.write_text(f"model_name_or_path: tiny\ndataset: {REPO}/datasets/alpaca_demo.json\n{line}\n")
    result = run_cli("train-and-compare", "--config", str(config), "--output-dir", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert _one_error_line(result) == f"ftbench: error: {config}:3: {message}"
    assert not (tmp_path / "run").exists()  # refused before any folder, data or model


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "--threads", "5000"], "5000 is not in the range 1<=x<=1024"),
        (["train-and-compare", "--max-new-tokens", "2000000"], "2000000 is not in the range 1<=x<=1048576"),
    ],
)
def test_option_bounds_match_the_schema(tmp_path, args, message):
    result = run_cli(*args, str(tmp_path / "data.json"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in result.output


def test_metrics_json_nan_figure_is_named(tmp_path):
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text('{"after": {"rouge-l": NaN}}')
    result = run_cli("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert result.exit_code == 1
    assert (
        _one_error_line(result) == f"ftbench: error: {tmp_path / 'a.json'}: after.rouge-l: expected a finite "
        "number, got nan"
    )


# --- issue 22: CSV as `datasets` reads it --------------------------------------------------------------------


def _datasets_csv(path, cache) -> list[dict]:
    """The records `datasets`' own CSV loader (LLaMA-Factory's reader) makes of a file."""
    from datasets import load_dataset

    return load_dataset("csv", data_files=str(path), split="train", cache_dir=str(cache)).to_list()


def _ftbench_csv(path) -> tuple[list[dict], list]:
    from ftbench.data.reader import read_records

    findings: list = []
    return [r.value for r in read_records(str(path), findings)], findings


def test_csv_records_equal_datasets_loader_with_a_50mb_cell(tmp_path):
    big = "x" * (50 * 2**20)
    path = tmp_path / "qa.csv"
    path.write_text(
        "instruction,input,output,score\n"
        f'"Write two lines\nof verse",,"Roses, ""red""\nviolets",1\n'
        f"big,NA,{big},2\n"
        "\n"
        'q"uote,None,"a"b,\n'
        'last,x,"multi\r\nline",4\n',
        encoding="utf-8",
    )
    ours, findings = _ftbench_csv(path)
    assert findings == []
    assert ours == _datasets_csv(path, tmp_path / "cache")
    assert ours[1]["output"] == big
    code, report = validate_json(str(path), "--no-near-dup")
    assert code in (0, 1) and not [f for f in report["errors"] if f["code"] == "invalid-csv"]


@pytest.mark.parametrize(
    "text, line",
    [
        ('instruction,output\n"a,b\nc,d\n', 2),
        ('instruction,output\nq,a\nq2,"a2 ""quoted""\nmore\n', 3),
        ('instruction,output\nq,a\n\nq3,"x"y\nq4,"open\n', 5),
    ],
)
def test_csv_unclosed_quote_is_an_error_at_its_line(tmp_path, text, line):
    path = tmp_path / "u.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(Exception) as err:
        _datasets_csv(path, tmp_path / "cache")  # pandas, so datasets and LLaMA-Factory, refuse the file
    causes = [err.value]
    while causes[-1].__cause__ or causes[-1].__context__:
        causes.append(causes[-1].__cause__ or causes[-1].__context__)
    assert any("EOF inside string" in str(c) for c in causes)
    code, report = validate_json(str(path), "--no-near-dup")
    assert code == 1
    errors = [f for f in report["errors"] if f["code"] == "invalid-csv"]
    assert [(f["line"], f["file"]) for f in errors] == [(line, str(path))]
    assert "never closed" in errors[0]["message"] and "close the quote" in errors[0]["hint"]


# --- issue 22: inputs that would take the machine ----------------------------------------------------------------


def _peak_rss_run(args: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    """Run `ftbench ARGS` in a child process; (its result, its peak resident memory in GB)."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(proc.stdout); sys.stderr.write(proc.stderr)\n"
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(proc.returncode)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-m", "ftbench", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    peak = [line for line in out.stderr.splitlines() if line.startswith("PEAK_KB")]
    return out, int(peak[-1].split()[1]) / 2**20


@pytest.mark.parametrize("case", ["long-prompt", "long-default-system"])
def test_a_prompt_longer_than_the_context_keeps_its_last_tokens_in_bounded_memory(tmp_path, tiny_model, case):
    """A 200,000-character prompt (or a 120 KB --default-system on every sample) allocated 14-40 GB of attention
    and died (exit 3): prompts keep the model's context (4,096 tokens for tiny), in batches small enough."""
    import random

    rng = random.Random(0)
    long = " ".join(rng.choice(["alpha", "beta", "gamma", "你好", "世界"]) for _ in range(50_000))[:200_000]
    data = tmp_path / "d.json"
    if case == "long-prompt":
        data.write_text(json.dumps([{"instruction": long, "output": "ok"}], ensure_ascii=False), encoding="utf-8")
        extra = []
    else:
        data.write_text(json.dumps([{"instruction": f"q{i}", "output": "a"} for i in range(2)]), encoding="utf-8")
        # 120 KB, ASCII: one command-line argument may hold at most 128 KiB
        extra = ["--default-system", " ".join(rng.choice(["alpha", "beta", "gamma"]) for _ in range(30_000))[:120_000]]
    out = tmp_path / "p.jsonl"
    proc, peak_gb = _peak_rss_run(
        ["predict", "--model", "tiny", "--data", str(data), "-o", str(out), "--max-new-tokens", "4", *extra]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert peak_gb < 2, f"peak RSS {peak_gb:.2f} GB"
    assert "longer than 4,096 tokens (the model's context) keep their last 4,096 tokens" in proc.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == (1 if case == "long-prompt" else 2)


def test_max_prompt_tokens_keeps_the_last_tokens(tmp_path, tiny_model):
    from ftbench.inference.models import load_tokenizer

    data = tmp_path / "d.json"
    data.write_text(
        json.dumps([{"instruction": "one two three four five six seven eight nine ten " * 4, "output": "ok"}]),
        encoding="utf-8",
    )
    out = tmp_path / "p.jsonl"
    result = run_cli(
        "predict",
        "--model",
        "tiny",
        "--data",
        str(data),
        "-o",
        str(out),
        "--max-new-tokens",
        "2",
        "--max-prompt-tokens",
        "12",
    )
    assert result.exit_code == 0, result.output
    assert "1 prompt(s) longer than 12 tokens (--max-prompt-tokens) keep their last 12 tokens" in result.output
    prompt = json.loads(out.read_text(encoding="utf-8"))["prompt"]
    assert len(load_tokenizer("tiny")(prompt, add_special_tokens=False)["input_ids"]) <= 12
    assert "assistant" in prompt  # the generation prompt at the end is kept


@pytest.mark.parametrize(
    "line, message",
    [
        ("learning_rate: 1.0e+39", "learning_rate: must be <= 10.0, got 1e+39"),
        ("learning_rate: 1e39", "learning_rate: must be <= 10.0, got '1e39'"),  # YAML 1.1 reads it as text
        ("learning_rate: 11", "learning_rate: must be <= 10.0, got 11"),
    ],
)
def test_learning_rate_within_a_sane_range(tmp_path, line, message):
    config = tmp_path / "t.yaml"
    config.write_text(
        f"model_name_or_path: tiny\ndataset: {REPO}/datasets/alpaca_demo.json\noutput_dir: {tmp_path / 'out'}\n{line}\n"
    )
    result = run_cli("train", str(config))
    assert result.exit_code == 1
    assert _one_error_line(result) == f"ftbench: error: {config}:4: {message}"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--request-timeout", "inf"], "inf is not in the range 1.0<=x<=86400.0"),
        (["--request-timeout", "nan"], "'nan' is not a finite number"),
        (["--request-timeout", "1e300"], "1e+300 is not in the range 1.0<=x<=86400.0"),
        (["--temperature", "nan"], "'nan' is not a finite number"),
        (["--seed", "99999999999999999999"], "is not in the range 0<=x<=4294967295"),
        (["--base-url", "http://[::1/v1"], "--base-url http://[::1/v1: not a URL ftbench can reach"),
        (["--base-url", "http://127.0.0.1:99999/v1"], "not a URL ftbench can reach"),
        (["--base-url", "http:///v1"], "not a URL ftbench can reach"),
    ],
)
def test_engine_numbers_and_urls_are_one_line(tmp_path, tiny_model, args, message):
    result = run_cli(
        "predict",
        "--model",
        "tiny",
        "--data",
        "datasets/alpaca_demo.json",
        "-o",
        str(tmp_path / "p.jsonl"),
        "--engine",
        "openai",
        *args,
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and message in result.output
    assert len([line for line in result.output.splitlines() if "error:" in line]) == 1
    assert not (tmp_path / "p.jsonl").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr-factors", "inf"], "inf is not a finite number"),
        (["--lr-factors", "1e308"], "--lr-factors 1e+308: learning_rate: must be <= 10.0, got "),
        (["--vary", "lr", "--lr-factors", "1,500000"], "--lr-factors 500000: learning_rate: must be <= 10.0"),
        (["--vary", "rank", "--ranks", "4,100000000"], "100000000 must be > 0 and <= 65536"),
        (["--vary", "rank", "lora_rank=40000"], "--ranks 80000: lora_rank: must be <= 65536, got 80000"),
        (["--models", "no-such-model"], "cannot load the config of 'no-such-model'"),
        (["--models", "./no/such/folder"], "./no/such/folder: no such model folder"),
        (["--devices", "abc"], "--devices abc: abc is not a GPU here"),
    ],
)
def test_sweep_refuses_every_setting_before_the_first_run(tmp_path, tiny_model, args, message):
    """A sweep refused a bad learning rate, rank, model or device only after its baseline had trained (hours on a
    real model), and ran --devices abc on the CPU, reporting "done on GPU abc"."""
    result = run_cli("sweep", "--model", "tiny", "--output-dir", str(tmp_path / "s"), *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and message in result.output, result.output
    assert len([line for line in result.output.splitlines() if "error:" in line]) == 1
    assert not (tmp_path / "s" / "runs").exists()  # nothing trained
