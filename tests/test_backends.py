"""The backend registry: built-in peft, code registration, entry-point discovery, `ftbench backends`, and
`--backend` / `backend:` reaching the chosen backend (with a fake backend: no torch, no training)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from importlib import metadata

import pytest
from click.testing import CliRunner

import ftbench.backends as registry
from ftbench.api.backends import TrainConfig, TrainerBackend, TrainResult
from ftbench.api.errors import UsageError
from ftbench.backends import available_backends, get_backend, register_backend
from ftbench.cli import cli


class RecordingBackend(TrainerBackend):
    """A backend that trains nothing and remembers what it was asked."""

    name = "recording"
    description = "records its calls (tests)"
    calls: list = []

    def check_config(self, config):
        if config.extra.get("quantization_bit") not in (None, 4):
            raise config.error("quantization_bit", "only 4 here")

    def train(self, config, *, resume=False, quiet=False):
        RecordingBackend.calls.append((config, resume))
        return TrainResult(
            output_dir=config.output_dir,
            adapter_dir=config.output_dir,
            trainer_log="log",
            config_path="cfg",
            global_step=3,
        )


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry.BACKENDS, "_code", {})
    monkeypatch.setattr(registry.BACKENDS, "_entry_points", lambda: [])
    RecordingBackend.calls = []
    yield


def test_peft_is_built_in_and_default(clean_registry):
    infos = available_backends()
    assert [(i.name, i.source, i.error) for i in infos] == [
        ("llamafactory", "built-in", None),
        ("peft", "built-in", None),
    ]
    assert "transformers Trainer + peft" in infos[1].description and "LLaMA-Factory" in infos[0].description
    backend = get_backend()
    assert backend.name == "peft" and isinstance(backend, TrainerBackend)


def test_unknown_backend_names_the_installed_ones(clean_registry):
    register_backend("recording", RecordingBackend)
    with pytest.raises(UsageError) as err:
        get_backend("axolotl")
    assert str(err.value) == (
        "unknown backend 'axolotl'; installed: llamafactory, peft, recording (see `ftbench backends`)"
    )


def test_register_twice_needs_replace(clean_registry):
    register_backend("recording", RecordingBackend)
    with pytest.raises(ValueError):
        register_backend("recording", RecordingBackend)
    register_backend("recording", f"{__name__}:RecordingBackend", replace=True)
    assert isinstance(get_backend("recording"), RecordingBackend)


def _fake_entry_point(monkeypatch, name, value, module_name=None, cls=None):
    if module_name:
        module = types.ModuleType(module_name)
        module.Backend = cls
        monkeypatch.setitem(sys.modules, module_name, module)
    ep = metadata.EntryPoint(name, value, registry.ENTRY_POINT_GROUP)
    return ep


def test_entry_point_backends_are_discovered(clean_registry, monkeypatch):
    good = _fake_entry_point(monkeypatch, "recording", "fake_pkg.backend:Backend", "fake_pkg.backend", RecordingBackend)
    broken = _fake_entry_point(monkeypatch, "broken", "no_such_module_xyz:Backend")
    not_a_backend = _fake_entry_point(monkeypatch, "wrong", "fake_pkg.other:Backend", "fake_pkg.other", dict)
    ours = metadata.EntryPoint("peft", registry.BACKENDS.builtins["peft"], registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry.BACKENDS, "_entry_points", lambda: [good, broken, not_a_backend, ours])
    infos = {i.name: i for i in available_backends()}
    assert set(infos) == {"llamafactory", "peft", "recording", "broken", "wrong"}
    assert infos["peft"].source == "built-in"  # our own entry point is not listed twice
    assert infos["recording"].source.startswith("entry point") and infos["recording"].error is None
    assert infos["recording"].description == "records its calls (tests)"
    assert "ModuleNotFoundError" in infos["broken"].error
    assert "not a TrainerBackend subclass" in infos["wrong"].error
    assert isinstance(get_backend("recording"), RecordingBackend)
    with pytest.raises(UsageError, match="backend 'broken' .* cannot be loaded: ModuleNotFoundError"):
        get_backend("broken")


def test_cli_backends_lists_text_and_json(clean_registry):
    register_backend("recording", RecordingBackend)
    result = CliRunner().invoke(cli, ["backends"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("llamafactory  built-in: your own LLaMA-Factory")
    assert lines[1].startswith("peft          built-in (default): LoRA SFT")
    assert lines[2].startswith("recording     registered in code: records its calls")
    result = CliRunner().invoke(cli, ["backends", "--json"])
    data = json.loads(result.output)
    assert [d["name"] for d in data] == ["llamafactory", "peft", "recording"]
    assert data[1]["default"] is True and data[1]["target"] == "ftbench.backends.peft:PeftBackend"


CONFIG = "model_name_or_path: tiny\ndataset: identity\noutput_dir: {out}\nquantization_bit: 4\n"


def test_backend_option_and_yaml_key_choose_the_backend(clean_registry, tmp_path):
    register_backend("recording", RecordingBackend)
    path = tmp_path / "train.yaml"
    path.write_text(CONFIG.format(out=tmp_path / "out"), encoding="utf-8")
    # quantization_bit is unsupported by peft, but this backend accepts it: the check is the backend's
    result = CliRunner().invoke(cli, ["train", str(path), "--backend", "recording", "--resume", "lora_rank=4"])
    assert result.exit_code == 0, result.output
    config, resume = RecordingBackend.calls[-1]
    assert isinstance(config, TrainConfig) and config.backend == "recording" and resume is True
    assert config.lora_rank == 4 and config.extra == {"quantization_bit": 4}

    path.write_text("backend: recording\n" + CONFIG.format(out=tmp_path / "out"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["train", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["global_step"] == 3
    assert RecordingBackend.calls[-1][1] is False

    result = CliRunner().invoke(cli, ["train", str(path)])
    assert result.exit_code == 0
    path.write_text(
        CONFIG.format(out=tmp_path / "out").replace("quantization_bit: 4", "packing: true"), encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["train", str(path), "--backend", "peft"])
    assert result.exit_code == 1
    assert "packing: True is not supported by the peft backend" in result.output


def test_unknown_backend_in_yaml_points_at_its_line(clean_registry, tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(CONFIG.format(out=tmp_path / "out") + "backend: axolotl\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["train", str(path)])
    assert result.exit_code == 1
    assert (
        f"ftbench: error: {path}:5: backend: unknown backend 'axolotl'; installed: llamafactory, peft" in result.output
    )
    result = CliRunner().invoke(cli, ["train", str(path), "--backend", "nope"])
    assert result.exit_code == 2
    assert "unknown backend 'nope'" in result.output


def test_listing_backends_imports_no_torch():
    code = (
        "import sys; from ftbench.cli import main; sys.argv=['ftbench','backends']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False"


class ListingBackend(TrainerBackend):
    """A backend that trains nothing, lists three evaluated checkpoints and leaves the choice to ftbench."""

    name = "listing"
    description = "lists checkpoints (tests)"
    config_file = "listing_run.yaml"
    eval_loss_note = "Eval losses are the listing trainer's."

    def train(self, config, *, resume=False, quiet=False):
        import os

        from ftbench.api.backends import CheckpointInfo

        os.makedirs(config.output_dir, exist_ok=True)
        paths = [os.path.join(config.output_dir, n) for n in ("checkpoint-10", "checkpoint-20")]
        return TrainResult(
            output_dir=config.output_dir,
            adapter_dir=config.output_dir,
            trainer_log="log",
            config_path="cfg",
            global_step=30,
            checkpoints=[
                CheckpointInfo(paths[0], 10, 1.5),
                CheckpointInfo(paths[1], 20, 1.2),
                CheckpointInfo(config.output_dir, 30, 1.3),
            ],
        )


def test_ftbench_train_applies_the_one_checkpoint_rule_to_what_a_backend_returns(clean_registry, tmp_path):
    """A backend only lists its checkpoints: `ftbench train` chooses once (lowest eval loss), records the choice
    in the result and in checkpoints.json."""
    register_backend("listing", ListingBackend)
    config = tmp_path / "train.yaml"
    config.write_text(f"model_name_or_path: tiny\ndataset: d.json\noutput_dir: {tmp_path / 'out'}\n")
    result = CliRunner().invoke(cli, ["train", str(config), "--backend", "listing", "--json"])
    assert result.exit_code == 0, result.output
    trained = json.loads(result.output)
    assert trained["best_checkpoint"] == str(tmp_path / "out" / "checkpoint-20")
    assert trained["choice_reason"].startswith("lowest eval loss 1.2000 of 3 saved checkpoints evaluated")
    table = json.loads((tmp_path / "out" / "checkpoints.json").read_text())
    assert table["best_checkpoint"] == trained["best_checkpoint"]


def test_a_backend_declares_its_run_records(clean_registry, tmp_path):
    """`--trained-run` finds a run's config through the file its backend declares, and the backend that made a
    folder is known by it (a Trainer folder no backend marked is LLaMA-Factory's, which reads unmarked runs)."""
    from ftbench.backends import backend_of_run
    from ftbench.backends.llamafactory import LlamaFactoryBackend
    from ftbench.backends.peft import PeftBackend
    from ftbench.recipes.run_settings import trained_run_config

    register_backend("listing", ListingBackend)
    for name, backend in (
        ("listing_run.yaml", ListingBackend),
        ("ftbench_config.yaml", PeftBackend),
        ("ftbench_llamafactory.yaml", LlamaFactoryBackend),
    ):
        folder = tmp_path / name
        folder.mkdir()
        (folder / name).write_text("model_name_or_path: tiny\n")
        assert backend_of_run(str(folder)) is backend
        assert trained_run_config(str(folder)) == str(folder / name)
    assert ListingBackend.eval_loss_note and PeftBackend.eval_loss_note is None
    assert "LLaMA-Factory" in LlamaFactoryBackend.eval_loss_note
    assert backend_of_run(str(tmp_path)) is LlamaFactoryBackend
    with pytest.raises(UsageError, match="give --config"):
        trained_run_config(str(tmp_path))
