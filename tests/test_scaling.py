"""Training at scale with LLaMA-Factory's keys: `deepspeed: path.json` and `quantization_bit: 4|8` (QLoRA).

The YAML-to-Trainer mapping of each key is checked here on any machine; where CUDA, bitsandbytes or deepspeed is
missing, `ftbench train` says so in one line (exit 2). What needs a GPU is marked and skipped without one.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os

import pytest
from click.testing import CliRunner
from helpers import REPO

from ftbench.api.errors import InputError, UsageError
from ftbench.backends.scaling import (
    ScalePlan,
    check_hardware,
    quantization_config_kwargs,
    scale_plan,
    training_arguments_kwargs,
)
from ftbench.cli import cli
from ftbench.training.config import load_train_config

BASE = "model_name_or_path: tiny\nstage: sft\nfinetuning_type: lora\ndataset: identity\noutput_dir: out\n"
DS = os.path.join(REPO, "examples", "deepspeed")
requires_cuda = pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")


def config(tmp_path, extra: str):
    path = tmp_path / "train.yaml"
    path.write_text(BASE + extra, encoding="utf-8")
    return load_train_config(str(path))[0], str(path)


@pytest.mark.parametrize("name, stage", [("ds_z2_config.json", 2), ("ds_z3_config.json", 3)])
def test_deepspeed_config_goes_to_training_arguments(tmp_path, name, stage):
    from transformers import TrainingArguments

    cfg, _ = config(tmp_path, f"deepspeed: {os.path.join(DS, name)}\n")
    plan = scale_plan(cfg)
    assert plan.deepspeed == os.path.join(DS, name) and plan.zero_stage == stage
    assert training_arguments_kwargs(plan) == {"deepspeed": plan.deepspeed}
    assert "deepspeed" in inspect.signature(TrainingArguments.__init__).parameters
    ds = json.loads(open(plan.deepspeed, encoding="utf-8").read())  # LLaMA-Factory's "auto" values for the Trainer
    assert ds["train_micro_batch_size_per_gpu"] == "auto" and ds["bf16"] == {"enabled": "auto"}


def test_deepspeed_path_is_read_next_to_the_yaml(tmp_path):
    (tmp_path / "ds.json").write_text('{"zero_optimization": {"stage": 2}}', encoding="utf-8")
    cfg, _ = config(tmp_path, "deepspeed: ds.json\n")
    assert scale_plan(cfg).deepspeed == str(tmp_path / "ds.json")


@pytest.mark.parametrize(
    "extra, message",
    [
        ("deepspeed: nowhere.json\n", "deepspeed: nowhere.json: no such file"),
        ("quantization_bit: 3\n", "quantization_bit: 3: bitsandbytes quantizes to 4 or 8 bits"),
        ("quantization_method: gptq\nquantization_bit: 4\n", "quantization_method: gptq: only bitsandbytes"),
        ("quantization_type: int4\nquantization_bit: 4\n", "quantization_type: int4: expected nf4 or fp4"),
        (f"quantization_bit: 8\ndeepspeed: {os.path.join(DS, 'ds_z3_config.json')}\n", "8 with ZeRO-3"),
    ],
)
def test_bad_values_are_located(tmp_path, extra, message):  # the bad key is on line 6
    cfg, path = config(tmp_path, extra)
    with pytest.raises(InputError) as err:
        scale_plan(cfg)
    assert str(err.value).startswith(f"{path}:6: ") and message in str(err.value)


def test_qlora_maps_to_llamafactorys_bitsandbytes_config(tmp_path):
    cfg, _ = config(tmp_path, "quantization_bit: 4\nquantization_method: bitsandbytes\n")
    plan = scale_plan(cfg)
    assert plan == ScalePlan(quantization_bit=4, quantization_type="nf4", double_quantization=True)
    assert quantization_config_kwargs(plan, "bfloat16") == {
        "load_in_4bit": True,
        "bnb_4bit_compute_dtype": "bfloat16",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_quant_storage": "bfloat16",
    }
    cfg, _ = config(
        tmp_path, "quantization_bit: 4\nquantization_method: bnb\nquantization_type: fp4\ndouble_quantization: false\n"
    )
    kwargs = quantization_config_kwargs(scale_plan(cfg), "float16")
    assert kwargs["bnb_4bit_quant_type"] == "fp4" and kwargs["bnb_4bit_use_double_quant"] is False
    cfg, _ = config(tmp_path, "quantization_bit: 8\n")
    assert quantization_config_kwargs(scale_plan(cfg), "float16") == {"load_in_8bit": True}
    cfg, _ = config(tmp_path, "quantization_bit: null\ndeepspeed: null\n")
    assert not scale_plan(cfg).active and quantization_config_kwargs(scale_plan(cfg), "float16") is None


def test_bitsandbytes_config_accepts_the_mapping():
    from transformers import BitsAndBytesConfig

    pytest.importorskip("bitsandbytes")
    import torch

    kwargs = quantization_config_kwargs(ScalePlan(quantization_bit=4), "bfloat16")
    kwargs.update(bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_storage=torch.bfloat16)
    bnb = BitsAndBytesConfig(**kwargs)
    assert bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_use_double_quant


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize(
    "extra, message",
    [
        ("quantization_bit: 4\n", "quantization_bit: 4 (QLoRA with bitsandbytes) needs a CUDA GPU"),
        (f"deepspeed: {os.path.join(DS, 'ds_z3_config.json')}\n", "deepspeed: "),
    ],
)
def test_missing_hardware_is_one_line_exit_2(tmp_path, extra, message):
    (tmp_path / "train.yaml").write_text(BASE + extra, encoding="utf-8")
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "train.yaml")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output
    if "deepspeed" in extra:  # whichever is missing first: the package, or the GPUs
        need = "needs the deepspeed package" if importlib.util.find_spec("deepspeed") is None else "needs CUDA GPUs"
        assert need in lines[0]


def test_check_hardware_names_what_is_missing():
    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes"):
        pytest.skip("CUDA and bitsandbytes are here")
    with pytest.raises(UsageError, match="quantization_bit: 8"):
        check_hardware(ScalePlan(quantization_bit=8))
    check_hardware(ScalePlan())  # nothing asked, nothing needed


@requires_cuda
def test_qlora_trains_the_tiny_model_on_a_gpu(tmp_path):  # GPU only: not run in this project's CI
    pytest.importorskip("bitsandbytes")
    (tmp_path / "train.yaml").write_text(
        BASE.replace("output_dir: out", f"output_dir: {tmp_path / 'out'}") + "quantization_bit: 4\nmax_steps: 2\n"
        "val_size: 0\nsave_steps: 2\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "train.yaml"), "-q"])
    assert result.exit_code == 0, result.output
    assert os.path.isfile(tmp_path / "out" / "adapter_model.safetensors")
