"""The offline tiny model: deterministic build, a real Qwen2 checkpoint with a ChatML tokenizer, an atomic cache
that concurrent processes share, and device/dtype placement."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys

import pytest
from helpers import run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_same_seed_builds_byte_identical_files_and_another_seed_other_weights(tiny_model, tmp_path):
    again, other = tmp_path / "again", tmp_path / "seed1"
    result = run_cli("make-tiny-model", str(again), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["seed"] == 0
    names = sorted(os.listdir(tiny_model))
    assert names == sorted(os.listdir(again))
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= set(names)
    _, mismatch, errors = filecmp.cmpfiles(tiny_model, again, names, shallow=False)
    assert mismatch == [] and errors == []
    assert run_cli("make-tiny-model", str(other), "--seed", "1", "-q").exit_code == 0
    assert filecmp.cmp(again / "tokenizer.json", other / "tokenizer.json", shallow=False)
    assert not filecmp.cmp(again / "model.safetensors", other / "model.safetensors", shallow=False)


def test_existing_folder_needs_force(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("make-tiny-model", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "--force" in result.stderr


def test_a_real_qwen2_checkpoint_with_chatml(tiny_model):
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    config = AutoConfig.from_pretrained(tiny_model)
    assert config.model_type == "qwen2" and config.num_hidden_layers == 2
    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert type(tok).__name__ == "Qwen2Tokenizer" and len(tok) == config.vocab_size
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")
    gen = GenerationConfig.from_pretrained(tiny_model)
    assert gen.do_sample is False
    assert set(gen.eos_token_id) == {tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
    messages = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "Hi!"}]
    assert tok.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n"
        "<|im_start|>assistant\nHi!<|im_end|>\n"
    )
    assert tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True).endswith(
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    for text in ("周杰有77张贴纸，他给8个朋友每人6张。", "Omar plants 3 rows of tomatoes.\n#### 16", "emoji 🙂 ok"):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    # trained on the bundled data: common words of both languages are single tokens
    assert len(tok("assistant", add_special_tokens=False)["input_ids"]) == 1
    assert len(tok("还剩多少", add_special_tokens=False)["input_ids"]) <= 2


def test_concurrent_builds_share_one_cache_folder(tmp_path, monkeypatch):
    """Two builders racing for the same cache folder (as xdist workers do) both get the complete model and leave
    no temporary folder behind (threads here: the temp-folder-and-rename protocol is the same across processes)."""
    from concurrent.futures import ThreadPoolExecutor

    from ftbench.inference.models import resolve_model

    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))
    with ThreadPoolExecutor(3) as pool:
        paths = set(pool.map(lambda _: resolve_model("tiny"), range(3)))
    assert len(paths) == 1
    path = paths.pop()
    assert os.listdir(tmp_path / "cache") == [os.path.basename(path)]
    assert os.path.isfile(os.path.join(path, "model.safetensors"))


def test_load_for_generation_on_cpu(tiny_model):
    import torch

    from ftbench.inference.models import load_model_for_generation

    model = load_model_for_generation("tiny")
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32 and next(model.parameters()).device.type == "cpu"
    assert model.config._attn_implementation == "eager"  # bit-identical logits with and without padding


def test_placement_prefers_bf16_cuda_then_fp16(monkeypatch):
    import torch

    from ftbench.inference.models import pick_placement

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_placement() == pick_placement("cuda") and pick_placement().dtype == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert pick_placement().dtype == "float16"
    assert pick_placement("cpu").dtype == "float32"
    assert pick_placement("cuda:1", "float32").device == "cuda:1"


def test_model_errors_are_one_line():
    from ftbench.api.errors import UsageError
    from ftbench.inference.models import load_model_for_generation, resolve_model

    with pytest.raises(UsageError, match="no such model folder"):
        resolve_model("./no/such/model")
    with pytest.raises(UsageError, match="tiny:SEED"):
        resolve_model("tiny:abc")
    with pytest.raises(UsageError, match="is a file"):
        resolve_model(os.path.join(REPO, "pyproject.toml"))
    with pytest.raises(UsageError, match="--adapter"):
        load_model_for_generation("tiny", adapter=os.path.join(REPO, "datasets"))


def test_command_modules_do_not_import_torch():
    code = (
        "import sys, importlib\n"
        "for m in ('ftbench.cli.predict', 'ftbench.cli.make_tiny_model', 'ftbench.inference.models', 'ftbench.inference.chat',\n"
        "          'ftbench.inference.generate', 'ftbench.inference.tiny', 'ftbench.inference.predict'):\n"
        "    importlib.import_module(m)\n"
        "bad = [m for m in ('torch', 'transformers', 'peft', 'tokenizers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
