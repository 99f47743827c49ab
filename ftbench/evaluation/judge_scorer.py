"""The `judge` and `retention-judge` scorers: a judge model compares the base model's and the fine-tuned model's
answers pairwise (`ftbench.evaluation.judge`: both orders, reference-guided where there is a reference), on the
held-out split and on the retention prompts. A run with `judge:` (or `--judge-model`) gets them; they judge the
answers the run already generated (`Scorer.answers_of`), nothing is generated twice.

Figure: the fine-tuned side's win rate ×100 ((wins + ties/2) / judged prompts). The base model against itself
ties, so its "before" is 50 and the delta is the win rate minus 50, with the judge's paired-bootstrap interval;
wins/losses/ties are the fine-tuned side's. The judgments file in the run folder makes a killed run resume with
nothing judged twice.
"""

from __future__ import annotations

from ftbench.api.errors import UsageError
from ftbench.api.metrics import Comparison, Scorer, format_signature

NO_JUDGE = "this scorer judges a run's answers with the run's judge: for two prediction files use `ftbench judge A B`"


class JudgeScorer(Scorer):
    """A judge model's pairwise verdicts on the held-out answers, fine-tuned against base (MT-Bench's protocol)."""

    name = "judge"
    description = "a judge model's pairwise verdict, fine-tuned answer against base answer, in both orders"
    eval_set = "held-out samples, judged pairwise"
    sample_unit = "held-out samples"
    figures = ("judge-win-rate",)
    primary = "judge-win-rate"
    judged = ()  # not a per-side figure: it cannot choose a checkpoint
    percent = True
    run_detail = "judge"
    judges = "similarity"  # whose answers it judges
    with_reference = True  # reference-guided when the held-out sample has a reference

    def answers_of(self, settings):
        return self.judges if getattr(settings, "judge", None) else None

    def compare(self, before, after):
        raise UsageError(NO_JUDGE)

    def compare_in_run(self, before, after, settings, folder):
        from ftbench.evaluation.judge import JudgeSettings, Pair, judge, rouge_l_gain

        if not getattr(settings, "judge", None):
            raise UsageError(NO_JUDGE)
        judge_settings = JudgeSettings(**settings.judge)
        pairs = [
            Pair(str(x["prompt"]), str(x["predict"]), str(y["predict"]), self.with_reference and x.get("label") or None)
            for x, y in zip(before, after)
        ]
        result = judge(
            pairs,
            judge_settings,
            folder.file(f"{self.name}_judgments.jsonl"),
            metric=rouge_l_gain(before, after) if self.with_reference else None,
        )
        return self._comparison(result, before, after, judge_settings)

    def _comparison(self, result: dict, before: list[dict], after: list[dict], settings) -> Comparison:
        from ftbench import __version__

        figure = self.primary
        rate, ci = result["win_rate"], result["win_rate_ci95"]
        after_value = 50.0 if rate is None else 100.0 * rate
        entry = {
            "before": 50.0,
            "after": after_value,
            "delta": after_value - 50.0,
            "before_ci95": None,
            "after_ci95": [100.0 * ci[0], 100.0 * ci[1]] if ci else None,
            "delta_ci95": [100.0 * ci[0] - 50.0, 100.0 * ci[1] - 50.0] if ci else None,
            "delta_stderr": None,
            "wins": result["wins"],
            "losses": result["losses"],
            "ties": result["ties"],
            "sign_test": result["sign_test"],
        }
        signature = format_signature(
            figure,
            judge=settings.model,
            where="server" if settings.url else "local",
            orders="both",
            disagree="tie",
            reference="shown" if self.with_reference else None,
            templates="user" if settings.templates else "shipped",
            max_tokens=settings.max_new_tokens,
            ftbench=__version__,
        )
        detail = {k: v for k, v in result.items() if k != "pairs"}
        scores = {"win": 100.0, "loss": 0.0, "tie": 50.0}
        rows = []
        for p in result["pairs"]:
            i, outcome = p["index"], p["outcome"]
            rows.append(
                {
                    "i": i,
                    "scorer": self.name,
                    "primary": figure,
                    "prompt": before[i].get("prompt", ""),
                    "reference": before[i].get("label", "") if self.with_reference else "",
                    "before": before[i].get("predict", ""),
                    "after": after[i].get("predict", ""),
                    "scores_before": {figure: 50.0},
                    "scores_after": {figure: scores.get(outcome)},
                    "status": {"win": "improved", "loss": "regressed"}.get(outcome, "unchanged"),
                    "note": _reasons(p),
                }
            )
        return Comparison(
            self.name,
            len(result["pairs"]),
            {figure: entry},
            {figure: signature},
            {"scorer": self.name, "n": len(rows), self.run_detail: None},
            {"scorer": self.name, "n": len(rows), self.run_detail: detail},
            rows,
        )

    def headline_lines(self, detail, comparison):
        """The judge's verdict in words: counts, swap disagreements, the length split and the agreement with
        ROUGE-L's direction (the caution a judge's verdict needs)."""
        d = (detail or {}).get("after")
        if not d:
            return []
        if d.get("win_rate") is None:
            return [
                f"Judge {d['judge']} gave no readable verdict ([[A]], [[B]] or [[C]]) on any of {d['n']} "
                f"{self.sample_unit}: its replies are in {self.name}_judgments.jsonl; a stronger judge is needed."
            ]
        tie_note = f", {d['inconsistent']} of the ties because its two orders disagreed" if d["inconsistent"] else ""
        lines = [
            f"Judge {d['judge']} on {d['judged']} {self.sample_unit}: the fine-tuned "
            f"answer won {d['wins']}, lost {d['losses']} and tied {d['ties']}{tie_note} (sign test p = "
            f"{d['sign_test']['p_value']:.3g})."
        ]
        longer, shorter = d["length_bias"]["candidate_longer"], d["length_bias"]["baseline_longer"]
        if longer["n"] and shorter["n"]:
            lines.append(
                f"Length bias check on the {self.sample_unit}: win rate {longer['win_rate']:.0%} where the "
                f"fine-tuned answer is longer ({longer['n']}), {shorter['win_rate']:.0%} where it is shorter "
                f"({shorter['n']})."
            )
        agree = d.get("metric_agreement") or {}
        if agree.get("share") is not None:
            lines.append(
                f"The judge agrees with ROUGE-L's direction on {agree['agree']} of {agree['decisive']} decisive "
                "verdicts."
            )
        if d.get("unparseable"):
            lines.append(f"{d['unparseable']} judgments had no readable verdict and are left out.")
        return lines


class RetentionJudgeScorer(JudgeScorer):
    """The judge's pairwise verdicts on the retention prompts: did the fine-tune make general answers worse?"""

    name = "retention-judge"
    description = "a judge model's pairwise verdict on the general (retention) prompts, fine-tuned against base"
    eval_set = "general prompts, judged pairwise"
    sample_unit = "general prompts"
    figures = ("retention-win-rate",)
    primary = "retention-win-rate"
    run_detail = "retention_judge"
    judges = "retention"
    with_reference = False  # the retention prompts' answers are not references


def _reasons(pair: dict) -> str:
    """Both orders' replies, saying which answer was A in each."""
    reasons = pair.get("reasons") or {}
    return "\n\n".join(
        f"[{label}] {reasons[order]}"
        for order, label in (("ab", "A = base, B = fine-tuned"), ("ba", "A = fine-tuned, B = base"))
        if reasons.get(order)
    )
