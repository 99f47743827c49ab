"""Before/after figures as terminal text: the table `train-and-compare` ends with and `ftbench compare` prints."""

from __future__ import annotations

import os


def comparison_table(
    figures: dict, *, labels: tuple[str, str, str] = ("before", "after", "delta"), details: bool = False
) -> list[str]:
    """One line per figure: both values, the difference and its 95% paired CI; with ``details`` also
    wins/losses/ties and McNemar's test where they were computed."""
    head = f"{'metric':<18}{labels[0]:>10}{labels[1]:>10}{labels[2]:>10}   95% CI of {labels[2]}"
    lines = [head + ("   wins/losses/ties" if details else "")]
    for fig, e in figures.items():
        ci = e.get("delta_ci95")
        line = f"{fig:<18}{e['before']:>10.4f}{e['after']:>10.4f}{e['delta']:>+10.4f}   " + (
            f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "–".ljust(18)
        )
        if details and "wins" in e:
            line += f"   {e['wins']}/{e['losses']}/{e['ties']}"
        lines.append(line.rstrip())
        if details and "mcnemar" in e:
            m = e["mcnemar"]
            lines.append(
                f"{'':<18}McNemar p = {m['p_value']:.3g} ({m['wrong_to_right']} wrong→right, "
                f"{m['right_to_wrong']} right→wrong)"
            )
    return lines


def run_summary(metrics: dict, out: str) -> str:
    """What `train-and-compare` prints at the end: the figures, the chosen checkpoint, the diagnosis."""
    lines = [""] + comparison_table(metrics["comparison"])
    diag = metrics["training"]["diagnosis"]
    lines += [
        "",
        f"checkpoint: {metrics['checkpoint']['name']} ({metrics['checkpoint']['reason']})",
        f"training: {diag['message']}",
        f"report: {os.path.join(out, 'report.html')}",
    ]
    return "\n".join(lines)
