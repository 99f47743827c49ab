"""ftbench's metrics as Hugging Face `evaluate` modules shipped inside the package, loadable offline by path, so a
user's own `Trainer(compute_metrics=...)` computes the figures ftbench reports, from the same code:

    import evaluate
    from ftbench.metrics.hf_evaluate import module_path

    similarity = evaluate.load(module_path("similarity"))   # LLaMA-Factory's BLEU-4, ROUGE-1/2/L (x100)
    similarity.compute(predictions=["..."], references=["..."])   # {"bleu-4": ..., "rouge-1": ..., ...}
    gsm8k = evaluate.load(module_path("gsm8k"))              # lm-eval's strict-match / flexible-extract

Each module is a folder holding a script of the same name, as `evaluate.load(<path>)` expects; the script calls
`ftbench.metrics.scoring.score_pairs`, so the figures are identical to `ftbench score`'s.
"""

from __future__ import annotations

from pathlib import Path

MODULES = {"similarity": "ftbench_similarity", "gsm8k": "ftbench_gsm8k"}


def module_path(name: str) -> str:
    """The folder of the `evaluate` module for scorer ``name`` (similarity or gsm8k), for `evaluate.load`."""
    if name not in MODULES:
        raise ValueError(f"no evaluate module {name!r}: choose {', '.join(MODULES)}")
    return str(Path(__file__).resolve().parent / MODULES[name])
