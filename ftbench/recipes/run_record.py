"""What a train-and-compare run records about itself beside its figures: what ran, where, with which versions,
and what it cost (metrics.json's "run"), so a report can be trusted and reproduced."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict

from ftbench.api.backends import TrainConfig, TrainResult
from ftbench.cpu_kernels import MKL_SETTING
from ftbench.recipes.run_folder import split_durations
from ftbench.recipes.run_settings import RunSettings
from ftbench.training.checkpoints import CheckpointChoice


def demo_about(name: str | None) -> str | None:
    """What an embedded demo run is, in words, for the report (None for a user's own data)."""
    from ftbench.recipes.demo import DEMOS

    return DEMOS[name].about if name in DEMOS else None


def run_info(cfg: TrainConfig, rs: RunSettings, choice: CheckpointChoice, result: TrainResult | None = None) -> dict:
    """What ran, where, with which versions: so a report can be trusted and reproduced."""
    import torch

    from ftbench import __version__
    from ftbench.metrics.environment import package_version

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    trained_by = _trained_by(cfg, rs)
    return {
        "model": cfg.model_name_or_path,
        "adapter": choice.checkpoint.path,
        "backend": trained_by.name if trained_by else "unknown",
        "trained_run": rs.trained_run,
        "demo": rs.demo,
        "demo_about": demo_about(rs.demo),
        "output_dir": rs.output_dir,
        "config": cfg.to_yaml_dict(),
        "compare": {k: v for k, v in asdict(rs).items() if k not in ("durations", "output_dir", "device")},
        "versions": {
            "ftbench": __version__,
            "python": platform.python_version(),
            **{p: package_version(p) for p in ("torch", "transformers", "peft", "lm-eval", "jieba", "nltk")},
        },
        "hardware": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "gpu": gpu,
            "threads": torch.get_num_threads(),
            "mkl_cbwr": os.environ.get(MKL_SETTING),  # MKL's kernels (`cpu_kernels`): None is its own choice
        },
        "durations": split_durations(rs.durations)[0],  # seconds per stage: they add up to the run's time
        "duration_parts": split_durations(rs.durations)[1],  # inside a stage: the model load, each eval set
        "cost": run_cost(rs, result, choice.checkpoint.path) if result else None,
        "eval_loss_note": trained_by.eval_loss_note if trained_by else None,
    }


def run_cost(rs: RunSettings, result: TrainResult, adapter: str | None = None) -> dict:
    """What the run cost: seconds per stage summed over its segments, peak memory (this process and its
    children, such as LLaMA-Factory; the GPU's when there is one: the last segment's, for a resumed run),
    trainable parameters (the backend's count, else the chosen ``adapter``'s weights: a run trained elsewhere)
    and training throughput. None where it is not known."""
    import torch

    trainable = result.trainable_params
    weights = os.path.join(adapter or "", "adapter_model.safetensors")
    if trainable is None and adapter and os.path.isfile(weights):
        from ftbench.data.run_files import check_safetensors

        trainable = check_safetensors(weights)

    try:
        import resource
    except ImportError:  # Windows
        resource = None

    def gb(who) -> float | None:  # ru_maxrss: KiB on Linux, bytes on macOS
        if resource is None:
            return None
        return round(resource.getrusage(who).ru_maxrss / (2**30 if platform.system() == "Darwin" else 2**20), 2)

    per_sample = result.train_tokens / result.train_samples if result.train_tokens and result.train_samples else None
    return {
        "seconds": round(sum(split_durations(rs.durations)[0].values()), 1),
        "peak_memory_gb": {
            "process": gb(resource and resource.RUSAGE_SELF),
            "children": gb(resource and resource.RUSAGE_CHILDREN),
            "gpu": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
        },
        "trainable_params": trainable,
        "all_params": result.all_params,
        "train_tokens_per_epoch": result.train_tokens,
        "train_samples_per_second": result.train_samples_per_second or None,
        "train_tokens_per_second": round(result.train_samples_per_second * per_sample, 1)
        if per_sample and result.train_samples_per_second
        else None,
    }


def _trained_by(cfg: TrainConfig, rs: RunSettings):
    """The backend class that trained the run: the configured one, or for a `--trained-run` the backend whose
    records the folder holds (a run LLaMA-Factory made alone is LLaMA-Factory's, whatever the config says)."""
    from ftbench.backends import backend_of_run, get_backend

    return backend_of_run(rs.trained_run) if rs.trained_run else type(get_backend(cfg.backend))
