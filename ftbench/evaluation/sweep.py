"""Reading a sweep: which lever moves the metric, by how much, and how sure that is. Pure functions over each run's
per-sample scores on the shared held-out split and its training log, so every rule is unit-tested on synthetic
results with known answers.

Uncertainty: every run is scored on the same held-out samples, so one set of bootstrap resamples of those samples
gives every run's mean at once; a slope or a difference computed on each resample gives its 95% interval. A
setting trained with several seeds also has its seeds resampled in each draw
(`metrics.uncertainty.seed_and_sample_means`), so its intervals cover training-seed noise too; with one seed per
setting they cover the evaluation samples only, which the report says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ftbench.metrics.evidence import UNCHANGED, change_evidence
from ftbench.metrics.uncertainty import Bootstrap, percentile_interval, seed_and_sample_means

LEVERS = ("data", "lr", "epochs", "rank", "model")
OVERFIT_TOLERANCE = 0.02  # eval loss 2% above its minimum at the end of training counts as overfitting


@dataclass
class RunOutcome:
    """One finished run of a sweep, as the analysis needs it."""

    name: str
    lever: str  # "baseline" or one of LEVERS
    settings: dict  # every lever's setting in this run: {"data": fraction, "lr": ..., "rank": ..., "model": ...}
    train_size: int
    scores: list[float]  # the chosen metric per held-out sample (chosen checkpoint; the mean over seeds)
    log: list[dict] = field(default_factory=list)  # trainer_log rows
    checkpoints: list[dict] = field(default_factory=list)  # {step, eval_loss, epoch}
    seed_scores: list[list[float]] = field(default_factory=list)  # per training seed, per sample (>= 2 seeds)
    diverged_at: int | None = None  # the step the run's own diagnosis says training diverged at (its report's)

    @property
    def by_seed(self) -> np.ndarray:
        """(seeds, samples) scores: one row per training seed (one row when the setting ran once)."""
        return np.asarray(self.seed_scores if self.seed_scores else [self.scores], dtype=np.float64)

    @property
    def seeds(self) -> int:
        return len(self.seed_scores) or 1

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores)) if self.scores else float("nan")


def _draws(runs: list[RunOutcome]) -> np.ndarray:
    """(resamples, runs) means of the runs' scores over the same bootstrap resamples of the held-out samples, and
    of each run's training seeds where it has several."""
    n = len(runs[0].scores)
    if any(len(r.scores) != n for r in runs):
        raise ValueError("every run of a sweep is scored on the same held-out samples")
    return seed_and_sample_means([r.by_seed for r in runs])


def learning_curve(runs: list[RunOutcome], ceiling: float | None = None) -> dict | None:
    """The metric against log2(training samples): an ordinary least-squares line through the runs' means, its
    slope (what one doubling of the data is worth) and the value it predicts at twice the largest size, each
    with a 95% bootstrap interval; the prediction is capped at ``ceiling`` (a figure's maximum: 100 for
    BLEU/ROUGE), where a straight line would promise more than the metric can give. None with fewer than two
    distinct sizes."""
    runs = sorted(runs, key=lambda r: r.train_size)
    sizes = np.array([r.train_size for r in runs], dtype=np.float64)
    if len(set(sizes.tolist())) < 2:
        return None
    x = np.log2(sizes)
    draws = _draws(runs)
    design = np.column_stack([np.ones_like(x), x])
    coef = np.linalg.lstsq(design, draws.T, rcond=None)[0]  # (2, resamples)
    point = np.linalg.lstsq(design, np.array([r.mean for r in runs]), rcond=None)[0]
    x_next = x.max() + 1
    line = coef[0] + coef[1] * x_next
    predicted = np.clip(line, 0.0, ceiling) if ceiling else line
    point_next = float(point[0] + point[1] * x_next)
    reach = percentile_interval(line) if len(draws) > 1 else [point_next, point_next]
    return {
        "points": [
            {
                "run": r.name,
                "size": r.train_size,
                "mean": r.mean,
                "ci95": percentile_interval(draws[:, i]) if len(draws) > 1 else None,
            }
            for i, r in enumerate(runs)
        ],
        "intercept": float(point[0]),
        "slope": float(point[1]),
        "slope_ci95": percentile_interval(coef[1]) if len(draws) > 1 else None,
        "next_size": int(2 * sizes.max()),
        "next_predicted": min(max(point_next, 0.0), ceiling) if ceiling else point_next,
        "next_capped": bool(ceiling and not 0.0 <= min(point_next, *reach) <= max(point_next, *reach) <= ceiling),
        "next_ci95": percentile_interval(predicted) if len(draws) > 1 else None,
    }


def compare_settings(runs: list[RunOutcome], lever: str) -> dict:
    """The best run by mean, and its paired difference to the runner-up with a 95% bootstrap interval: a clear
    winner only when that interval excludes 0 (the samples are shared, so the paired interval is the one that
    answers "is it better on these samples", tighter than whether two separate intervals overlap)."""
    draws = _draws(runs)
    means = [r.mean for r in runs]
    order = sorted(range(len(runs)), key=lambda i: -means[i])
    out = {
        "ranking": [
            {
                "run": runs[i].name,
                "value": runs[i].settings.get(lever),
                "mean": means[i],
                "ci95": percentile_interval(draws[:, i]) if len(draws) > 1 else None,
            }
            for i in order
        ],
        "best": runs[order[0]].name,
        "best_value": runs[order[0]].settings.get(lever),
    }
    if len(runs) < 2:
        return {**out, "clear": False, "margin": None, "margin_ci95": None, "runner_up": None}
    b, s = order[0], order[1]
    diff = draws[:, b] - draws[:, s]
    ci = percentile_interval(diff) if len(draws) > 1 else None
    return {
        **out,
        "runner_up": runs[s].name,
        "runner_up_value": runs[s].settings.get(lever),
        "margin": means[b] - means[s],
        "margin_ci95": ci,
        "clear": bool(ci is not None and ci[0] > 0),
    }


def epoch_curve(checkpoints: list[dict]) -> dict | None:
    """Eval loss at each evaluated checkpoint: where it is lowest, and whether it rose after that (overfitting:
    the last is OVERFIT_TOLERANCE above the lowest) or was still falling at the end. None with fewer than two."""
    points = sorted((c for c in checkpoints if c.get("eval_loss") is not None), key=lambda c: c["step"])
    points = list({c["step"]: c for c in points}.values())  # the final adapter repeats the last checkpoint
    if len(points) < 2:
        return None
    best = min(points, key=lambda c: (c["eval_loss"], c["step"]))
    last = points[-1]
    overfit = best["step"] != last["step"] and last["eval_loss"] > best["eval_loss"] * (1 + OVERFIT_TOLERANCE)
    still_falling = best["step"] == last["step"] and last["eval_loss"] < points[-2]["eval_loss"]
    return {
        "points": [{"step": c["step"], "epoch": c.get("epoch"), "eval_loss": c["eval_loss"]} for c in points],
        "best_step": best["step"],
        "best_epoch": best.get("epoch"),
        "best_eval_loss": best["eval_loss"],
        "last_eval_loss": last["eval_loss"],
        "overfit": overfit,
        "still_falling": still_falling,
    }


def metric_by_checkpoint(checkpoints: list[dict]) -> dict | None:
    """The metric at each checkpoint whose generations were scored (``scores``: per-sample values, from
    --select-by): the best one, and whether the metric fell after it (the best minus the last, paired 95% CI above
    0: "peaked") or was still rising at the end (the last minus the one before, CI above 0). None with fewer than
    two scored checkpoints."""
    points = list(
        {c["step"]: c for c in sorted((c for c in checkpoints if c.get("scores")), key=lambda c: -c["step"])}.values()
    )[::-1]
    if len(points) < 2:
        return None
    matrix = np.column_stack([np.asarray(c["scores"], dtype=np.float64) for c in points])
    draws = Bootstrap(len(matrix)).means(matrix)
    means = matrix.mean(axis=0)
    best = max(range(len(points)), key=lambda i: (means[i], -points[i]["step"]))
    last = len(points) - 1
    if best != last:
        ci = percentile_interval(draws[:, best] - draws[:, last])
        change, peaked, rising = float(means[best] - means[last]), bool(ci and ci[0] > 0), False
    else:
        ci = percentile_interval(draws[:, last] - draws[:, last - 1])
        change, peaked, rising = float(means[last] - means[last - 1]), False, bool(ci and ci[0] > 0)
    return {
        "points": [{"step": c["step"], "epoch": c.get("epoch"), "mean": float(m)} for c, m in zip(points, means)],
        "best_step": points[best]["step"],
        "best_epoch": points[best].get("epoch"),
        "change": change,
        "change_ci95": ci,
        "peaked": peaked,
        "rising": rising,
    }


def _epoch_text(epochs: list) -> str:
    values = sorted({round(e, 1) for e in epochs if e is not None})
    return f" epoch {'/'.join(f'{e:g}' for e in values)}" if values else ""


def _epochs(runs: list[RunOutcome], data: list[RunOutcome], metric: str, scale100: bool) -> tuple[dict, dict] | None:
    """Epochs, from every run's evaluated checkpoints (no extra training): by the metric when the checkpoints'
    generations were scored, with eval loss beside it; by eval loss alone otherwise."""
    losses = {r.name: c for r in runs if (c := epoch_curve(r.checkpoints))}
    scored = {r.name: c for r in runs if (c := metric_by_checkpoint(r.checkpoints))}
    if not losses and not scored:
        return None
    evidence = [
        f"{k}: {metric} by checkpoint "
        + ", ".join(
            f"step {p['step']}"
            + (f" (epoch {p['epoch']:.2g})" if p.get("epoch") is not None else "")
            + f" {p['mean']:.2f}"
            for p in v["points"]
        )
        for k, v in scored.items()
    ]
    evidence += [
        f"{k}: lowest eval loss {v['best_eval_loss']:.4f} at step {v['best_step']}"
        + (f" (epoch {v['best_epoch']:.2g})" if v.get("best_epoch") is not None else "")
        + f", last {v['last_eval_loss']:.4f}"
        for k, v in losses.items()
    ]
    table = {"eval_loss": losses, "metric": scored}

    def where(hits: dict, curves: dict) -> str:
        if len(data) > 1 and all(r.name in hits for r in data):
            return " at every data size"
        return f" in {len(hits)} of {len(curves)} runs" if len(curves) > 1 else ""

    if scored:
        peaked = {k: v for k, v in scored.items() if v["peaked"]}
        rising = {k: v for k, v in scored.items() if v["rising"]}
        if peaked:
            drop = max(v["change"] for v in peaked.values())
            drop_text = _fmt(drop, scale100).lstrip("+")
            text = (
                f"{metric} peaks at{_epoch_text([v['best_epoch'] for v in peaked.values()])}"
                f"{where(peaked, scored)} and falls after it (by up to {drop_text}) — fewer epochs, or keep that "
                "checkpoint (--select-by does)"
            )
        elif len(rising) == len(scored):
            text = f"{metric} still rising at the last checkpoint of every run — more epochs may help"
        else:
            text = f"epochs: no clear change in {metric} over the last checkpoints"
        return table, {"lever": "epochs", "text": text, "evidence": evidence, "clear": bool(peaked or rising)}
    overfit = {k: v for k, v in losses.items() if v["overfit"]}
    falling = {k: v for k, v in losses.items() if v["still_falling"]}
    if overfit:
        text = (
            f"overfits after{_epoch_text([v['best_epoch'] for v in overfit.values()])}{where(overfit, losses)}"
            " (eval loss) — fewer epochs (the chosen checkpoint already stops there)"
        )
    elif len(falling) == len(losses):
        text = "eval loss was still falling at the end of every run — more epochs may help"
    else:
        text = "epochs: no overfitting seen (eval loss at the end within 2% of its lowest)"
    return table, {"lever": "epochs", "text": text, "evidence": evidence, "clear": bool(overfit or falling)}


def _eval_loss_note(group: list[RunOutcome], lever: str) -> str | None:
    """Where the metric cannot separate the settings, what eval loss says: the setting with the lowest eval loss
    when it is at least 5% below the highest (eval loss averages every held-out token, a finer signal than a
    metric over few samples; no interval is put on it here)."""
    lowest = {}
    for r in group:
        finite = [
            c["eval_loss"] for c in r.checkpoints if c.get("eval_loss") is not None and np.isfinite(c["eval_loss"])
        ]
        if finite:
            lowest[r.name] = (min(finite), r.settings.get(lever))
    if len(lowest) < 2:
        return None
    (best_loss, best_value), (worst_loss, worst_value) = min(lowest.values()), max(lowest.values())
    if best_loss > worst_loss * 0.95:
        return None
    return (
        f"eval loss, over every held-out token, is lowest at {_setting(lever, best_value)} ({best_loss:.2f} against "
        f"{worst_loss:.2f} at {_setting(lever, worst_value)}): a finer signal, without an interval here"
    )


def _fmt(value: float, scale100: bool) -> str:
    return f"{value:+.1f}" if scale100 else f"{value:+.3f}"


def _ci(ci, scale100: bool) -> str:
    return f"95% CI {_fmt(ci[0], scale100)}…{_fmt(ci[1], scale100)}" if ci else "no CI: too few samples"


def _setting(lever: str, value) -> str:
    if lever == "lr":
        return f"{value:.3g}"
    if lever == "rank":
        return f"r={value}"
    return str(value)


def analyse(runs: list[RunOutcome], metric: str, scale100: bool = True, unit: str = "held-out samples") -> dict:
    """Every lever's analysis and the verdicts in words, each with its evidence and what it rests on (samples,
    seeds). ``scale100``: the metric is on LLaMA-Factory's 0–100 scale (BLEU/ROUGE) rather than 0–1 (GSM8K), for
    the number of decimals shown; ``unit``: what one held-out sample is called."""
    baseline = [r for r in runs if r.lever == "baseline"]
    by_lever = {lever: baseline + [r for r in runs if r.lever == lever] for lever in LEVERS}
    out: dict = {"metric": metric, "levers": {}, "verdicts": []}
    verdicts = out["verdicts"]
    n, seeds = len(runs[0].scores) if runs else 0, max((r.seeds for r in runs), default=1)
    rests_on = f"rests on {n} {unit}" + (
        f" and {seeds} training seeds per setting"
        if seeds > 1
        else " and one training seed per setting (seed noise not measured)"
    )

    data = [r for r in by_lever["data"]]
    curve = learning_curve(data, ceiling=100.0 if scale100 else None) if len(data) > 1 else None
    if curve:
        out["levers"]["data"] = curve
        s, ci = curve["slope"], curve["slope_ci95"]
        sizes = ", ".join(str(p["size"]) for p in curve["points"])
        evidence = [f"{metric} at {p['size']} samples: {p['mean']:.2f}" for p in curve["points"]]
        nci = curve["next_ci95"]
        evidence.append(
            f"least-squares slope over log2(samples) {sizes}: {_fmt(s, scale100)} per doubling "
            f"({_ci(ci, scale100)}); predicted at {curve['next_size']} samples: "
            f"{curve['next_predicted']:.2f}"
            + (f" (95% CI {nci[0]:.2f}…{nci[1]:.2f})" if nci else "")
            + (
                ", capped at 100, the metric's maximum, which the straight line would pass"
                if curve["next_capped"]
                else ""
            )
        )
        evidence.append(rests_on)
        if ci and ci[0] > 0:
            text = (
                f"more data still pays: {_fmt(s, scale100)} {metric} per doubling ({_ci(ci, scale100)}) — "
                "collect more before tuning"
            )
        elif ci and ci[1] < 0:
            text = f"more data made it worse: {_fmt(s, scale100)} {metric} per doubling ({_ci(ci, scale100)})"
        else:
            slope = change_evidence(s, ci, n, unit=unit, fmt=lambda v: _fmt(v, scale100))
            seen = (
                f"the same {metric} at every data size ({sizes} samples)"
                if slope.kind == UNCHANGED
                else f"{_fmt(s, scale100)} {metric} per doubling, {_ci(ci, scale100)} spans 0"
            )
            text = (
                f"more data: no detectable effect on {n} {unit} ({seen}) — this sweep cannot tell whether more "
                f"data would help; {slope.surer}"
            )
        verdicts.append(
            {"lever": "data", "text": text, "evidence": evidence, "clear": bool(ci and (ci[0] > 0 or ci[1] < 0))}
        )

    for lever, name in (("lr", "learning rate"), ("rank", "LoRA rank"), ("model", "base model")):
        group = by_lever[lever]
        if len(group) < 2:
            continue
        cmp = compare_settings(group, lever)
        cmp["diverged"] = {r.name: r.diverged_at for r in group if r.diverged_at is not None}
        out["levers"][lever] = cmp
        evidence = [
            f"{_setting(lever, e['value'])}: {metric} {e['mean']:.2f}"
            + (f" (95% CI {e['ci95'][0]:.2f}…{e['ci95'][1]:.2f})" if e["ci95"] else "")
            for e in cmp["ranking"]
        ]
        if cmp["margin_ci95"]:
            evidence.append(
                f"best − runner-up on the same samples: {_fmt(cmp['margin'], scale100)} "
                f"({_ci(cmp['margin_ci95'], scale100)})"
            )
        by_name = {r.name: r for r in group}
        notes = [
            f"{_setting(lever, by_name[k].settings.get(lever))} diverged at step {v}"
            for k, v in cmp["diverged"].items()
        ]
        evidence.append(rests_on)
        if cmp["clear"]:
            text = f"{name}: {_setting(lever, cmp['best_value'])} best"
        else:
            text = (
                f"{name}: no clear winner by {metric} (the best, {_setting(lever, cmp['best_value'])}, is within "
                f"the noise of the runner-up on {n} {unit})"
            )
            loss_note = _eval_loss_note(group, lever)
            if loss_note:
                notes.append(loss_note)
        verdicts.append(
            {"lever": lever, "text": "; ".join([text] + notes), "evidence": evidence, "clear": cmp["clear"]}
        )

    epochs = _epochs(runs, data, metric, scale100)
    if epochs:
        out["levers"]["epochs"], verdict = epochs
        verdicts.append(verdict)

    if curve and "model" in out["levers"] and curve["slope_ci95"]:
        base_mean = next(r.mean for r in baseline) if baseline else None
        best = out["levers"]["model"]["ranking"][0]
        if base_mean is not None and best["run"] != baseline[0].name:
            gain = best["mean"] - base_mean
            lo, hi = curve["slope_ci95"]
            if gain > hi:
                text = f"the model {best['value']} gains more than doubling the data would"
            elif gain < lo:
                text = f"doubling the data is worth more than moving to {best['value']}"
            else:
                text = f"moving to {best['value']} is worth about one doubling of the data (within its CI)"
            verdicts.append(
                {
                    "lever": "model",
                    "clear": not lo <= gain <= hi,
                    "text": text,
                    "evidence": [
                        f"{best['value']}: {_fmt(gain, scale100)} {metric} over the baseline model; "
                        f"one doubling of data: {_fmt(curve['slope'], scale100)} "
                        f"({_ci(curve['slope_ci95'], scale100)})"
                    ],
                }
            )
    return out
