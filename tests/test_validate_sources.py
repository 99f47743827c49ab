"""Every data source LLaMA-Factory reads, validated through the real CLI on real files: Parquet and Arrow (written
by pyarrow and by `datasets`), CSV, text, folders, split/num_samples, hub and script entries. Findings in tables
are located by row (`record`) and by the column as the user named it (`path`), CSV findings also by file line."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPO, located, run_cli, validate_json

GSM8K_ROWS = [
    {"question": "Tom has 3 apples and buys 2 more. How many apples does he have?", "answer": "3 + 2 = 5\n#### 5"},
    {"question": "A box holds 12 eggs. How many eggs are in 3 boxes?", "answer": "12 * 3 = 36\n#### 36"},
    {"question": "", "answer": "#### 0"},  # empty question
    {"question": "Sam reads 10 pages a day. How many pages in a week?", "answer": None},  # null answer
    {"question": "Tom has 3 apples and buys 2 more. How many apples does he have?", "answer": "3 + 2 = 5\n#### 5"},
    {"question": "Hello {{name}}, what is 7 - 4?", "answer": "#### 3"},
]


def write_info(folder, entries: dict) -> str:
    path = os.path.join(folder, "dataset_info.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(entries, fh, indent=2)
    return path


def write_parquet(path, rows, **kwargs) -> str:
    pq.write_table(pa.Table.from_pylist(rows), str(path), **kwargs)
    return str(path)


def write_arrow_stream(path, rows) -> str:
    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return str(path)


def by_code(report) -> dict:
    out: dict = {}
    for f in report["errors"] + report["warnings"] + report.get("notes", []):
        out.setdefault(f["code"], []).append(f)
    return out


def test_the_tutorials_gsm8k_arrow_cache_file_with_its_columns(tmp_path):
    """The tutorial registers the .arrow cache file `datasets` wrote for GSM8K with query/response columns: it is
    read as Arrow (not as broken JSON), LLaMA-Factory's columns apply, and each mistake is located by row and
    column."""
    import datasets

    source = tmp_path / "gsm8k.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in GSM8K_ROWS), encoding="utf-8")
    loaded = datasets.load_dataset("json", data_files=str(source), split="train", cache_dir=str(tmp_path / "cache"))
    cache_file = loaded.cache_files[0]["filename"]
    os.replace(cache_file, tmp_path / "gsm8k-train.arrow")
    info = write_info(
        tmp_path, {"gsm8k": {"file_name": "gsm8k-train.arrow", "columns": {"query": "question", "response": "answer"}}}
    )
    code, report = validate_json("--dataset-info", info, "--no-near-dup")
    assert code == 1
    name = str(tmp_path / "gsm8k-train.arrow")
    assert {(f["code"], f["file"], f["record"], f["path"], f["line"]) for f in report["errors"]} == {
        ("empty-field", name, 2, "[2].question", None),
        ("wrong-type", name, 3, "[3].answer", None),
    }
    null = next(f for f in report["errors"] if f["code"] == "wrong-type")
    assert "'answer' is null" in null["message"]
    warnings = by_code(report)
    assert [(f["record"], f["path"]) for f in warnings["exact-duplicate"]] == [(4, "[4]")]
    assert f"duplicate of {name} [0]" in warnings["exact-duplicate"][0]["message"]
    assert [(f["record"], f["path"]) for f in warnings["placeholder"]] == [(5, "[5].question")]
    assert report["records"] == 6 and report["stats"]["valid_records"] == 4
    assert not {"invalid-utf8", "unquoted-string", "extra-data"} & set(warnings)  # the symptom


def test_parquet_null_missing_and_empty_are_told_apart(tmp_path):
    rows = [
        {"instruction": "Say hi.", "input": None, "output": "Hi!"},  # a null input is no input
        {"instruction": "Say bye.", "input": "", "output": ""},  # an empty output: a warning
        {"instruction": None, "input": "", "output": "x"},  # a null instruction: an error
        {"instruction": "", "input": "", "output": "y"},
    ]  # an empty prompt: an error
    write_parquet(tmp_path / "a.parquet", rows)
    write_parquet(tmp_path / "b.parquet", [{"instruction": "q", "input": ""}])  # no output column at all
    info = write_info(tmp_path, {"a": {"file_name": "a.parquet"}, "b": {"file_name": "b.parquet"}})
    code, report = validate_json("--dataset-info", info, "--no-near-dup")
    assert code == 1
    got = {(f["code"], f["path"], f["record"]) for f in report["errors"] + report["warnings"]}
    assert got == {
        ("empty-output", "[1].output", 1),
        ("wrong-type", "[2].instruction", 2),
        ("empty-field", "[3].instruction", 3),
        ("dataset-column-missing", "b.columns", None),
    }
    messages = {f["code"]: f["message"] for f in report["errors"]}
    assert "'instruction' is null" in messages["wrong-type"]
    assert "'instruction' is empty" in messages["empty-field"]
    assert "column 'output' is in none of the 1 records" in messages["dataset-column-missing"]
    assert "KeyError: 'output'" in messages["dataset-column-missing"]


def test_every_json_check_runs_on_parquet(tmp_path):
    """Duplicates, conflicting outputs, placeholders, lengths and --against overlap, located by row."""
    rows = [
        {"instruction": "Translate 'cat' into French.", "input": "", "output": "chat"},
        {"instruction": "Translate 'cat'  into French.", "input": "", "output": "chat"},  # duplicate of 0
        {"instruction": "Translate 'cat' into French.", "input": "", "output": "le chat"},  # conflicts with 0
        {"instruction": "I am {{name}}.", "input": "", "output": "ok"},
        {"instruction": "Write a long story.", "input": "", "output": "word " * 400},
        {"instruction": "What is the capital of Japan?", "input": "", "output": "Tokyo."},
    ]
    train = write_parquet(tmp_path / "train.parquet", rows)
    test = write_arrow_stream(
        tmp_path / "test.arrow", [{"instruction": "What is the capital of Japan?", "output": "Tokyo"}]
    )
    code, report = validate_json(train, "--against", test, "--cutoff-len", "200", "--no-near-dup")
    assert code == 0
    assert located(report["warnings"]) == {
        ("exact-duplicate", None, "[1]"),
        ("conflicting-outputs", None, "[2]"),
        ("placeholder", None, "[3].instruction"),
        ("too-long", None, "[4]"),
        ("test-overlap-exact", None, "[5]"),
    }
    overlap = next(f for f in report["warnings"] if f["code"] == "test-overlap-exact")
    assert f"{test} [0]" in overlap["message"]
    assert report["stats"]["files"][0]["format"] == "alpaca"


def test_csv_rows_carry_their_file_lines_and_pandas_values(tmp_path):
    """LLaMA-Factory reads CSV with pandas: blank lines skipped, empty cells and NA words null, numeric columns
    numbers. Each finding has the row and the line the row starts on (quoted fields may span lines)."""
    path = tmp_path / "qa.csv"
    path.write_text(
        "instruction,input,output\n"
        '"Write two lines\nof verse",,"Roses are red,\nviolets are blue"\n'  # lines 2-4
        "\n"  # a blank line: skipped
        "Say hi,,\n"  # line 6: empty output cell -> null
        "Is it done?,,None\n"  # line 7: "None" is NA to pandas -> null
        "a,b,c,d\n"  # line 8: one field too many
        "Name a colour,,Red\n",
        encoding="utf-8",
    )  # line 9
    code, report = validate_json(str(path), "--no-near-dup")
    assert code == 1
    assert [(f["code"], f["line"], f["record"], f["path"]) for f in report["errors"]] == [
        ("wrong-type", 6, 1, "[1].output"),
        ("wrong-type", 7, 2, "[2].output"),
        ("csv-field-count", 8, 3, None),
    ]
    assert all("'output' is null" in f["message"] for f in report["errors"][:2])
    assert report["stats"]["valid_records"] == 2

    numbers = tmp_path / "labels.csv"
    numbers.write_text("instruction,output\nIs 4 even?,1\nIs 3 even?,0\n", encoding="utf-8")
    code, report = validate_json(str(numbers), "--no-near-dup")
    assert code == 1
    assert [(f["code"], f["line"], f["path"]) for f in report["errors"]] == [
        ("wrong-type", 2, "[0].output"),
        ("wrong-type", 3, "[1].output"),
    ]
    assert "'output' is a number" in report["errors"][0]["message"]


def test_text_files_are_pretraining_text(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The first document.\n\nThe second document.\nThe first document.\n", encoding="utf-8")
    info = write_info(tmp_path, {"pt": {"file_name": "corpus.txt", "columns": {"prompt": "text"}}})
    for args in ([str(corpus)], ["--dataset-info", info]):
        code, report = validate_json(*args, "--no-near-dup")
        assert code == 0, report
        assert located(report["warnings"]) == {("empty-text", 2, "[1].text"), ("exact-duplicate", 4, "[3]")}
        assert report["stats"]["files"][0]["kind"] == "pretrain" and report["records"] == 4
    # registered without columns, a text file has no 'instruction': said once, with the fix
    info = write_info(tmp_path, {"pt": {"file_name": "corpus.txt"}})
    code, report = validate_json("--dataset-info", info)
    assert code == 1 and [f["code"] for f in report["errors"]] == ["dataset-column-missing"]
    assert '"columns": {"prompt": "text"}' in report["errors"][0]["hint"]


def test_folders_follow_llamafactory(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.json").write_text(json.dumps([{"instruction": "q1", "input": "", "output": "a1"}]), encoding="utf-8")
    (good / "b.jsonl").write_text(json.dumps({"instruction": "q2", "input": "", "output": ""}) + "\n", encoding="utf-8")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.json").write_text("[]", encoding="utf-8")
    (mixed / "b.csv").write_text("instruction,output\nq,a\n", encoding="utf-8")
    tables = tmp_path / "tables"
    tables.mkdir()
    write_parquet(tables / "part-0.parquet", [{"instruction": "q3", "input": "", "output": "a3"}])
    write_parquet(tables / "part-1.parquet", [{"instruction": "q4", "input": "", "output": None}])
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "data.json").write_text("[]", encoding="utf-8")
    (stray / ".DS_Store").write_bytes(b"\0\0")
    info = write_info(
        tmp_path,
        {
            "good": {"file_name": "good"},
            "mixed": {"file_name": "mixed"},
            "tables": {"file_name": "tables"},
            "stray": {"file_name": "stray"},
        },
    )
    code, report = validate_json("--dataset-info", info, "--no-near-dup")
    assert code == 1
    got = {(f["code"], f["path"], f["record"]) for f in report["errors"] + report["warnings"]}
    assert got == {
        ("empty-output", "[0].output", 0),
        ("mixed-file-types", "mixed.file_name", None),
        ("wrong-type", "[0].output", 0),
        ("unsupported-file-type", "stray.file_name", None),
    }
    mixed_finding = by_code(report)["mixed-file-types"][0]
    assert "a.json (json)" in mixed_finding["message"] and "b.csv (csv)" in mixed_finding["message"]
    assert "'.DS_Store'" in by_code(report)["unsupported-file-type"][0]["message"]
    null = by_code(report)["wrong-type"][0]
    assert null["file"].endswith("part-1.parquet")
    assert {os.path.basename(f["file"]) for f in report["stats"]["files"]} == {
        "a.json",
        "b.jsonl",
        "part-0.parquet",
        "part-1.parquet",
    }


def test_a_save_to_disk_folder_is_named_with_the_file_to_use(tmp_path):
    import datasets

    datasets.Dataset.from_list(GSM8K_ROWS[:2]).save_to_disk(str(tmp_path / "saved"))
    info = write_info(
        tmp_path, {"gsm8k": {"file_name": "saved", "columns": {"query": "question", "response": "answer"}}}
    )
    code, report = validate_json("--dataset-info", info)
    assert code == 1
    finding = report["errors"][0]
    assert finding["code"] == "mixed-file-types" and finding["path"] == "gsm8k.file_name"
    assert "save_to_disk" in finding["hint"] and "data-00000-of-00001.arrow" in finding["hint"]
    # the file it names is read fine
    info = write_info(
        tmp_path,
        {
            "gsm8k": {
                "file_name": "saved/data-00000-of-00001.arrow",
                "columns": {"query": "question", "response": "answer"},
            }
        },
    )
    code, report = validate_json("--dataset-info", info)
    assert code == 0 and report["records"] == 2
    # and so is the folder given directly: it is not a LLaMA-Factory data folder, although it has a dataset_info.json
    code, report = validate_json(str(tmp_path / "saved"))
    assert code == 1 and report["errors"][0]["code"] == "mixed-file-types"


def test_split_slices_and_num_samples(tmp_path):
    rows = [{"instruction": f"q{i}", "input": "", "output": "" if i == 7 else f"a{i}"} for i in range(10)]
    write_parquet(tmp_path / "d.parquet", rows, row_group_size=3)
    info = write_info(
        tmp_path,
        {
            "head": {"file_name": "d.parquet", "split": "train[:5]", "num_samples": 3},
            "tail": {"file_name": "d.parquet", "split": "train[-40%:]"},
            "test": {"file_name": "d.parquet", "split": "test"},
        },
    )
    code, report = validate_json("--dataset-info", info, "--dataset", "head,tail", "--no-near-dup")
    assert code == 0
    assert report["records"] == 5 + 4
    assert [(f["code"], f["record"]) for f in report["warnings"] if f["code"] == "empty-output"] == [
        ("empty-output", 7)
    ]  # row 7 is in train[-40%:] (rows 6-9), with its index in the file
    reasons = [f["reason"] for f in report["stats"]["files"]]
    assert "split train[:5]" in reasons[0] and "num_samples 3" in reasons[0]
    code, report = validate_json("--dataset-info", info, "--dataset", "test")
    assert code == 1
    assert [(f["code"], f["path"]) for f in report["errors"]] == [("dataset-split-invalid", "test.split")]
    assert "Unknown split" in report["errors"][0]["message"]


def test_hub_entries_are_checked_when_available_and_noted_when_not(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_copy = tmp_path / "hub_copy"  # a dataset repository as `datasets` loads it (a local path stands in)
    hub_copy.mkdir()
    write_parquet(hub_copy / "train-00000-of-00001.parquet", GSM8K_ROWS[:4])
    (tmp_path / "ok.json").write_text(json.dumps([{"instruction": "q", "input": "", "output": "a"}]), encoding="utf-8")
    info = write_info(
        tmp_path,
        {
            "ok": {"file_name": "ok.json"},
            "offline": {"hf_hub_url": "llamafactory/alpaca_en", "ms_hub_url": "llamafactory/alpaca_en"},
            "mirror": {"hf_hub_url": str(hub_copy), "columns": {"query": "question", "response": "answer"}},
            "cloud": {"cloud_file_name": "s3://bucket/data.json"},
        },
    )
    code, report = validate_json("--dataset-info", info, "--no-near-dup")
    assert code == 1  # the mirror's broken rows; the notes leave the exit code alone
    notes = {f["path"]: f["message"] for f in report["notes"]}
    assert set(notes) == {"offline.hf_hub_url", "cloud.cloud_file_name"}
    assert notes["offline.hf_hub_url"].startswith("not checked: hub dataset not available offline")
    mirror = f"{hub_copy} (train)"
    assert {(f["code"], f["file"], f["path"]) for f in report["errors"]} == {
        ("empty-field", mirror, "[2].question"),
        ("wrong-type", mirror, "[3].answer"),
    }
    code, report = validate_json("--dataset-info", info, "--dataset", "ok,offline")
    assert code == 0 and report["ok"] and len(report["notes"]) == 1


def test_a_loading_script_is_refused_as_datasets_4_refuses_it(tmp_path):
    (tmp_path / "my_script").mkdir()
    (tmp_path / "my_script" / "my_script.py").write_text("import datasets\n", encoding="utf-8")
    info = write_info(tmp_path, {"scripted": {"script_url": "my_script"}})
    code, report = validate_json("--dataset-info", info)
    assert code == 1
    assert [(f["code"], f["path"]) for f in report["errors"]] == [("unsupported-file-type", "scripted.script_url")]
    assert "no longer supported" in report["errors"][0]["message"]


def test_damaged_and_misnamed_columnar_files(tmp_path):
    good = write_parquet(tmp_path / "good.parquet", [{"instruction": f"q{i}", "output": "a"} for i in range(50)])
    data = open(good, "rb").read()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "json.parquet").write_text('[{"instruction": "q", "output": "a"}]', encoding="utf-8")
    (tmp_path / "parquet.arrow").write_bytes(data)
    for name, words in (
        ("cut.parquet", "damaged or cut short"),
        ("json.parquet", "rename it .json"),
        ("parquet.arrow", "rename it .parquet"),
    ):
        code, report = validate_json(str(tmp_path / name))
        assert code == 1, name
        assert [f["code"] for f in report["errors"]] == ["unreadable-file"], name
        assert words in report["errors"][0]["hint"], (name, report["errors"][0])
    result = run_cli("validate", str(tmp_path / "cut.parquet"))
    assert "Traceback" not in result.output and result.exit_code == 1


def test_parquet_shards_in_workers_locate_like_one_process(tmp_path, monkeypatch):
    """Large Parquet files are cut into row ranges checked in worker processes; the report is the same."""
    from ftbench.quality import validate as validate_module

    rows = [
        {"instruction": f"question {i % 1000}", "output": "" if i % 97 == 0 else f"answer {i % 50}"}
        for i in range(3000)
    ]  # rows i and i + 1000 are duplicates
    path = write_parquet(tmp_path / "big.parquet", rows, row_group_size=250)
    _, single = validate_json(path, "--no-near-dup")
    monkeypatch.setattr(validate_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(validate_module, "SHARD_BYTES", 1)
    monkeypatch.setenv("FTBENCH_WORKERS", "2")
    _, sharded = validate_json(path, "--no-near-dup")
    assert sharded["stats"]["workers"] == 2 and single["stats"]["workers"] == 1
    key = lambda r: [(f["code"], f["record"], f["path"], f["message"]) for f in r["warnings"]]
    assert key(sharded) == key(single) and len(key(single)) > 1900  # empty outputs and duplicates
    assert sharded["records"] == single["records"] == 3000


def test_a_mixed_llamafactory_folder_every_mistake_located_and_documented(tmp_path, monkeypatch):
    """A user's data/ folder with one mistake in each kind of file and entry: every mistake is found at its file,
    row/line and column, nothing else is reported, and every code is documented in docs/validate.md."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "identity.json").write_text(
        json.dumps([{"instruction": "Who are you?", "input": "", "output": "I am {{name}}."}], indent=2),
        encoding="utf-8",
    )
    (tmp_path / "chat.jsonl").write_text(
        '{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}\n'
        '{"conversations": {{"from": "human", "input": "q"}, {"from": "gpt", "input": "a"}}}\n',
        encoding="utf-8",
    )
    write_arrow_stream(tmp_path / "gsm8k-train.arrow", GSM8K_ROWS[:2] + [{"question": "1+1?", "answer": None}])
    (tmp_path / "qa.csv").write_text("instruction,input,output\nq1,,a1\nq2,,a2,extra\n", encoding="utf-8")
    (tmp_path / "corpus.txt").write_text("doc one\n\ndoc two\n", encoding="utf-8")
    write_parquet(
        tmp_path / "dpo.parquet",
        [
            {"instruction": "q", "chosen": "a", "rejected": "b"},
            {"instruction": "r", "chosen": "Same", "rejected": "same"},
        ],
    )
    (tmp_path / "kto.jsonl").write_text(
        json.dumps({"instruction": "q", "input": "", "output": "a", "label": "yes"}) + "\n", encoding="utf-8"
    )
    (tmp_path / "mllm.json").write_text(
        json.dumps(
            [
                {
                    "messages": [
                        {"role": "user", "content": "<image>What is this?"},
                        {"role": "assistant", "content": "A cat."},
                    ],
                    "images": ["img/cat.jpg"],
                }
            ]
        ),
        encoding="utf-8",
    )
    (tmp_path / "shards").mkdir()
    write_parquet(tmp_path / "shards" / "0.parquet", [{"instruction": "a", "input": "", "output": "b"}])
    write_parquet(tmp_path / "shards" / "1.parquet", [{"instruction": "c", "input": "", "output": 7}])
    (tmp_path / "notes.md").write_text("# notes\n", encoding="utf-8")
    chat_tags = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}
    info = write_info(
        tmp_path,
        {
            "identity": {"file_name": "identity.json"},
            "chat": {"file_name": "chat.jsonl", "formatting": "sharegpt"},
            "gsm8k": {"file_name": "gsm8k-train.arrow", "columns": {"query": "question", "response": "answer"}},
            "qa": {"file_name": "qa.csv"},
            "corpus": {"file_name": "corpus.txt", "columns": {"prompt": "text"}},
            "dpo": {
                "file_name": "dpo.parquet",
                "ranking": True,
                "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"},
            },
            "kto": {
                "file_name": "kto.jsonl",
                "columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"},
            },
            "mllm": {
                "file_name": "mllm.json",
                "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images"},
                "tags": chat_tags,
            },
            "shards": {"file_name": "shards"},
            "notes": {"file_name": "notes.md"},
            "alpaca_en": {"hf_hub_url": "llamafactory/alpaca_en"},
        },
    )
    code, report = validate_json(str(tmp_path), "--no-near-dup")
    assert code == 1
    lines = open(info, encoding="utf-8").read().splitlines()
    entry_line = lambda name: next(i for i, line in enumerate(lines, 1) if line.startswith(f'  "{name}": '))
    got = {
        (os.path.basename(f["file"]), f["code"], f["line"], f["column"], f["record"], f["path"])
        for f in report["errors"] + report["warnings"] + report["notes"]
    }
    assert got == {
        ("identity.json", "placeholder", 2, None, 0, "[0].output"),
        ("chat.jsonl", "braces-for-list", 2, 19, 1, None),
        ("chat.jsonl", "wrong-turn-key", 2, None, 1, "[1].conversations[0].input"),
        ("chat.jsonl", "wrong-turn-key", 2, None, 1, "[1].conversations[1].input"),
        ("gsm8k-train.arrow", "wrong-type", None, None, 2, "[2].answer"),
        ("qa.csv", "csv-field-count", 3, None, 1, None),
        ("corpus.txt", "empty-text", 2, None, 1, "[1].text"),
        ("dpo.parquet", "chosen-equals-rejected", None, None, 1, "[1].rejected"),
        ("kto.jsonl", "wrong-type", 1, None, 0, "[0].label"),
        ("mllm.json", "media-file-missing", 1, None, 0, "[0].images[0]"),
        ("1.parquet", "wrong-type", None, None, 0, "[0].output"),
        ("dataset_info.json", "unsupported-file-type", entry_line("notes"), None, None, "notes.file_name"),
        ("dataset_info.json", "remote-dataset-skipped", entry_line("alpaca_en"), None, None, "alpaca_en.hf_hub_url"),
    }
    docs = open(os.path.join(REPO, "docs", "validate.md"), encoding="utf-8").read()
    assert not {code for _, code, *_ in got if f"`{code}`" not in docs}


def test_validating_parquet_imports_pyarrow_only(tmp_path):
    import subprocess
    import sys

    path = write_parquet(tmp_path / "d.parquet", [{"instruction": "q", "input": "", "output": "a"}])
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ftbench", "validate", path],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-500:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "pyarrow" in imported
    assert not imported & {"torch", "transformers", "datasets", "lm_eval", "peft", "pandas"}


def test_notes_are_shown_in_the_text_and_html_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run_cli("validate", "tests/data/llamafactory/", "--html", str(tmp_path / "r.html"))
    assert result.exit_code == 1
    assert "Notes (1): remote-dataset-skipped ×1" in result.stdout
    assert (
        "alpaca_en.hf_hub_url: note [remote-dataset-skipped] not checked: hub dataset not available offline"
        in result.stdout
    )
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Notes: not checked" in html and "not available offline" in html


def test_dataset_names_resolve_in_validate_as_in_a_training_config(tmp_path):
    """One resolution of dataset names: `validate --dataset` takes what a config's `dataset:` takes, a name the
    dataset_info.json declares or a data file path, and names an unknown one the same way."""
    from ftbench.api.errors import InputError
    from ftbench.training.config import load_train_config
    from ftbench.training.data import resolve_datasets

    declared = tmp_path / "declared.json"
    declared.write_text(json.dumps([{"instruction": "q", "input": "", "output": "a"}]), encoding="utf-8")
    loose = tmp_path / "loose.jsonl"
    loose.write_text(json.dumps({"instruction": "q2", "input": "", "output": ""}) + "\n", encoding="utf-8")
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"mine": {"file_name": "declared.json"}}), encoding="utf-8")
    code, report = validate_json("--dataset-info", str(info), "--dataset", f"mine,{loose}", "--no-near-dup")
    assert code == 0 and report["records"] == 2  # the declared entry's record and the file's
    assert [(f["code"], f["file"]) for f in report["warnings"]] == [("empty-output", str(loose))]
    cfg, _ = load_train_config(
        None,
        [f"dataset=mine,{loose}", f"dataset_dir={tmp_path}", "model_name_or_path=tiny", f"output_dir={tmp_path}/out"],
    )
    assert [(s.name, s.path) for s in resolve_datasets(cfg, cfg.dataset)] == [
        ("mine", str(declared)),
        (None, str(loose)),
    ]
    result = run_cli("validate", "--dataset-info", str(info), "--dataset", "Mine")
    assert result.exit_code == 2 and f"{info}: no dataset named 'Mine' (did you mean 'mine'?)" in result.output
    with pytest.raises(InputError, match="'Mine' is neither a data file nor a dataset in"):
        resolve_datasets(cfg, ["Mine"])


def test_llamafactory_files_given_directly_are_recognised(tmp_path):
    """LLaMA-Factory's own files validated as a new user would (issue 24, point 9): its DPO demo is one
    preference-data error (not an error per record), its c4 text is called pretraining text, and a training YAML is
    read as a config whose datasets are validated."""
    from helpers import validate_json

    code, report = validate_json(os.path.join("tests", "data", "llamafactory", "dpo_en_demo.json"))
    assert code == 1 and [f["code"] for f in report["errors"]] == ["preference-data"]
    c4 = tmp_path / "c4_demo.jsonl"
    c4.write_text('{"text": "a pretraining document"}\n{"text": "another one"}\n', encoding="utf-8")
    code, report = validate_json(str(c4))
    assert code == 1 and report["errors"][0]["code"] == "unknown-format"
    assert '"columns": {"prompt": "text"}' in report["errors"][0]["hint"]
    config = tmp_path / "train.yaml"
    config.write_text(f"model_name_or_path: tiny\ndataset: identity\ndataset_dir: {os.path.join(REPO, 'datasets')}\n")
    code, report = validate_json(str(config))
    assert code == 0 and report["records"] == len(json.load(open(os.path.join(REPO, "datasets", "identity.json"))))
    assert any(f["code"] == "training-config" for f in report["notes"])


def test_files_given_with_their_dataset_info_are_read_once(tmp_path):
    """`validate data/identity.json data/alpaca_en_demo.json --dataset-info data/dataset_info.json` in a copy of
    LLaMA-Factory's data/ holding only those two files (issue 24's trial): each file is read once, as its entry
    declares it, not once more as a plain file (every record was its own "exact duplicate"), and the entries of
    files the user did not give are not checked (12 dataset-file-missing errors)."""
    for name in ("identity.json", "alpaca_demo.json"):
        shutil.copy(os.path.join(REPO, "datasets", name), tmp_path / name)
    info = {
        "identity": {"file_name": "identity.json"},
        "alpaca_demo": {"file_name": "alpaca_demo.json"},
        "dpo_en_demo": {"file_name": "dpo_en_demo.json", "ranking": True},  # in LF's data/, not copied here
    }
    (tmp_path / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    files = [str(tmp_path / "identity.json"), str(tmp_path / "alpaca_demo.json")]
    code, report = validate_json(*files, "--dataset-info", str(tmp_path / "dataset_info.json"))
    records = sum(len(json.load(open(f, encoding="utf-8"))) for f in files)
    assert code == 0 and report["records"] == records, report["errors"]
    duplicates = [f for f in report["warnings"] if f["code"] == "exact-duplicate"]
    assert not any(f"duplicate of {f['file']}:{f['line']} " in f["message"] for f in duplicates)
