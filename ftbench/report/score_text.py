"""Plain-text rendering of a ScoreResult: figures with uncertainty, the GSM8K diagnosis, signatures."""

from __future__ import annotations

from ftbench.api.metrics import ScoreResult

_EXAMPLES_SHOWN = 2


def _number(value: float | None, places: int = 4) -> str:
    return "n/a" if value is None or value != value else f"{value:.{places}f}"


def render_figures(result: ScoreResult) -> list[str]:
    width = max([len("figure")] + [len(f) for f in result.metrics])
    lines = [f"  {'figure':<{width}}  {'value':>10}  {'stderr':>8}  95% CI"]
    for figure, value in result.metrics.items():
        ci = result.ci95.get(figure)
        ci_text = f"[{_number(ci[0])}, {_number(ci[1])}]" if ci else "n/a"
        lines.append(f"  {figure:<{width}}  {_number(value):>10}  {_number(result.stderr.get(figure)):>8}  {ci_text}")
    return lines


def render_disagreement(result: ScoreResult) -> list[str]:
    """Why strict-match and flexible-extract differ, cause by cause, with examples."""
    summary = result.details.get("disagreement")
    strict = result.metrics.get("exact_match,strict-match")
    flexible = result.metrics.get("exact_match,flexible-extract")
    if summary is None or strict is None or flexible is None:
        return []
    gap = (flexible - strict) * 100
    if summary["disagreements"] == 0:
        return ["", "strict-match and flexible-extract agree on every sample."]
    direction = "lower" if gap < 0 else "higher"
    lines = [
        "",
        f"Why the two differ (flexible-extract is {abs(gap):.2f} points {direction} than strict-match):",
        f"  {summary['strict_only_correct']} samples right under strict-match only, "
        f"{summary['flexible_only_correct']} under flexible-extract only; "
        f"[invalid]: strict-match {summary['invalid']['strict-match']}, "
        f"flexible-extract {summary['invalid']['flexible-extract']}.",
    ]
    for cause, entry in summary["causes"].items():
        lines.append(
            f"  {cause:<22} {entry['count']:>5}  (strict only {entry['strict_only']}, "
            f"flexible only {entry['flexible_only']})"
        )
        lines.append(f"      {entry['explanation']}")
        for ex in entry["examples"][:_EXAMPLES_SHOWN]:
            where = f"line {ex['line']}" if ex["line"] is not None else f"[{ex['index']}]"
            lines.append(
                f"      {where}: strict {ex['strict']!r}, flexible {ex['flexible']!r}, "
                f'target {ex["target"]!r}: "{ex["excerpt"]}"'
            )
    both = summary.get("both_wrong_number_format") or {}
    if both.get("count"):
        plural = "s" if both["count"] != 1 else ""
        lines.append(f"  also {both['count']} sample{plural} wrong under both: {both['explanation']}")
        for ex in both["examples"][:_EXAMPLES_SHOWN]:
            where = f"line {ex['line']}" if ex["line"] is not None else f"[{ex['index']}]"
            lines.append(
                f"      {where}: strict {ex['strict']!r}, flexible {ex['flexible']!r}, "
                f'target {ex["target"]!r}: "{ex["excerpt"]}"'
            )
    return lines


def score_text(
    result: ScoreResult, source: str | None = None, description: str | None = None, kind: str = "scorer"
) -> str:
    """`ftbench score`'s text (``kind`` "scorer"), or `ftbench eval`'s ("task": the result is an eval task's)."""
    head = f"{source}: " if source else ""
    about = f" ({description})" if description else ""
    lines = [f"{head}{result.n:,} samples, {kind} {result.scorer}{about}", ""]
    lines += render_figures(result)
    lines += render_disagreement(result)
    for note in result.details.get("notes", []):
        lines += ["", f"note: {note}"]
    lines += ["", "signatures:"]
    width = max((len(f) for f in result.signatures), default=0)
    lines += [f"  {figure:<{width}}  {sig}" for figure, sig in result.signatures.items()]
    lines += [f"  stderr: {result.uncertainty.get('stderr', '')}; 95% CI: {result.uncertainty.get('ci95', '')}"]
    return "\n".join(lines)
