"""The built-in scorers: `similarity` (LLaMA-Factory's predict metrics on the held-out split) and `gsm8k` (lm-eval's
gsm8k on GSM8K problems), each with the explanations it adds beside its figures, and `SampleScorer`, the base that
compares two prediction files by scoring each side and pairing the per-sample values. Chosen by name through
`ftbench.metrics.registry.SCORERS`. Heavy and scoring modules are imported inside methods: loading these classes
(as `--help` does to list the scorers) costs nothing."""

from __future__ import annotations

import os

from ftbench.api.errors import UsageError
from ftbench.api.metrics import Comparison, Scorer


class SampleScorer(Scorer):
    """A scorer whose figures are computed per side: `compare` scores before and after separately and pairs the
    per-sample values (paired bootstrap CI of the delta, wins/losses/ties, McNemar for the ``accuracies``)."""

    def score(self, rows: list[dict], labels: list[str] | None = None):
        """The `ScoreResult` of one side's rows, its figures named as reports name them."""
        from ftbench.metrics.scoring import score_pairs

        labels = [r.get("label", "") for r in rows] if labels is None else labels
        result = score_pairs([r.get("predict", "") for r in rows], labels, scorer=self.name)
        self.report_figures(result)
        return result

    def compare(self, before, after):
        from ftbench.metrics.uncertainty import mcnemar, paired_difference

        labels = [r.get("label", "") for r in before]
        sb, sa = self.score(before, labels), self.score(after, labels)
        figures = {}
        for fig in [f for f in self.figures if f in sb.metrics] + [f for f in sb.metrics if f not in self.figures]:
            xb, xa = sb.samples.get(fig), sa.samples.get(fig)
            entry = {
                "before": sb.metrics[fig],
                "after": sa.metrics[fig],
                "delta": sa.metrics[fig] - sb.metrics[fig],
                "before_ci95": sb.ci95.get(fig),
                "after_ci95": sa.ci95.get(fig),
            }
            if xb is not None and xa is not None:
                paired = paired_difference(xa, xb)
                entry.update(
                    delta_ci95=paired["ci95"],
                    delta_stderr=paired["stderr"],
                    wins=sum(1 for p, q in zip(xb, xa) if q > p),
                    losses=sum(1 for p, q in zip(xb, xa) if q < p),
                    ties=sum(1 for p, q in zip(xb, xa) if q == p),
                )
                if fig in self.accuracies:
                    entry["mcnemar"] = mcnemar([bool(v) for v in xb], [bool(v) for v in xa])
            figures[fig] = entry
        return Comparison(
            self.name,
            len(before),
            figures,
            sb.signatures,
            sb.to_json(),
            sa.to_json(),
            self._rows(before, after, sb, sa),
        )

    def status(self, scores_before: dict, scores_after: dict) -> str:
        """improved / regressed / unchanged for one sample, by the primary figure (then the tie-breaker)."""
        b, a = scores_before.get(self.primary, 0), scores_after.get(self.primary, 0)
        if a == b and self.tie_breaker:
            b, a = scores_before.get(self.tie_breaker, 0), scores_after.get(self.tie_breaker, 0)
        better = a > b if self.higher_is_better else a < b
        return "improved" if better else "unchanged" if a == b else "regressed"

    def _rows(self, before, after, sb, sa) -> list[dict]:
        rows = []
        for i, (x, y) in enumerate(zip(before, after)):
            scores = []
            for result in (sb, sa):
                s = {f: result.samples[f][i] for f in result.metrics if f in result.samples}
                s.update({f: result.samples[f][i] for f in self.sample_fields})
                scores.append(s)
            rows.append(
                {
                    "i": i,
                    "scorer": self.name,
                    "primary": self.primary,
                    "prompt": x.get("prompt", ""),
                    "reference": x.get("label", ""),
                    "before": x.get("predict", ""),
                    "after": y.get("predict", ""),
                    "scores_before": scores[0],
                    "scores_after": scores[1],
                    "status": self.status(*scores),
                }
            )
        return rows


class SimilarityScorer(SampleScorer):
    """LLaMA-Factory's predict metrics: bleu-4, rouge-1, rouge-2, rouge-l (plus any standard metric asked for), on
    the training config's held-out split; its prediction files are LLaMA-Factory's `predictions_{side}.jsonl`."""

    name = "similarity"
    description = "LLaMA-Factory predict metrics"
    default_metrics = ("llamafactory",)
    eval_set = "the held-out split"
    sample_unit = "held-out samples"
    figures = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")
    primary = "rouge-l"
    percent = True
    predictions_file = "predictions_{side}.jsonl"

    def metric_options(self, metric_name, options):
        from ftbench.metrics.registry import figure_owners

        # the LLaMA-Factory metric (asked for by its name or one of its figures) takes worker processes
        return {"jobs": options.get("jobs")} if figure_owners().get(metric_name) == self.default_metrics[0] else {}

    def eval_samples(self, held_out, settings):
        return list(held_out)

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
                    f"(sum/len) print {plain:.4f}."
                )

        if any(isinstance(m, RougeScore) for m in metrics) and any(has_cjk(r) for r in references):
            result.details.setdefault("notes", []).append(
                "rouge-score's tokeniser keeps only a-z and 0-9, so Chinese text contributes nothing to "
                "rouge1/rouge2/rougeL/rougeLsum; LLaMA-Factory's rouge-1/2/l segment it with jieba."
            )


class Gsm8kScorer(SampleScorer):
    """lm-eval's gsm8k: exact match under strict-match and flexible-extract, why they disagree, and strict-parsable
    (the share of answers in '#### N' form), on GSM8K problems (`--gsm8k PATH|openai/gsm8k|none`,
    `--gsm8k-limit`), generated up to gsm8k_max_new_tokens."""

    name = "gsm8k"
    description = "lm-eval gsm8k exact_match"
    default_metrics = ("gsm8k",)
    eval_set = "GSM8K problems"
    sample_unit = "GSM8K problems"
    figures = ("strict-match", "flexible-extract", "strict-parsable")
    primary = "strict-match"
    tie_breaker = "flexible-extract"  # same strict verdict: flexible-extract decides
    judged = ("strict-match", "flexible-extract")
    accuracies = ("strict-match", "flexible-extract", "strict-parsable")
    numeric_labels = True
    length_setting = "gsm8k_max_new_tokens"
    sample_fields = ("strict", "flexible")
    run_detail = "disagreement"

    def metric_options(self, metric_name, options):
        from ftbench.metrics.registry import figure_owners

        return (
            {"until": tuple(options.get("until") or ())}
            if figure_owners().get(metric_name) == self.default_metrics[0]
            else {}
        )

    def recognises(self, labels):
        from ftbench.metrics.gsm8k import looks_like_gsm8k

        return looks_like_gsm8k(labels)

    def report_figures(self, result):
        from ftbench.metrics.gsm8k import add_report_figures

        add_report_figures(result)

    def eval_samples(self, held_out, settings):
        """The first ``settings.gsm8k_limit`` problems of ``settings.gsm8k``: a local JSONL (question/answer),
        "openai/gsm8k" from the hub, or None (no GSM8K evaluation)."""
        from ftbench.data.loader import load_samples

        source, limit = settings.gsm8k, settings.gsm8k_limit
        if not source:
            return []
        if os.path.exists(source):
            return load_samples(source)[:limit]
        if source != "openai/gsm8k":
            raise UsageError(f"gsm8k: {source}: no such file (give a GSM8K JSONL path, openai/gsm8k, or none)")
        try:  # users have the hub; this machine may not
            from datasets import load_dataset

            rows = load_dataset("openai/gsm8k", "main", split="test")
        except Exception as e:
            raise UsageError(
                f"cannot load openai/gsm8k from the hub ({str(e).splitlines()[0][:120]}); pass "
                "--gsm8k PATH to a local GSM8K test.jsonl, or --gsm8k none"
            ) from None
        from ftbench.data.formats import ASSISTANT, USER, Sample

        return [
            Sample([(USER, r["question"]), (ASSISTANT, r["answer"])], "", "", "openai/gsm8k", i, None)
            for i, r in enumerate(rows.select(range(min(limit, len(rows)))))
        ]

    def explain(self, predictions, references, metrics, result, lines):
        from ftbench.metrics.gsm8k import FLEXIBLE_FIGURE, STRICT_FIGURE, Gsm8kExactMatch, target, truncate_at
        from ftbench.metrics.gsm8k_diagnosis import explain_disagreements

        metric = next(m for m in metrics if isinstance(m, Gsm8kExactMatch))
        strict, flexible = metric.extracted["strict"], metric.extracted["flexible"]
        if metric.until:
            predictions = [truncate_at(p, metric.until) for p in predictions]
        targets = [target(r) for r in references]
        causes, summary = explain_disagreements(
            predictions,
            strict,
            flexible,
            result.samples[STRICT_FIGURE],
            result.samples[FLEXIBLE_FIGURE],
            targets,
            lines,
        )
        result.samples.update(
            {
                "strict": strict,
                "flexible": flexible,
                "strict_correct": [bool(x) for x in result.samples[STRICT_FIGURE]],
                "flexible_correct": [bool(x) for x in result.samples[FLEXIBLE_FIGURE]],
                "target": targets,
                "cause": causes,
            }
        )
        result.details["disagreement"] = summary
        runaway = sum(1 for p in predictions if "Question:" in p)
        if runaway and "Question:" not in metric.until:
            result.details.setdefault("notes", []).append(
                f"{runaway} of {len(predictions)} predictions contain 'Question:'. lm-eval stops generating at "
                "'Question:' (gsm8k's `until`), so its filters never see what follows; to score these outputs "
                "as lm-eval would have generated them, add --until 'Question:'."
            )
