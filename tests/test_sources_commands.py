"""One loader for every command: `train`, `predict`, `eval`, `augment` and `train-and-compare` read Parquet, Arrow,
CSV and folders through the same code as `validate`, with the same located errors (tiny model, a few steps)."""

from __future__ import annotations

import json
import os
import shutil
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPO, run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ARITHMETIC = os.path.join(REPO, "datasets", "arithmetic_demo.jsonl")


def arithmetic_rows(n: int) -> list[dict]:
    with open(ARITHMETIC, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh][:n]


@pytest.fixture
def lf_dir(tmp_path):
    """A LLaMA-Factory data folder: GSM8K-style rows as Parquet (pyarrow) and as an Arrow stream (`datasets`),
    a preference set, and a Parquet file with a null answer."""
    import datasets

    rows = arithmetic_rows(40)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "arith.parquet")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    broken = [dict(r) for r in rows[:6]]
    broken[4]["answer"] = None
    pq.write_table(pa.Table.from_pylist(broken), tmp_path / "broken.parquet")
    (tmp_path / "dpo.json").write_text(
        json.dumps([{"instruction": "q", "chosen": "a", "rejected": "b"}]), encoding="utf-8"
    )
    gsm = {"query": "question", "response": "answer"}
    info = {
        "arith_parquet": {"file_name": "arith.parquet", "columns": gsm},
        "arith_arrow": {"file_name": "saved/data-00000-of-00001.arrow", "columns": gsm},
        "broken": {"file_name": "broken.parquet", "columns": gsm},
        "dpo": {
            "file_name": "dpo.json",
            "ranking": True,
            "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"},
        },
        "sampled": {"file_name": "arith.parquet", "columns": gsm, "split": "train[:10]", "num_samples": 6},
    }
    (tmp_path / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return tmp_path


def train_config(tmp_path, dataset: str, data_dir, **extra) -> str:
    text = textwrap.dedent(f"""\
        model_name_or_path: tiny
        dataset_dir: {data_dir}
        dataset: {dataset}
        cutoff_len: 128
        lora_rank: 4
        output_dir: {tmp_path / "out"}
        per_device_train_batch_size: 4
        max_steps: 2
        logging_steps: 1
        save_steps: 2
        seed: 42
        """) + "".join(f"{k}: {v}\n" for k, v in extra.items())
    path = tmp_path / "train.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_train_from_parquet_and_arrow_dataset_info_entries(tiny_model, lf_dir, tmp_path):
    config = train_config(tmp_path, "arith_parquet,arith_arrow", lf_dir, val_size=8)
    result = run_cli("train", config, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["train_samples"] == 72 and out["eval_samples"] == 8  # 40 + 40 rows, 8 held out
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


def test_train_stops_at_the_located_error_validate_reports(tiny_model, lf_dir, tmp_path):
    config = train_config(tmp_path, "broken", lf_dir)
    result = run_cli("train", config)
    assert result.exit_code == 1
    name = str(lf_dir / "broken.parquet")
    assert f"{name} [4].answer: error [wrong-type] 'answer' is null" in result.stderr
    assert "Traceback" not in result.output
    validated = run_cli("validate", "-q", "--dataset-info", str(lf_dir), "--dataset", "broken")
    assert validated.stderr.strip() in result.stderr  # the same line, word for word


def test_train_refuses_preference_data_where_it_is_declared(tiny_model, lf_dir, tmp_path):
    result = run_cli("train", train_config(tmp_path, "dpo", lf_dir))
    assert result.exit_code == 1
    assert (
        f"{lf_dir / 'dataset_info.json'}:" in result.stderr
        and "dataset 'dpo' is preference (ranking)" in result.stderr
        and "stage: dpo" in result.stderr
    )


def test_split_and_num_samples_select_the_rows_llamafactory_trains_on(lf_dir, tmp_path):
    """split train[:10], then num_samples 6 drawn with numpy seeded by the training seed, as LLaMA-Factory's
    loader does after transformers.set_seed(seed)."""
    from ftbench.training.config import load_train_config
    from ftbench.training.data import load_training_samples, sample_indexes

    cfg, _ = load_train_config(train_config(tmp_path, "sampled", lf_dir), [])
    samples = load_training_samples(cfg)
    np.random.seed(42)  # what set_seed(42) leaves for LLaMA-Factory's np.random.permutation
    expected = np.random.permutation(10)[:6].tolist()
    assert [s.record for s in samples] == expected
    # more samples than rows: every row once, then draws with replacement (LLaMA-Factory, 10 from 4: q1 q3 q0 q2 q2 q3)
    assert sample_indexes(4, 10, np.random.RandomState(42))[:6] == [1, 3, 0, 2, 2, 3]


def test_predict_reads_parquet_like_json(tiny_model, tmp_path):
    rows = arithmetic_rows(3)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "q.parquet")
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    outputs = []
    for name in ("q.parquet", "q.jsonl"):
        out = tmp_path / f"{name}.out.jsonl"
        result = run_cli(
            "predict",
            "--model",
            "tiny",
            "--data",
            str(tmp_path / name),
            "-o",
            str(out),
            "--max-new-tokens",
            "4",
            "--threads",
            "1",
            "-q",
        )
        assert result.exit_code == 0, result.output
        outputs.append([json.loads(line) for line in out.read_text().splitlines()])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 3
    pq.write_table(pa.Table.from_pylist([{"question": "q", "answer": 5}]), tmp_path / "bad.parquet")
    result = run_cli(
        "predict", "--model", "tiny", "--data", str(tmp_path / "bad.parquet"), "-o", str(tmp_path / "bad.out")
    )
    assert result.exit_code == 1 and "[0].answer: error [wrong-type] 'answer' is a number" in result.stderr


def test_eval_reads_a_parquet_task_file_like_its_json(tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    task_dir = tmp_path / "task"
    shutil.copytree(os.path.join(REPO, "tasks", "sft_similarity"), task_dir)
    with open(task_dir / "example_alpaca.jsonl", encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    pq.write_table(pa.Table.from_pylist(docs), task_dir / "example_alpaca.parquet")
    yaml_text = (task_dir / "sft_similarity.yaml").read_text(encoding="utf-8")
    variants = {
        "json": yaml_text.replace("tasks/sft_similarity/example_alpaca.jsonl", str(task_dir / "example_alpaca.jsonl")),
        "parquet": yaml_text.replace("dataset_path: json", "dataset_path: parquet").replace(
            "tasks/sft_similarity/example_alpaca.jsonl", str(task_dir / "example_alpaca.parquet")
        ),
    }
    rows = {}
    for kind, text in variants.items():
        (task_dir / "sft_similarity.yaml").write_text(text, encoding="utf-8")
        samples = tmp_path / f"{kind}.jsonl"
        result = run_cli(
            "eval",
            "--task",
            str(task_dir / "sft_similarity.yaml"),
            "--model",
            "tiny",
            "--limit",
            "3",
            "--max-gen-toks",
            "4",
            "--threads",
            "1",
            "--samples",
            str(samples),
        )
        assert result.exit_code == 0, result.output
        rows[kind] = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [r["prompt"] for r in rows["parquet"]] == [r["prompt"] for r in rows["json"]]
    assert len(rows["json"]) == 3


def test_augment_fill_keeps_parquet_schema_and_csv(tmp_path):
    table = pa.table(
        {
            "instruction": ["Who are you?", "Hi"],
            "input": ["", ""],
            "output": ["I am {{name}}.", "Hello from {{name}}!"],
            "score": pa.array([1, 2], pa.int16()),
        }
    )
    pq.write_table(table, tmp_path / "identity.parquet")
    result = run_cli(
        "augment",
        "fill",
        str(tmp_path / "identity.parquet"),
        "-o",
        str(tmp_path / "filled.parquet"),
        "--set",
        "name=Qwen",
        "--json",
    )
    assert result.exit_code == 0, result.output
    filled = pq.read_table(tmp_path / "filled.parquet")
    assert filled.schema == table.schema
    assert filled.column("output").to_pylist() == ["I am Qwen.", "Hello from Qwen!"]
    result = run_cli(
        "augment", "fill", str(tmp_path / "identity.parquet"), "-o", str(tmp_path / "filled.json"), "--set", "name=Qwen"
    )
    assert result.exit_code == 2 and "DATA is Parquet" in result.stderr

    (tmp_path / "id.csv").write_text('instruction,input,output\n"Who, exactly?",,"I am {{name}}."\n', encoding="utf-8")
    result = run_cli("augment", "fill", str(tmp_path / "id.csv"), "-o", str(tmp_path / "out.csv"), "--set", "name=Qwen")
    assert result.exit_code == 0, result.output
    code = run_cli("validate", "--json", str(tmp_path / "out.csv"))
    assert code.exit_code == 0
    assert (tmp_path / "out.csv").read_bytes().decode(
        "utf-8"
    ) == 'instruction,input,output\n"Who, exactly?",,I am Qwen.\n'


def test_augment_reads_arrow_records(lf_dir):
    from ftbench.augment.job import load_sources

    reader, name, rows = load_sources(str(lf_dir / "saved" / "data-00000-of-00001.arrow"), None)
    assert reader.name == "alpaca" and len(rows) == 40
    assert rows[3][0] == 3 and rows[3][2].turns[0][1] == rows[3][1]["question"]


def test_train_and_compare_checks_the_same_entries_before_any_model(lf_dir, tmp_path):
    config = train_config(tmp_path, "broken", lf_dir)
    result = run_cli("train-and-compare", "--config", config, "--output-dir", str(tmp_path / "run"), "--gsm8k", "none")
    assert result.exit_code == 1
    assert f"first: {lf_dir / 'broken.parquet'} [4].answer: error [wrong-type]" in result.stderr
    assert json.loads((tmp_path / "run" / "validation.json").read_text())["errors"][0]["record"] == 4
    result = run_cli(
        "train-and-compare",
        "--config",
        train_config(tmp_path, "dpo", lf_dir),
        "--output-dir",
        str(tmp_path / "run2"),
        "--gsm8k",
        "none",
    )
    assert result.exit_code == 1 and "dataset 'dpo' is preference (ranking) data" in result.stderr


def test_train_on_a_hub_entry_that_is_not_available_says_so(tiny_model, lf_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    info = json.loads((lf_dir / "dataset_info.json").read_text())
    info["alpaca_en"] = {"hf_hub_url": "llamafactory/alpaca_en"}
    (lf_dir / "dataset_info.json").write_text(json.dumps(info, indent=2))
    result = run_cli("train", train_config(tmp_path, "alpaca_en", lf_dir))
    assert result.exit_code == 1
    assert (
        "alpaca_en.hf_hub_url: cannot read dataset 'alpaca_en': not checked: hub dataset not available "
        "offline" in result.stderr
    )
