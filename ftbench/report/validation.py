"""The validation report for people: a terminal summary and a self-contained HTML page."""

from __future__ import annotations

import click

from ftbench.api.findings import Finding
from ftbench.report.html import esc, page
from ftbench.validate import ValidationReport

HTML_ROW_LIMIT = 5000  # a page with a million rows would not open; the JSON output has them all


def _counts(report: ValidationReport, findings: list[Finding]) -> str:
    return ", ".join(f"{code} ×{n}" for code, n in report.counts_by_code(findings))


def _lengths(d: dict) -> str:
    return f"p50 {d['p50']:,} · p90 {d['p90']:,} · p99 {d['p99']:,} · max {d['max']:,}"


def _language_mix(stats: dict) -> str:
    langs = stats.get("languages", {})
    total = sum(langs.values()) or 1
    names = {"zh": "Chinese", "en": "English", "mixed": "mixed"}
    return " · ".join(f"{names.get(k, k)} {100 * v / total:.0f}%" for k, v in sorted(langs.items(), key=lambda kv: -kv[1]))


def render_text(report: ValidationReport, *, max_shown: int = 20, color: bool = False) -> str:
    """A readable summary: how each file was read, counts by code, the first findings, statistics, verdict."""
    style = click.style if color else (lambda text, **_: text)
    s = report.stats
    lines = [f"Checked {len(report.files)} file(s), {report.records:,} records "
             f"({s['valid_records']:,} valid) in {report.seconds:.1f} s"]
    for f in report.files:
        lines.append(f"  {f['file']}{' [' + f['dataset'] + ']' if f.get('dataset') else ''}: {f['reason']}")
    for title, findings, colour in (("Errors", report.errors, "red"), ("Warnings", report.warnings, "yellow")):
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
        lines += ["", "Statistics",
                  f"  prompt chars    {_lengths(s['prompt_chars'])}",
                  f"  response chars  {_lengths(s['response_chars'])}",
                  f"  {('tokens (est.)' if tok['estimated'] else 'tokens').ljust(16)}{_lengths(tok)}",
                  f"  turns           {_lengths(s['turns'])}",
                  f"  languages       {_language_mix(s)}",
                  f"  duplicates      {s['exact_duplicates']:,} exact, {s['near_duplicates']:,} near"
                  + (f" ({s['near_dup_method']})" if "near_dup_method" in s else " (near-duplicate check off)")]
        if "over_cutoff_len" in s:
            lines.append(f"  over cutoff_len {s['over_cutoff_len']:,}")
        if "test_overlap" in s:
            o = s["test_overlap"]
            lines.append(f"  test overlap    {o['exact']:,} exact, {o['near']:,} near (test set: {o['test_records']:,})")
    lines.append("")
    if report.ok:
        verdict = style("OK", fg="green", bold=True) + f": no errors, {len(report.warnings):,} warning(s)"
    else:
        verdict = (style("FAILED", fg="red", bold=True) + f": {len(report.errors):,} error(s), "
                   f"{len(report.warnings):,} warning(s) — fix the errors before training")
    lines.append(verdict)
    return "\n".join(lines)


def _finding_rows(findings: list[Finding], kind: str) -> str:
    rows = []
    for f in findings[:HTML_ROW_LIMIT]:
        where = esc(f.file or "") + (f":{f.line}" if f.line else "") + (f":{f.column}" if f.column else "")
        rows.append(f'<tr class="{kind}"><td class="mono">{where}</td><td class="mono">{esc(f.path or "")}</td>'
                    f'<td><code>{esc(f.code)}</code></td><td class="text">{esc(f.message)}</td>'
                    f'<td class="text muted">{esc(f.hint or "")}</td></tr>')
    more = (f'<tr><td colspan="5" class="muted">… {len(findings) - HTML_ROW_LIMIT:,} more (see --json)</td></tr>'
            if len(findings) > HTML_ROW_LIMIT else "")
    return "".join(rows) + more


def render_html(report: ValidationReport, *, title: str = "ftbench validate") -> str:
    s = report.stats
    verdict = ('<span class="pill ok">OK</span>' if report.ok else '<span class="pill err">FAILED</span>')
    body = [f"<h1>{esc(title)} {verdict}</h1>",
            f'<p class="muted">{report.records:,} records ({s["valid_records"]:,} valid), {len(report.errors):,} errors, '
            f"{len(report.warnings):,} warnings, {report.seconds:.1f} s</p>",
            "<h2>Files</h2><table><tr><th>file</th><th>format</th><th>why</th></tr>"]
    body += [f"<tr><td class='mono'>{esc(f['file'])}</td><td>{esc(f['format'])}</td><td>{esc(f['reason'])}</td></tr>"
             for f in report.files]
    body.append("</table><h2>Counts by code</h2><table><tr><th>severity</th><th>code</th><th class='num'>count</th></tr>")
    for kind, findings in (("error", report.errors), ("warning", report.warnings)):
        body += [f"<tr><td class='{'err' if kind == 'error' else 'warn'}'>{kind}</td><td><code>{esc(code)}</code></td>"
                 f"<td class='num'>{n:,}</td></tr>" for code, n in report.counts_by_code(findings)]
    body.append("</table>")
    for title_, findings, kind in (("Errors", report.errors, "error"), ("Warnings", report.warnings, "warning")):
        if findings:
            body.append(f"<h2>{title_}</h2><table><tr><th>where</th><th>field</th><th>code</th><th>what</th>"
                        f"<th>how to fix</th></tr>{_finding_rows(findings, kind)}</table>")
    if s["valid_records"]:
        body.append("<h2>Statistics</h2><table>")
        for label, key in (("prompt characters", "prompt_chars"), ("response characters", "response_chars"),
                           ("tokens" + (" (estimated)" if s["tokens"]["estimated"] else ""), "tokens"),
                           ("turns", "turns")):
            body.append(f"<tr><th>{esc(label)}</th><td>{esc(_lengths(s[key]))}</td></tr>")
        body.append(f"<tr><th>languages</th><td>{esc(_language_mix(s))}</td></tr>")
        body.append(f"<tr><th>duplicates</th><td>{s['exact_duplicates']:,} exact, {s['near_duplicates']:,} near "
                    f"<span class='muted'>{esc(s.get('near_dup_method', 'near-duplicate check off'))}</span></td></tr>")
        body.append("</table>")
    return page(title, "".join(body))
