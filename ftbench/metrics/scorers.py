"""The built-in scorers: `similarity` (LLaMA-Factory's predict metrics) and `gsm8k` (lm-eval's gsm8k), each
with the explanations it adds beside its figures. Chosen by name through `ftbench.metrics.registry.SCORERS`."""

from __future__ import annotations

from ftbench.api.metrics import Scorer


class SimilarityScorer(Scorer):
    """LLaMA-Factory's predict metrics: bleu-4, rouge-1, rouge-2, rouge-l (plus any standard metric asked for)."""

    name = "similarity"
    description = "LLaMA-Factory predict metrics"
    default_metrics = ("llamafactory",)

    def metric_options(self, metric_name, options):
        return {"jobs": options.get("jobs")} if metric_name in ("llamafactory", "bleu-4", "rouge-1", "rouge-2",
                                                                "rouge-l") else {}

    def explain(self, predictions, references, metrics, result, lines):
        from ftbench.metrics.llamafactory import FIGURES
        from ftbench.metrics.standard import RougeScore, has_cjk

        # do_predict prints round(np.mean(scores), 4); LLaMA-Factory's scripts/eval_bleu_rouge.py (after
        # vllm_infer) and lm-eval print sum(scores)/len(scores). The two floats can differ in the last bit,
        # and when the exact mean sits on a rounding boundary the 4th decimal differs: say so.
        for figure in FIGURES:
            values = result.samples.get(figure)
            if not values:
                continue
            plain = sum(values) / len(values)
            if f"{plain:.4f}" != f"{result.metrics[figure]:.4f}":
                result.details.setdefault("sum_len_means", {})[figure] = plain
                result.details.setdefault("notes", []).append(
                    f"{figure}: the exact mean lies on a rounding boundary; LLaMA-Factory's do_predict (np.mean) "
                    f"prints {result.metrics[figure]:.4f}, its scripts/eval_bleu_rouge.py and lm-eval "
                    f"(sum/len) print {plain:.4f}.")

        if any(isinstance(m, RougeScore) for m in metrics) and any(has_cjk(r) for r in references):
            result.details.setdefault("notes", []).append(
                "rouge-score's tokeniser keeps only a-z and 0-9, so Chinese text contributes nothing to "
                "rouge1/rouge2/rougeL/rougeLsum; LLaMA-Factory's rouge-1/2/l segment it with jieba.")


class Gsm8kScorer(Scorer):
    """lm-eval's gsm8k: exact match under strict-match and flexible-extract, and why they disagree."""

    name = "gsm8k"
    description = "lm-eval gsm8k exact_match"
    default_metrics = ("gsm8k",)

    def metric_options(self, metric_name, options):
        return {"until": tuple(options.get("until") or ())} if metric_name == "gsm8k" else {}

    def explain(self, predictions, references, metrics, result, lines):
        from ftbench.metrics.gsm8k import STRICT_FIGURE, FLEXIBLE_FIGURE, Gsm8kExactMatch, truncate_at
        from ftbench.metrics.gsm8k_diagnosis import explain_disagreements

        metric = next(m for m in metrics if isinstance(m, Gsm8kExactMatch))
        strict, flexible = metric.extracted["strict"], metric.extracted["flexible"]
        if metric.until:
            predictions = [truncate_at(p, metric.until) for p in predictions]
        targets = [str(r) for r in references]
        causes, summary = explain_disagreements(predictions, strict, flexible, result.samples[STRICT_FIGURE],
                                   result.samples[FLEXIBLE_FIGURE], targets, lines)
        result.samples.update({
            "strict": strict, "flexible": flexible,
            "strict_correct": [bool(x) for x in result.samples[STRICT_FIGURE]],
            "flexible_correct": [bool(x) for x in result.samples[FLEXIBLE_FIGURE]],
            "target": targets, "cause": causes})
        result.details["disagreement"] = summary
        runaway = sum(1 for p in predictions if "Question:" in p)
        if runaway and "Question:" not in metric.until:
            result.details.setdefault("notes", []).append(
                f"{runaway} of {len(predictions)} predictions contain 'Question:'. lm-eval stops generating at "
                "'Question:' (gsm8k's `until`), so its filters never see what follows; to score these outputs "
                "as lm-eval would have generated them, add --until 'Question:'.")
