"""The validation report for people: a terminal summary and a self-contained HTML page."""

from __future__ import annotations

import click

from ftbench.api.findings import Finding
from ftbench.quality.validate import ValidationReport
from ftbench.report.html import render

HTML_ROW_LIMIT = 5000  # a page with a million rows would not open; the JSON output has them all


def _counts(report: ValidationReport, findings: list[Finding]) -> str:
    return ", ".join(f"{code} ×{n}" for code, n in report.counts_by_code(findings))


def _lengths(d: dict) -> str:
    return f"p50 {d['p50']:,} · p90 {d['p90']:,} · p99 {d['p99']:,} · max {d['max']:,}"


def _language_mix(stats: dict) -> str:
    langs = stats.get("languages", {})
    total = sum(langs.values()) or 1
    names = {"zh": "Chinese", "en": "English", "mixed": "mixed"}
    return " · ".join(
        f"{names.get(k, k)} {100 * v / total:.0f}%" for k, v in sorted(langs.items(), key=lambda kv: -kv[1])
    )


def validation_text(report: ValidationReport, *, max_shown: int = 20, color: bool = False) -> str:
    """A readable summary: how each file was read, counts by code, the first findings, statistics, verdict."""
    style = click.style if color else (lambda text, **_: text)
    s = report.stats
    lines = [
        f"Checked {len(report.files)} file(s), {report.records:,} records "
        f"({s['valid_records']:,} valid) in {report.seconds:.1f} s"
    ]
    for f in report.files:
        lines.append(f"  {f['file']}{' [' + f['dataset'] + ']' if f.get('dataset') else ''}: {f['reason']}")
    for title, findings, colour in (
        ("Errors", report.errors, "red"),
        ("Warnings", report.warnings, "yellow"),
        ("Notes", report.notes, "cyan"),
    ):
        if not findings:
            continue
        lines.append("")
        lines.append(style(f"{title} ({len(findings):,}): {_counts(report, findings)}", fg=colour, bold=True))
        for finding in findings[:max_shown]:
            lines.append("  " + finding.one_line())
        if len(findings) > max_shown:
            lines.append(f"  … and {len(findings) - max_shown:,} more (--max-shown N, --json or --html for all)")
    if s["valid_records"]:
        tok = s["tokens"]
        lines += [
            "",
            "Statistics",
            f"  prompt chars    {_lengths(s['prompt_chars'])}",
            f"  response chars  {_lengths(s['response_chars'])}",
            f"  {('tokens (est.)' if tok['estimated'] else 'tokens').ljust(16)}{_lengths(tok)}",
            f"  turns           {_lengths(s['turns'])}",
            f"  languages       {_language_mix(s)}",
            f"  duplicates      {s['exact_duplicates']:,} exact, {s['near_duplicates']:,} near"
            + (f" ({s['near_dup_method']})" if "near_dup_method" in s else " (near-duplicate check off)"),
        ]
        if "over_cutoff_len" in s:
            lines.append(f"  over cutoff_len {s['over_cutoff_len']:,}")
        if "test_overlap" in s:
            o = s["test_overlap"]
            lines.append(
                f"  test overlap    {o['exact']:,} exact, {o['near']:,} near (test set: {o['test_records']:,})"
            )
    lines.append("")
    if report.ok:
        verdict = style("OK", fg="green", bold=True) + f": no errors, {len(report.warnings):,} warning(s)"
    else:
        verdict = (
            style("FAILED", fg="red", bold=True) + f": {len(report.errors):,} error(s), "
            f"{len(report.warnings):,} warning(s) — fix the errors before training"
        )
    lines.append(verdict)
    return "\n".join(lines)


def validation_html(report: ValidationReport, *, title: str = "ftbench validate") -> str:
    """The report as a self-contained page (templates/validation.html.j2); at most HTML_ROW_LIMIT rows of each
    kind of finding."""
    s = report.stats
    statistics = []
    if s["valid_records"]:
        for label, key in (
            ("prompt characters", "prompt_chars"),
            ("response characters", "response_chars"),
            ("tokens" + (" (estimated)" if s["tokens"]["estimated"] else ""), "tokens"),
            ("turns", "turns"),
        ):
            statistics.append((label, _lengths(s[key])))
        statistics.append(("languages", _language_mix(s)))
    return render(
        "validation.html.j2", title=title, report=report, stats=s, statistics=statistics, row_limit=HTML_ROW_LIMIT
    )
