"""Training configs: LLaMA-Factory keys, key=value overrides, located errors and warnings (no torch needed)."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from ftbench.api.errors import InputError, UsageError
from ftbench.backends import get_backend
from ftbench.cli import cli
from ftbench.training.config import KNOWN, PASSTHROUGH, TYPED, check_unsupported, load_train_config

BASE = """\
model_name_or_path: tiny
stage: sft
do_train: true
finetuning_type: lora
dataset: identity
output_dir: saves/x
"""


def write(tmp_path, text, name="train.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def test_llamafactory_keys_are_typed_with_llamafactory_defaults(tmp_path):
    path = write(
        tmp_path,
        BASE + "lora_rank: 16\nlearning_rate: 5e-5\nnum_train_epochs: 3\nlora_target: q_proj, v_proj\n"
        "max_samples: null\nreport_to: none\nval_size: 0.1\neval_strategy: steps\neval_steps: 50\n",
    )
    cfg, warnings = load_train_config(path)
    assert warnings == []
    assert cfg.lora_rank == 16 and cfg.lora_alpha is None  # 2 * rank at training time, as in LLaMA-Factory
    assert cfg.learning_rate == 5e-5  # PyYAML reads 5e-5 as a string; LLaMA-Factory users write it anyway
    assert cfg.num_train_epochs == 3.0 and isinstance(cfg.num_train_epochs, float)
    assert cfg.lora_target == ["q_proj", "v_proj"]
    assert cfg.dataset == ["identity"] and cfg.dataset_dir == "data" and cfg.cutoff_len == 2048
    assert cfg.max_samples is None and cfg.report_to == ["none"] and cfg.eval_steps == 50
    assert cfg.lines["lora_rank"] == 7 and cfg.where("lora_rank") == f"{path}:7"


def test_yaml_no_is_the_strategy_no(tmp_path):
    cfg, _ = load_train_config(write(tmp_path, BASE + "eval_strategy: no\nsave_strategy: no\n"))
    assert cfg.eval_strategy == "no" and cfg.save_strategy == "no"


def test_overrides_are_yaml_typed_and_win(tmp_path):
    path = write(tmp_path, BASE + "lora_rank: 8\nmax_samples: 100\n")
    cfg, _ = load_train_config(
        path, ["lora_rank=32", "max_samples=null", "learning_rate=1e-3", "dataset=a,b", "bf16=true"]
    )
    assert cfg.lora_rank == 32 and cfg.max_samples is None and cfg.learning_rate == 1e-3
    assert cfg.dataset == ["a", "b"] and cfg.bf16 is True
    assert cfg.where("lora_rank") == "command line"


def test_unknown_key_warns_with_line_and_suggestion(tmp_path):
    path = write(tmp_path, BASE + "lora_rnak: 16\nmy_own_setting: 1\n")
    cfg, warnings = load_train_config(path)
    assert warnings[0] == f"{path}:7: lora_rnak: unknown key, ignored; did you mean lora_rank?"
    assert warnings[1].startswith(f"{path}:8: my_own_setting: unknown key, ignored (not a LLaMA-Factory")
    assert cfg.lora_rank == 8


@pytest.mark.parametrize(
    "line,message",
    [
        ("lora_rank: eight", "lora_rank: expected an integer, got 'eight'"),
        ("learning_rate: fast", "learning_rate: expected a number, got 'fast'"),
        ("bf16: yes please", "bf16: expected true or false, got 'yes please'"),
        ("eval_strategy: sometimes", "eval_strategy: 'sometimes' is not one of no, steps, epoch"),
        ("lora_rank: 0", "lora_rank: must be > 0, got 0"),
        ("flash_attn: fa3", "flash_attn: 'fa3' is not one of auto, disabled, sdpa, fa2"),
        ("eval_strategy: steps", "eval_strategy: steps needs an eval set: set val_size"),
    ],
)
def test_bad_values_are_errors_at_their_line(tmp_path, line, message):
    path = write(tmp_path, BASE + line + "\n")
    with pytest.raises(InputError) as err:
        load_train_config(path)
    assert str(err.value).startswith(f"{path}:7: {message}")


def test_missing_required_keys(tmp_path):
    path = write(tmp_path, "stage: sft\n")
    with pytest.raises(InputError, match=r"model_name_or_path: required.*\(and 2 more problems"):
        load_train_config(path)


@pytest.mark.parametrize(
    "line,message",
    [
        ("stage: dpo", "stage: dpo is not supported by the peft backend (supported: sft)"),
        ("finetuning_type: full", "finetuning_type: full is not supported by the peft backend (supported: lora)"),
        ("packing: true", "packing: True is not supported by the peft backend: sequence packing"),
        ("use_unsloth: true", "use_unsloth: True is not supported by the peft backend: not supported"),
    ],
)
def test_known_but_unsupported_settings_are_errors(tmp_path, line, message):
    path = write(tmp_path, BASE.replace("stage: sft\n", "").replace("finetuning_type: lora\n", "") + line + "\n")
    cfg, warnings = load_train_config(path)
    assert warnings == []  # known keys: not "unknown"
    with pytest.raises(InputError) as err:
        get_backend("peft").check_config(cfg)
    assert str(err.value).startswith(f"{path}:5: {message}")


def test_off_values_of_unsupported_keys_are_fine(tmp_path):
    path = write(
        tmp_path,
        BASE + "quantization_bit: null\npacking: false\ntrain_on_prompt: false\ndeepspeed: null\n"
        "overwrite_cache: true\npreprocessing_num_workers: 16\nddp_timeout: 180000000\n",
    )
    cfg, warnings = load_train_config(path)
    check_unsupported(cfg, "peft")
    assert warnings == []
    assert cfg.training_args == {"ddp_timeout": 180000000}  # handed to TrainingArguments
    assert cfg.extra["overwrite_cache"] is True  # accepted, without effect


def test_old_evaluation_strategy_name_is_read_as_eval_strategy(tmp_path):
    path = write(tmp_path, BASE + "val_size: 0.1\nevaluation_strategy: steps\n")
    cfg, warnings = load_train_config(path)
    assert cfg.eval_strategy == "steps"
    assert "evaluation_strategy: the old name of eval_strategy" in warnings[0]


def test_duplicate_key_warns_and_later_wins(tmp_path):
    path = write(tmp_path, BASE + "lora_rank: 4\nlora_rank: 16\n")
    cfg, warnings = load_train_config(path)
    assert cfg.lora_rank == 16
    assert warnings == [f"{path}:8: lora_rank: given twice; the later value (16) wins (the first is on line 7)"]


def test_yaml_syntax_error_has_file_line_column(tmp_path):
    path = write(tmp_path, BASE + "lora_target: [q_proj, v_proj\nlora_rank: 8\n")
    with pytest.raises(InputError) as err:
        load_train_config(path)
    assert str(err.value).startswith(f"{path}:8:")
    assert "YAML syntax error" in str(err.value)


def test_config_must_be_a_mapping(tmp_path):
    with pytest.raises(InputError, match=r"train.yaml:1:1: the config must be a mapping"):
        load_train_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(InputError, match="the config is empty"):
        load_train_config(write(tmp_path, "# nothing\n", "empty.yaml"))
    with pytest.raises(UsageError, match="no such file"):
        load_train_config(str(tmp_path / "missing.yaml"))


def test_key_tables_do_not_overlap():
    from ftbench.training.config import ACCEPTED, UNSUPPORTED

    groups = [set(TYPED), set(PASSTHROUGH), set(ACCEPTED), set(UNSUPPORTED)]
    for i, a in enumerate(groups):
        for b in groups[i + 1 :]:
            assert not a & b, a & b
    assert {"lora_rank", "cutoff_len", "quantization_bit", "overwrite_cache", "adam_beta2"} <= KNOWN


def test_resolved_config_round_trips(tmp_path):
    from ftbench.training.config import dump_yaml

    path = write(tmp_path, BASE + "lora_target: q_proj,v_proj\nlearning_rate: 1.0e-4\nddp_timeout: 100\n")
    cfg, _ = load_train_config(path)
    again = write(tmp_path, dump_yaml(cfg.to_yaml_dict()), "again.yaml")
    cfg2, warnings = load_train_config(again)
    assert warnings == []
    assert cfg2.to_yaml_dict() == cfg.to_yaml_dict()


# --- through the CLI: one line, exit 1 for config errors, exit 2 for usage; never a traceback ---


def test_cli_config_error_is_one_line_exit_1(tmp_path):
    path = write(tmp_path, BASE + "stage: ppo\n")
    result = CliRunner().invoke(cli, ["train", path])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith(f"ftbench: error: {path}:7: stage: ppo is not supported")


def test_cli_unknown_key_warns_on_stderr_before_failing_elsewhere(tmp_path):
    path = write(tmp_path, BASE + "lora_rnak: 16\nfinetuning_type: freeze\n")
    result = CliRunner().invoke(cli, ["train", path])
    assert result.exit_code == 1
    assert f"ftbench: warning: {path}:7: lora_rnak: unknown key, ignored; did you mean lora_rank?" in result.output
    assert "finetuning_type: freeze is not supported" in result.output


def test_cli_bad_override_is_usage_error(tmp_path):
    path = write(tmp_path, BASE)
    result = CliRunner().invoke(cli, ["train", path, "lora_rank"])
    assert result.exit_code == 2
    assert "overrides are KEY=VALUE" in result.output


def test_cli_override_errors_say_command_line(tmp_path):
    path = write(tmp_path, BASE)
    result = CliRunner().invoke(cli, ["train", path, "lora_rank=big"])
    assert result.exit_code == 1
    assert "ftbench: error: command line: lora_rank: expected an integer, got 'big'" in result.output
