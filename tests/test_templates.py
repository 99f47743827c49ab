"""Named templates (`template: qwen`) encode exactly as LLaMA-Factory does: training ids and labels, prediction
prompt ids and text, and the label text of its prediction rows, compared with LLaMA-Factory's own template and
dataset processors (run in its venv by tests/llamafactory/lf_encode.py) on the bundled data, for every template
ftbench knows."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ftbench.data.formats import FUNCTION
from ftbench.data.loader import load_samples
from ftbench.inference.chat import encode_for_training, label_text, prompt_text_and_ids
from ftbench.inference.templates import TEMPLATES, get_template

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = ["identity.json", "alpaca_demo.json", "sharegpt_demo.json", "openai_demo.jsonl", "arithmetic_demo.jsonl"]
LF_ENCODE = os.path.join(REPO, "tests", "llamafactory", "lf_encode.py")
# the special tokens of every family in the catalog, added to the tiny model's ChatML tokenizer so one tokenizer
# can be encoded under every template (LLaMA-Factory would add a missing one and need resize_vocab)
FAMILY_TOKENS = [
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "[gMASK]",
    "<sop>",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    "<|observation|>",
    "<｜User｜>",
    "<｜Assistant｜>",
    "<|im_sep|>",
]


@pytest.fixture(scope="module")
def family_tokenizer(tiny_model, tmp_path_factory):
    """The tiny tokenizer plus every family's special tokens and a bos token, saved for both sides to load."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.add_special_tokens({"bos_token": "<s>", "additional_special_tokens": FAMILY_TOKENS})
    path = tmp_path_factory.mktemp("family-tokenizer")
    tokenizer.save_pretrained(path)
    return str(path)


def samples():
    out = []
    for name in DATA:
        out += [
            s
            for s in load_samples(os.path.join(REPO, "datasets", name))[:10]
            if not s.tools and all(role != FUNCTION for role, _ in s.turns)
        ]
    return out


def llamafactory_encode(python, tokenizer, cases, conversations, cutoff_len=4096):
    request = {
        "tokenizer": tokenizer,
        "cutoff_len": cutoff_len,
        "conversations": conversations,
        "cases": [{"template": n, "default_system": d, "enable_thinking": t} for n, d, t in cases],
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1"}
    done = subprocess.run(
        [python, LF_ENCODE], input=json.dumps(request), capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(zip(cases, json.loads(done.stdout.strip().splitlines()[-1])))


def as_llamafactory(sample):
    return {"system": sample.system, "messages": [{"role": role, "content": content} for role, content in sample.turns]}


CASES = [(name, None, True) for name in TEMPLATES.names()] + [
    ("qwen", "", True),
    ("qwen", "Answer briefly.", True),
    ("qwen3", None, False),
    ("qwen3", None, None),
    ("smollm2", "You are Lumen.", True),
]


@pytest.fixture(scope="module")
def llamafactory_encodings(family_tokenizer, llamafactory_python):
    """LLaMA-Factory's encoding of the bundled samples under every case, in one run of its Python."""
    return llamafactory_encode(llamafactory_python, family_tokenizer, CASES, [as_llamafactory(s) for s in samples()])


@pytest.mark.parametrize("name,default_system,enable_thinking", CASES)
def test_template_encodes_like_llamafactory(
    name, default_system, enable_thinking, family_tokenizer, llamafactory_encodings
):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(family_tokenizer)
    data = samples()
    assert len(data) >= 30 and any(len(s.turns) > 2 for s in data)  # multi-turn conversations are covered
    expected = llamafactory_encodings[(name, default_system, enable_thinking)]
    template = get_template(name, default_system, enable_thinking)
    for sample, lf in zip(data, expected, strict=True):
        where = f"{name}: {sample.file} record {sample.record}"
        assert encode_for_training(tokenizer, sample, 4096, template) == (lf["train_ids"], lf["train_labels"]), where
        prompt, prompt_ids = prompt_text_and_ids(tokenizer, sample, template=template)
        assert prompt_ids == lf["prompt_ids"], where
        assert prompt == lf["prompt"], where
        assert label_text(tokenizer, sample, template=template) == lf["label"], where
