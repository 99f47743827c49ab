"""The other dataset kinds of a LLaMA-Factory registry are checked as what they are (preference, KTO, pretraining
text, multimodal), and `columns`/`tags` replace the defaults wholesale, as LLaMA-Factory's parser does."""

from __future__ import annotations

import json
import os

from helpers import located, validate_json


def setup(tmp_path, entries: dict, files: dict) -> str:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(
                content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, indent=1),
                encoding="utf-8",
            )
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return str(info)


def turn(role, text):
    return {"from": role, "value": text}


def test_preference_data_alpaca_and_sharegpt(tmp_path):
    alpaca = [
        {"instruction": "Greet me.", "input": "", "chosen": "Hello!", "rejected": "Go away."},
        {"instruction": "Greet me.", "input": "", "chosen": "Hello!"},  # no rejected
        {"instruction": "Say yes.", "input": "", "chosen": "Yes.", "rejected": "yes. "},  # the same answer
        {"instruction": "Say no.", "input": "", "chosen": "", "rejected": "Yes."},
    ]  # an empty chosen
    sharegpt = [
        {"conversations": [turn("human", "Hi")], "chosen": turn("gpt", "Hello!"), "rejected": turn("gpt", "What?")},
        {
            "conversations": [turn("human", "Hi"), turn("gpt", "Hello!")],
            "chosen": turn("gpt", "a"),
            "rejected": turn("gpt", "b"),
        },  # ends with the answer: LLaMA-Factory's "Invalid message count"
        {"conversations": [turn("human", "Hi")], "chosen": turn("human", "a"), "rejected": turn("gpt", "b")},
        {"conversations": [turn("human", "Hi")], "chosen": "Hello!", "rejected": turn("gpt", "b")},
    ]
    info = setup(
        tmp_path,
        {
            "dpo_alpaca": {
                "file_name": "dpo_alpaca.json",
                "ranking": True,
                "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
            },
            "dpo_sharegpt": {
                "file_name": "dpo_sharegpt.json",
                "ranking": True,
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
            },
        },
        {"dpo_alpaca.json": alpaca, "dpo_sharegpt.json": sharegpt},
    )
    code, report = validate_json("--dataset-info", info, "--no-near-dup")
    assert code == 1
    got = {(os.path.basename(f["file"]), f["code"], f["path"]) for f in report["errors"] + report["warnings"]}
    assert got == {
        ("dpo_alpaca.json", "missing-field", "[1].rejected"),
        ("dpo_alpaca.json", "chosen-equals-rejected", "[2].rejected"),
        ("dpo_alpaca.json", "empty-output", "[3].chosen"),
        ("dpo_sharegpt.json", "last-turn-not-user", "[1].conversations[1].from"),
        ("dpo_sharegpt.json", "role-order", "[2].chosen.from"),
        ("dpo_sharegpt.json", "wrong-type", "[3].chosen"),
    }
    assert [f["kind"] for f in report["stats"]["files"]] == ["ranking", "ranking"]
    assert not any(f["code"] == "unsupported-dataset" for f in report["warnings"])


def test_kto_tags_must_be_booleans(tmp_path):
    rows = [
        {"instruction": "2+2?", "input": "", "output": "4", "kto_tag": True},
        {"instruction": "2+3?", "input": "", "output": "6", "kto_tag": False},
        {"instruction": "2+4?", "input": "", "output": "6", "kto_tag": "true"},
        {"instruction": "2+5?", "input": "", "output": "7", "kto_tag": None},
    ]
    info = setup(
        tmp_path,
        {
            "kto": {
                "file_name": "kto.json",
                "columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "kto_tag"},
            }
        },
        {"kto.json": rows},
    )
    code, report = validate_json("--dataset-info", info, "--no-near-dup")
    assert code == 1
    assert {(f["code"], f["path"]) for f in report["errors"]} == {
        ("wrong-type", "[2].kto_tag"),
        ("wrong-type", "[3].kto_tag"),
    }
    assert "expected true or false" in report["errors"][0]["message"]
    assert report["stats"]["files"][0]["kind"] == "kto" and report["stats"]["valid_records"] == 2


def test_pretraining_text_in_json(tmp_path):
    rows = [{"text": "A long document about LoRA."}, {"text": ""}, {"text": 42}, {"content": "x"}]
    info = setup(tmp_path, {"pt": {"file_name": "pt.json", "columns": {"prompt": "text"}}}, {"pt.json": rows})
    code, report = validate_json("--dataset-info", info, "--no-near-dup")
    assert code == 1
    # json.dump(indent=1) puts each record on three lines: records start on lines 2, 5, 8 and 11
    assert located(report["errors"]) == {("wrong-type", 8, "[2].text"), ("missing-field", 11, "[3].text")}
    assert located(report["warnings"]) == {("empty-text", 5, "[1].text")}


def test_multimodal_files_and_placeholders(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": "<image>Who are they?"},
                {"role": "assistant", "content": "Football players."},
            ],
            "images": ["imgs/1.jpg"],
        },
        {
            "messages": [
                {"role": "user", "content": "<image><image>Compare."},
                {"role": "assistant", "content": "Same."},
            ],
            "images": ["imgs/1.jpg"],
        },  # 2 marks, 1 image
        {
            "messages": [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "A cat."}],
            "images": ["imgs/missing.jpg"],
        },
        {
            "messages": [{"role": "user", "content": "Describe it."}, {"role": "assistant", "content": "Blue."}],
            "images": "imgs/1.jpg",
        },
    ]  # no mark
    entry = {
        "file_name": "mllm.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }
    info = setup(tmp_path, {"mllm": entry}, {"mllm.json": rows, "imgs/1.jpg": b"\xff\xd8\xff\xe0 jpeg"})
    code, report = validate_json("--dataset-info", info, "--no-near-dup")
    assert code == 1
    assert {(f["code"], f["path"]) for f in report["errors"]} == {
        ("media-placeholder-mismatch", "[1].images"),
        ("media-file-missing", "[2].images[0]"),
        ("media-placeholder-mismatch", "[3].images"),
    }
    mismatch = next(f for f in report["errors"] if f["path"] == "[1].images")
    assert "1 image but 2 <image> placeholders" in mismatch["message"]
    # media_dir moves where the paths are looked up, as LLaMA-Factory's media_dir does
    (tmp_path / "media" / "imgs").mkdir(parents=True)
    (tmp_path / "media" / "imgs" / "missing.jpg").write_bytes(b"jpeg")
    code, report = validate_json("--dataset-info", info, "--media-dir", str(tmp_path / "media"), "--no-near-dup")
    assert {f["path"] for f in report["errors"] if f["code"] == "media-file-missing"} == {
        "[0].images[0]",
        "[1].images[0]",
        "[3].images[0]",
    }


def test_columns_replace_the_defaults_wholesale(tmp_path):
    """The GSM8K tutorial maps only query and response: prompt is then None, which LLaMA-Factory skips, so the
    data is clean. An alpaca file without any 'input' registered without columns stops LLaMA-Factory with
    KeyError: 'input'; a "system" column LLaMA-Factory does not map is not read."""
    gsm = [{"question": "1+1?", "answer": "#### 2"}, {"question": "2+2?", "answer": "#### 4"}]
    plain = [{"instruction": "q", "output": "a", "system": "You are terse."}]
    info = setup(
        tmp_path,
        {
            "gsm8k": {"file_name": "gsm8k.json", "columns": {"query": "question", "response": "answer"}},
            "plain": {"file_name": "plain.json"},
        },
        {"gsm8k.json": gsm, "plain.json": plain},
    )
    code, report = validate_json("--dataset-info", info, "--dataset", "gsm8k", "--task", "gsm8k")
    assert code == 0 and report["errors"] == [] and report["stats"]["valid_records"] == 2
    code, report = validate_json("--dataset-info", info, "--dataset", "plain")
    assert code == 1
    assert [(f["code"], f["path"], f["line"]) for f in report["errors"]] == [
        ("dataset-column-missing", "plain.columns", 9)
    ]
    assert "KeyError: 'input'" in report["errors"][0]["message"]


def test_tags_replace_the_defaults_wholesale(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}]
    info = setup(
        tmp_path,
        {
            "chat": {
                "file_name": "chat.json",
                "formatting": "sharegpt",
                "columns": {"messages": "messages"},
                "tags": {"role_tag": "role", "content_tag": "content"},
            }
        },
        {"chat.json": rows},
    )
    code, report = validate_json("--dataset-info", info)
    assert code == 1
    tags = next(f for f in report["errors"] if f["code"] == "dataset-tags-incomplete")
    assert tags["path"] == "chat.tags" and tags["line"] == 2
    assert "user_tag, assistant_tag" in tags["message"] and '"user_tag": "human"' in tags["hint"]
