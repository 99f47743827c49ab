"""`ftbench export`: the merged model is a plain transformers model whose greedy outputs equal base + adapter."""

from __future__ import annotations

import json
import os
import textwrap

import pytest
from click.testing import CliRunner

from ftbench.cli import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = os.path.join(REPO, "datasets")


@pytest.fixture(scope="module")
def trained_adapter(tiny_model, tmp_path_factory):
    """A LoRA adapter trained for a few steps on the tiny model (enough to change what it generates)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("export")
    config = tmp / "train.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        model_name_or_path: tiny
        dataset: {DATASETS}/identity.json
        max_samples: 32
        cutoff_len: 128
        lora_rank: 8
        output_dir: {tmp / "adapter"}
        per_device_train_batch_size: 4
        learning_rate: 3.0e-2
        max_steps: 12
        save_steps: 100
        logging_steps: 4
        """),
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["train", str(config), "--quiet"])
    torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return tmp, str(tmp / "adapter")


def _greedy(model, tokenizer, prompts, max_new_tokens=24):
    import torch

    outputs = []
    for ids in prompts:
        with torch.no_grad():
            out = model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                do_sample=False,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        outputs.append(out[0, len(ids) :].tolist())
    return outputs


def test_merged_model_generates_what_base_plus_adapter_generates(trained_adapter):
    from ftbench.data.loader import load_samples
    from ftbench.inference.chat import encode_prompt
    from ftbench.inference.models import load_model_for_generation, load_tokenizer

    tmp, adapter = trained_adapter
    merged_dir = tmp / "merged"
    result = CliRunner().invoke(cli, ["export", "--model", "tiny", "--adapter", adapter, "--output", str(merged_dir)])
    assert result.exit_code == 0, result.output
    assert f"merged model: {merged_dir}" in result.output

    files = set(os.listdir(merged_dir))
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer_config.json"} <= files
    assert "adapter_config.json" not in files and not any(f.endswith(".bin") for f in files)
    with open(merged_dir / "ftbench_export.json", encoding="utf-8") as fh:
        assert json.load(fh)["base_model"] == "tiny"

    tokenizer = load_tokenizer(str(merged_dir))
    samples = (
        load_samples(os.path.join(DATASETS, "alpaca_demo.json"))[:4]
        + load_samples(os.path.join(DATASETS, "identity.json"))[:2]
    )
    prompts = [encode_prompt(tokenizer, s) for s in samples]
    merged = _greedy(load_model_for_generation(str(merged_dir)), tokenizer, prompts)
    with_adapter = _greedy(load_model_for_generation("tiny", adapter=adapter), tokenizer, prompts)
    base = _greedy(load_model_for_generation("tiny"), tokenizer, prompts)
    assert merged == with_adapter
    assert merged != base  # the adapter changes the outputs, so the equality above says something


def test_export_refuses_a_non_empty_output_without_overwrite(trained_adapter):
    tmp, adapter = trained_adapter
    target = tmp / "occupied"
    target.mkdir()
    (target / "notes.txt").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(cli, ["export", "--model", "tiny", "--adapter", adapter, "--output", str(target)])
    assert result.exit_code == 2
    assert "the folder is not empty (pass --overwrite to replace it)" in result.output
    assert (target / "notes.txt").read_text(encoding="utf-8") == "mine"
    result = CliRunner().invoke(
        cli, ["export", "--model", "tiny", "--adapter", adapter, "--output", str(target), "--overwrite", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == str(target)
    assert not (target / "notes.txt").exists() and (target / "model.safetensors").is_file()


def test_export_of_a_folder_without_an_adapter_is_one_line(trained_adapter):
    tmp, _ = trained_adapter
    result = CliRunner().invoke(
        cli, ["export", "--model", "tiny", "--adapter", str(tmp), "--output", str(tmp / "nothing")]
    )
    assert result.exit_code == 2
    assert "not a peft adapter folder (no adapter_config.json)" in result.output
    assert "Traceback" not in result.output
