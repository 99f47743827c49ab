"""`ftbench predict` on the offline tiny model: batch 16 writes exactly what batch 1 writes, a run killed with
SIGKILL resumes without losing or duplicating a row, mismatched reruns are refused, and bad input is one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = ["identity.json", "alpaca_demo.json", "sharegpt_demo.json", "openai_demo.jsonl", "arithmetic_demo.jsonl"]
FAST = ["--max-new-tokens", "24", "--threads", "1", "-q"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mixed_data(tmp_path_factory) -> str:
    """60 varied prompts from every bundled file (zh and en; system prompts, multi-turn, GSM8K), as OpenAI
    messages JSONL, interleaved so each batch mixes lengths."""
    from ftbench.data.loader import load_samples
    from ftbench.inference.chat import to_messages

    per_file = [load_samples(os.path.join(REPO, "datasets", name))[:12] for name in DATA]
    samples = [s for group in zip(*per_file) for s in group]
    path = tmp_path_factory.mktemp("data") / "mixed.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps({"messages": to_messages(s)}, ensure_ascii=False) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def reference(tiny_model, mixed_data, tmp_path_factory) -> list[dict]:
    """An uninterrupted batch-1 run: LLaMA-Factory's tutorial setting, the baseline everything must equal."""
    out = tmp_path_factory.mktemp("ref") / "batch1.jsonl"
    result = run_cli("predict", "--model", "tiny", "--data", mixed_data, "-o", str(out), "--batch-size", "1", *FAST)
    assert result.exit_code == 0, result.output
    return read_rows(out)


def read_rows(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def predict(*args: str):
    return run_cli("predict", "--model", "tiny", *args)


def test_batch_16_writes_exactly_what_batch_1_writes(reference, mixed_data, tmp_path):
    out = tmp_path / "batch16.jsonl"
    result = predict(
        "--data", mixed_data, "-o", str(out), "--batch-size", "16", "--max-new-tokens", "24", "--threads", "1", "--json"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n"] == summary["generated"] == 60 and summary["samples_per_second"] > 0
    rows = read_rows(out)
    assert len(reference) == 60 and rows == reference
    assert [r["index"] for r in rows] == list(range(60))
    assert len({r["predict"] for r in rows}) > 50  # varied text, so near-ties would show up
    assert set(rows[0]) == {"prompt", "predict", "label", "index"}
    assert rows[0]["prompt"].endswith("<|im_start|>assistant\n")
    meta = json.loads((tmp_path / "batch16.jsonl.meta.json").read_text())
    assert meta["effective_generation"]["do_sample"] is False and meta["device"] == "cpu"


def test_labels_are_the_final_answers(reference, mixed_data):
    """As LLaMA-Factory writes them: the answer's ids with the end-of-turn text, decoded without special tokens
    (`answer<|im_end|>\\n` reads `answer\\n`; tests/test_llamafactory.py checks the whole row against its own)."""
    first = json.loads(open(mixed_data, encoding="utf-8").readline())
    assert reference[0]["label"] == first["messages"][-1]["content"] + "\n"


def test_killed_run_resumes_without_loss_or_duplicates(reference, mixed_data, tmp_path):
    out = tmp_path / "killed.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "ftbench",
        "predict",
        "--model",
        "tiny",
        "--data",
        mixed_data,
        "-o",
        str(out),
        "--batch-size",
        "2",
        *FAST,
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    lines = 0
    while time.monotonic() < deadline and proc.poll() is None:
        lines = out.read_bytes().count(b"\n") if out.exists() else 0
        if lines >= 1:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= lines < 60, f"the run was not killed mid-way ({lines} rows)"
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = read_rows(out)
    assert [r["index"] for r in rows] == list(range(60))
    assert rows == reference


def test_half_written_last_line_is_cut_off_and_regenerated(reference, mixed_data, tmp_path):
    out = tmp_path / "partial.jsonl"
    assert predict("--data", mixed_data, "-o", str(out), "--limit", "10", *FAST).exit_code == 0
    data = out.read_bytes()
    cut = data.rfind(b"\n", 0, len(data) - 1) + 1  # start of the last row
    out.write_bytes(data[: cut + 25])  # the last row half-written, as a kill mid-write leaves it
    result = predict("--data", mixed_data, "-o", str(out), "--limit", "12", *FAST[:-1])
    assert result.exit_code == 0, result.output
    assert "half-written" in result.stderr
    assert read_rows(out) == reference[:12]


def test_finished_output_is_not_regenerated(reference, mixed_data, tmp_path):
    out = tmp_path / "done.jsonl"
    assert predict("--data", mixed_data, "-o", str(out), "--limit", "4", *FAST).exit_code == 0
    result = predict("--data", mixed_data, "-o", str(out), "--limit", "4", "--max-new-tokens", "24", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["generated"] == 0
    assert read_rows(out) == reference[:4]


def test_rerun_with_other_data_or_settings_is_refused(mixed_data, tmp_path):
    out = tmp_path / "out.jsonl"
    assert predict("--data", mixed_data, "-o", str(out), "--limit", "2", *FAST).exit_code == 0
    other = os.path.join(REPO, "datasets", "identity.json")
    for args, reason in (
        (["--data", other, *FAST], "different data file"),
        (["--data", mixed_data, "--max-new-tokens", "25"], "other generation settings"),
        (["--data", mixed_data, *FAST, "--temperature", "0.7"], "other generation settings"),
    ):
        result = predict(*args, "-o", str(out), "--limit", "3")
        assert result.exit_code == 2, result.output
        assert reason in result.stderr and result.stderr.strip().count("\n") == 0
    assert len(read_rows(out)) == 2
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"predict": "x"}\n')
    result = predict("--data", mixed_data, "-o", str(foreign), *FAST)
    assert result.exit_code == 2 and "--overwrite" in result.stderr


def test_model_generation_config_is_not_inherited(tiny_model, reference, mixed_data, tmp_path):
    model = tmp_path / "sampling-defaults"
    shutil.copytree(tiny_model, model)
    gen = json.loads((model / "generation_config.json").read_text())
    gen.update(do_sample=True, temperature=0.7, top_p=0.8, repetition_penalty=1.3)
    (model / "generation_config.json").write_text(json.dumps(gen))
    out = tmp_path / "out.jsonl"
    result = run_cli("predict", "--model", str(model), "--data", mixed_data, "-o", str(out), "--limit", "8", *FAST)
    assert result.exit_code == 0, result.output
    assert read_rows(out) == reference[:8]
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert meta["effective_generation"]["ignored_model_defaults"] == {"do_sample": True, "repetition_penalty": 1.3}


def test_stop_strings_cut_the_text(tiny_model, reference, mixed_data):
    """Greedy text with a stop string is the unconstrained text cut before the string's first occurrence."""
    from ftbench.data.loader import load_samples
    from ftbench.inference.chat import encode_prompt
    from ftbench.inference.generate import GenerationParams, Generator
    from ftbench.inference.models import load_model_for_generation, load_tokenizer

    full = [r["predict"] for r in reference[:20]]
    stop = next(t[6:9] for t in full if len(t) > 12 and t[6:9].strip())
    expected = [t[: t.find(stop)] if stop in t else t for t in full]
    assert sum(stop in t for t in full) >= 1
    tokenizer, model = load_tokenizer(tiny_model), load_model_for_generation(tiny_model)
    prompts = [encode_prompt(tokenizer, s) for s in load_samples(mixed_data)[:20]]
    for batch_size in (1, 8):
        generator = Generator(model, tokenizer, GenerationParams(max_new_tokens=24, stop=(stop,)))
        got = dict(pair for batch in generator.run(prompts, batch_size) for pair in batch)
        assert [got[i] for i in range(20)] == expected


def test_sampling_is_opt_in_and_seeded(tiny_model, mixed_data, tmp_path):
    outs = []
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        out = tmp_path / f"{name}.jsonl"
        result = predict(
            "--data",
            mixed_data,
            "-o",
            str(out),
            "--limit",
            "6",
            "--temperature",
            "1.0",
            "--seed",
            seed,
            "--batch-size",
            "3",
            *FAST,
        )
        assert result.exit_code == 0, result.output
        outs.append([r["predict"] for r in read_rows(out)])
    assert outs[0] == outs[1] and outs[0] != outs[2]
    meta = json.loads((tmp_path / "a.jsonl.meta.json").read_text())["effective_generation"]
    assert meta["do_sample"] is True and meta["temperature"] == 1.0 and meta["seed"] == 1


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft calls a transformers API deprecated for v6
def test_adapter_changes_the_predictions(tiny_model, reference, mixed_data, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from ftbench.inference.models import load_model_for_generation

    torch.manual_seed(0)
    base = load_model_for_generation(tiny_model)
    lora = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    lora.save_pretrained(tmp_path / "adapter")
    out = tmp_path / "out.jsonl"
    result = predict(
        "--adapter", str(tmp_path / "adapter"), "--data", mixed_data, "-o", str(out), "--limit", "6", *FAST
    )
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert [r["prompt"] for r in rows] == [r["prompt"] for r in reference[:6]]
    assert [r["predict"] for r in rows] != [r["predict"] for r in reference[:6]]
    assert json.loads((tmp_path / "out.jsonl.meta.json").read_text())["adapter_sha256"]


@pytest.mark.parametrize(
    "data, code, words",
    [
        ("no/such/file.jsonl", 2, "no such file"),
        (os.path.join("datasets", "broken", "invalid-json.json"), 1, "invalid-json.json"),
        (os.path.join("datasets", "broken", "truncated-json.json"), 1, "truncated-json.json"),
    ],
)
def test_bad_data_is_one_line_and_loads_no_model(data, code, words, tmp_path):
    result = predict("--data", data, "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == code, result.output
    assert words in result.stderr and result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.output


def test_bad_options_are_one_line(mixed_data, tmp_path):
    for args in (
        ["--adapter", str(tmp_path / "nope")],
        ["--adapter", str(tmp_path)],
        ["--top-p", "0"],
        ["--stop", ""],
        ["--batch-size", "0"],
        ["--model", str(tmp_path / "no-model")],
    ):
        result = run_cli("predict", "--model", "tiny", "--data", mixed_data, "-o", str(tmp_path / "o.jsonl"), *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.strip().count("\n") == 0
        assert not (tmp_path / "o.jsonl").exists()  # nothing written before the inputs are known to be good


def test_out_of_memory_halves_the_batch_and_keeps_the_answers(tiny_model, reference, mixed_data, monkeypatch):
    """Fixed batches (lm-eval's) are split in half; continuous batching restarts the unfinished prompts at half
    the batch size, keeping the answers it already has."""
    import torch

    import ftbench.inference.generate as generate
    from ftbench.data.loader import load_samples
    from ftbench.inference.chat import encode_prompt
    from ftbench.inference.models import load_model_for_generation, load_tokenizer

    tokenizer, model = load_tokenizer(tiny_model), load_model_for_generation(tiny_model)
    prompts = [encode_prompt(tokenizer, s) for s in load_samples(mixed_data)[:16]]
    generator = generate.Generator(model, tokenizer, generate.GenerationParams(max_new_tokens=24))
    real_batch, real_decode, sizes, continuous = generator.generate_batch, generate.greedy_decode, [], []

    def small_memory(prompts):
        sizes.append(len(prompts))
        if len(prompts) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_batch(prompts)

    def small_memory_continuous(model, prompts, pad_id, batch_size, *args, **kwargs):
        continuous.append((batch_size, len(prompts)))
        for n, result in enumerate(real_decode(model, prompts, pad_id, batch_size, *args, **kwargs)):
            if batch_size > 3 and n == 2:  # two answers out, then the memory runs out
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            yield result

    monkeypatch.setattr(generator, "generate_batch", small_memory)
    got = dict(pair for batch in generator.run(prompts, 16, keep_batches=True) for pair in batch)
    assert [got[i] for i in range(16)] == [r["predict"] for r in reference[:16]]
    assert sizes[:3] == [16, 8, 4] and max(s for s in sizes if s <= 3) == 2

    monkeypatch.setattr(generate, "greedy_decode", small_memory_continuous)
    got = dict(pair for batch in generator.run(prompts, 16) for pair in batch)
    assert [got[i] for i in range(16)] == [r["predict"] for r in reference[:16]]
    assert continuous == [(16, 16), (8, 14), (4, 12), (2, 10)]


def test_continuous_batching_gives_each_prompt_its_batch_of_one_answer(tiny_model, mixed_data, one_torch_thread):
    """Greedy decoding drops a row from the batch (and its KV cache) once it ends and lets the next prompt join
    the running batch; every answer equals what transformers' own `generate` makes for that prompt alone, with
    rows ending at many different steps and prompts of different lengths joining mid-way."""
    from collections import Counter

    import torch
    from transformers import GenerationConfig

    from ftbench.data.loader import load_samples
    from ftbench.inference.chat import encode_prompt
    from ftbench.inference.greedy import greedy_decode, left_padded
    from ftbench.inference.models import load_model_for_generation, load_tokenizer

    tokenizer, model = load_tokenizer(tiny_model), load_model_for_generation(tiny_model)
    prompts = [encode_prompt(tokenizer, s) for s in load_samples(mixed_data)[:16]]
    assert len({len(p) for p in prompts}) >= 8
    # the random model never says <|im_end|>: end rows at its commonest tokens instead, so they end at many steps
    ids, mask = left_padded(prompts, tokenizer.pad_token_id, "cpu")
    free = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=40, do_sample=False)[:, ids.shape[1] :]
    stops = [t for t, _ in Counter(free.flatten().tolist()).most_common(3)]
    config = GenerationConfig(
        max_new_tokens=40, do_sample=False, eos_token_id=stops, pad_token_id=tokenizer.pad_token_id
    )

    def until_stop(row):
        end = next((i for i, t in enumerate(row) if t in stops), len(row) - 1)
        return row[: end + 1]

    alone = [
        until_stop(model.generate(input_ids=torch.tensor([p]), generation_config=config)[0, len(p) :].tolist())
        for p in prompts
    ]
    got = list(greedy_decode(model, prompts, tokenizer.pad_token_id, 4, 40, lambda row: row[-1] in stops))
    assert sorted(k for k, _ in got) == list(range(16))
    assert [k for k, _ in got] != list(range(16))  # short answers overtook long ones: rows joined mid-way
    assert {k: until_stop(row) for k, row in got} == dict(enumerate(alone))
    assert len({len(a) for a in alone}) >= 4  # rows really did end at different steps


def test_a_beginning_all_prompts_share_is_computed_once_with_the_same_answers(
    tiny_model, one_torch_thread, monkeypatch
):
    """Prompts under one system prompt (the chat template's default) share their first tokens: greedy decoding runs
    that beginning once (`kv_cache.SharedPrefix`) and each prompt's own tokens after it, and every answer equals
    what transformers' own `generate` makes for the whole prompt alone."""
    import torch
    from transformers import GenerationConfig

    from ftbench.data.loader import load_samples
    from ftbench.inference import kv_cache
    from ftbench.inference.chat import encode_prompt
    from ftbench.inference.greedy import greedy_decode
    from ftbench.inference.models import load_model_for_generation, load_tokenizer

    tokenizer, model = load_tokenizer(tiny_model), load_model_for_generation(tiny_model)
    prompts = [encode_prompt(tokenizer, s) for s in load_samples(os.path.join(REPO, "datasets", "alpaca_demo.json"))]
    prompts = prompts[:12]
    shared = kv_cache.shared_prefix_length(prompts)
    assert shared >= kv_cache.MIN_SHARED and len({len(p) for p in prompts}) >= 6
    made, real = [], kv_cache.SharedPrefix

    def spy(model, ids):
        made.append(len(ids))
        return real(model, ids)

    monkeypatch.setattr(kv_cache, "SharedPrefix", spy)
    config = GenerationConfig(max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
    alone = [model.generate(input_ids=torch.tensor([p]), generation_config=config)[0, len(p) :] for p in prompts]
    got = dict(greedy_decode(model, prompts, tokenizer.pad_token_id, 5, 12, lambda row: False))
    assert made == [shared]  # once, for every row of every join
    assert [got[k] for k in range(len(prompts))] == [a.tolist() for a in alone]


def test_eval_sets_of_different_lengths_and_stops_share_one_batch(tiny_model, reference, mixed_data, monkeypatch):
    """A run's eval sets go to the local engine in one `generate_sets` call: one continuous batch (a single
    `greedy_decode`), each prompt with its own set's length and stop string, and every answer is what its set
    decoded alone gives; the tokens are counted as `generate` counts them."""
    from ftbench.api.generation import GenerationEngine, PromptSet
    from ftbench.data.loader import load_samples
    from ftbench.inference import generate
    from ftbench.inference.engines import render_prompts
    from ftbench.inference.generate import GenerationParams
    from ftbench.inference.local_engine import LocalEngine, LocalOptions

    engine = LocalEngine("tiny", None, LocalOptions(threads=1))
    samples = load_samples(mixed_data)[:24]
    prompts = render_prompts(engine.tokenizer, samples, range(24), None)
    stop = next(t[6:9] for t in (r["predict"] for r in reference[12:24]) if len(t) > 12 and t[6:9].strip())
    sets = [
        PromptSet(prompts, range(0, 12), GenerationParams(max_new_tokens=6)),
        PromptSet(prompts, range(12, 24), GenerationParams(max_new_tokens=24, stop=(stop,))),
        PromptSet(prompts, range(0, 24, 3), GenerationParams(max_new_tokens=24)),
    ]

    def answers(calls):  # per set: index -> answer
        got: list[dict] = [{} for _ in sets]
        for number, results in calls:
            got[number].update(results)
        return got

    alone = [answers(GenerationEngine.generate_sets(engine, [s], 4))[0] for s in sets]  # one set at a time
    separate_usage = dict(engine.usage)
    engine.usage.clear()
    decodes, real = [], generate.greedy_decode
    monkeypatch.setattr(generate, "greedy_decode", lambda *a, **k: decodes.append(len(a[1])) or real(*a, **k))
    assert answers(engine.generate_sets(sets, 4)) == alone
    assert decodes == [32]  # every prompt of every set in one continuous batch
    assert dict(engine.usage) == separate_usage
    # the sets' own settings applied: the same prompt ends earlier with 6 tokens, or at the stop string
    assert all(len(alone[0][i]) <= len(alone[2][i]) for i in range(0, 12, 3))
    assert any(alone[0][i] != alone[2][i] for i in range(0, 12, 3))
    assert any(alone[1][i] != alone[2][i] for i in range(12, 24, 3))


def test_only_plain_greedy_configs_skip_generate(tiny_model):
    """ftbench's own greedy config decodes through `greedy_shrinking`; a config that reshapes the logits (lm-eval's
    convention inherits a model's repetition_penalty) or samples goes through `generate()`, which applies it."""
    from ftbench.inference.generate import GenerationParams, Generator
    from ftbench.inference.greedy import is_plain_greedy
    from ftbench.inference.models import load_model_for_generation, load_tokenizer

    tokenizer, model = load_tokenizer(tiny_model), load_model_for_generation(tiny_model)
    greedy = Generator(model, tokenizer, GenerationParams(max_new_tokens=8)).config
    assert is_plain_greedy(greedy)
    assert not is_plain_greedy(Generator(model, tokenizer, GenerationParams(temperature=0.7)).config)
    for field, value in (
        ("repetition_penalty", 1.3),
        ("no_repeat_ngram_size", 3),
        ("min_new_tokens", 4),
        ("suppress_tokens", [5]),
        ("bad_words_ids", [[7]]),
    ):
        shaped = greedy.__class__(**{**greedy.to_dict(), field: value})
        assert not is_plain_greedy(shaped), field


def test_hybrid_models_are_decoded_by_generate(tiny_model):
    """A model with layers that keep no key/value cache (linear attention, recurrent) is left to `generate()`."""
    from ftbench.inference.greedy import attention_only
    from ftbench.inference.models import load_model_for_generation

    model = load_model_for_generation(tiny_model)
    assert attention_only(model)
    model.config.layer_types = ["full_attention", "linear_attention"]
    assert not attention_only(model)
