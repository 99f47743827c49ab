"""The built-in offline `tiny` model: a small Qwen2-architecture causal LM with random weights and a byte-level
BPE tokenizer trained on the bundled `datasets/`, with a ChatML chat template.

It is a *pipeline* model: it makes `ftbench train/predict/eval` runnable in seconds on a CPU without any
download, so tests and demos exercise the real code paths. Its weights are random, so the text it writes (and
every score computed from it) means nothing about quality. Real use is `--model Qwen/Qwen2.5-0.5B-Instruct`.

The build is deterministic: the same seed (and the same bundled data, torch and transformers versions) gives
byte-identical weight and tokenizer files. `--model tiny` builds it once into a cache folder, atomically (a
temporary folder renamed into place), so concurrent test workers never see half a model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ftbench.api.errors import UsageError
from ftbench.data.bundled import datasets_dir
from ftbench.io import build_folder_atomically, cache_root, write_json

TINY_VERSION = 1  # bump when the recipe below changes, so stale caches are not reused
TINY_NAME = "tiny"
DEFAULT_SEED = 0
BUILD_INFO = "ftbench_tiny.json"

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
VOCAB_SIZE = 3072  # BPE merges learned on ~160 KB of zh+en text; small enough for a 64-wide embedding
DEFAULT_SYSTEM = "You are a helpful assistant."

# Qwen2.5's ChatML template without the tool-calling preamble: same markers, same newlines, same default system
# prompt placement and the same rendering of tool results (a user turn wrapping <tool_response>).
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' or message['role'] == 'assistant'"
    " or (message['role'] == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- elif message['role'] == 'tool' %}"
    "{%- if loop.index0 == 0 or messages[loop.index0 - 1]['role'] != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

MODEL_SHAPE = dict(
    hidden_size=64,
    intermediate_size=192,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rope_theta=10000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    use_sliding_window=False,
    # wider than the usual 0.02 so the random model writes varied, prompt-dependent text instead of
    # repeating its last token (with tied embeddings a near-identity network echoes its input)
    initializer_range=0.15,
)


def corpus_texts(folder: Path | None = None) -> list[str]:
    """Every string value of the bundled top-level `*.json` / `*.jsonl` files, in a fixed order (both languages).

    `dataset_info.json` is skipped (it holds column names, not text); so is `broken/` (deliberately broken files).
    """
    folder = folder or datasets_dir()
    texts: list[str] = []

    def collect(value) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            for v in value:
                collect(v)
        elif isinstance(value, dict):
            for k in sorted(value):
                collect(value[k])

    for path in sorted(folder.iterdir()):
        if path.name == "dataset_info.json" or path.suffix not in (".json", ".jsonl"):
            continue
        raw = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            for line in raw.splitlines():
                if line.strip():
                    collect(json.loads(line))
        else:
            collect(json.loads(raw))
    # the chat template's own words, so they become single tokens as in real chat tokenizers
    texts += ["system", "user", "assistant", DEFAULT_SYSTEM, "<tool_response>", "</tool_response>"]
    return texts


def train_tokenizer(texts: list[str]):
    """A byte-level BPE `tokenizers.Tokenizer` with Qwen2's pre-tokenizer, trained on ``texts``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def build_tokenizer(texts: list[str]):
    """The tiny model's tokenizer as a transformers `Qwen2Tokenizer` (eos `<|im_end|>`, pad `<|endoftext|>`,
    ChatML template), exactly how real Qwen2.5-Instruct tokenizers are set up."""
    from transformers import Qwen2Tokenizer

    trained = json.loads(train_tokenizer(texts).to_str())
    vocab = trained["model"]["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in trained["model"]["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=MODEL_SHAPE["max_position_embeddings"],
        errors="replace",
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(tokenizer, seed: int):
    """A randomly initialised `Qwen2ForCausalLM` (seeded) whose vocabulary is the tokenizer's."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        **MODEL_SHAPE,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    model.eval()
    # like Qwen2.5-Instruct: stop at <|im_end|> or <|endoftext|>; greedy by default
    model.generation_config = GenerationConfig(
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    return model


def _corpus_hash(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def build_tiny_model(out_dir: str | os.PathLike, seed: int = DEFAULT_SEED) -> str:
    """Write the tiny model (weights, config, generation config, tokenizer, build info) into ``out_dir``,
    which must be empty or absent. Returns the folder."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" for a 1 MB file is noise
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = corpus_texts()
    tokenizer = build_tokenizer(texts)
    model = build_model(tokenizer, seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {
        "ftbench_tiny_version": TINY_VERSION,
        "seed": seed,
        "corpus_sha256": _corpus_hash(texts),
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "note": "random weights: a pipeline model for offline tests and demos, not for quality",
    }
    write_json(str(out / BUILD_INFO), info)
    return str(out)


def build_atomically(final_dir: str | os.PathLike, seed: int, *, replace: bool = False) -> str:
    """Build into ``final_dir`` atomically (see `ftbench.io.build_folder_atomically`): same seed, same bytes, so a
    build another process finished first is kept."""
    return build_folder_atomically(
        final_dir, lambda tmp: build_tiny_model(tmp, seed), is_tiny_model_dir, replace=replace
    )


def is_tiny_model_dir(path: str | os.PathLike) -> bool:
    """True if ``path`` holds a complete tiny-model build (the build-info file is written last)."""
    return (Path(path) / BUILD_INFO).is_file()


def cached_tiny_model(seed: int = DEFAULT_SEED) -> str:
    """The cached tiny model's folder, built on first use."""
    path = cache_root() / f"tiny-model-{TINY_VERSION}-seed{seed}"
    if not is_tiny_model_dir(path):
        try:
            build_atomically(path, seed)
        except OSError as e:
            raise UsageError(
                f"cannot build the tiny model in {path}: {e.strerror or e} (set FTBENCH_CACHE to a writable folder)"
            ) from e
    return str(path)
