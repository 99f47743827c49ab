"""The before/after report: one self-contained HTML page (inline CSS, JS and SVG; no network request; works
from file://). Every piece of dataset or model text is either escaped on the server or inserted in the
browser with `textContent` from a JSON blob whose `<`, `>` and `&` are \\u-escaped, so a `<script>` in the
data is shown as text and never runs.
"""

from __future__ import annotations

import json

from ftbench.report.html import esc, page

FIGURE_ORDER = ("bleu-4", "rouge-1", "rouge-2", "rouge-l", "strict-match", "flexible-extract", "strict-parsable")
CSS = """
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .v { font-size: 20px; font-variant-numeric: tabular-nums; } .up { color: var(--ok); } .down { color: var(--err); }
.controls { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; margin: 8px 0; }
.controls button { border: 1px solid var(--line); background: #fff; border-radius: 14px; padding: 2px 12px; cursor: pointer; }
.controls button.on { background: #1d232b; color: #fff; }
.controls input { padding: 3px 8px; border: 1px solid var(--line); border-radius: 6px; min-width: 220px; }
td.t { max-width: 320px; } .clip { max-height: 6.2em; overflow: hidden; cursor: pointer; position: relative; }
.clip.open { max-height: none; } .st-improved { color: var(--ok); } .st-regressed { color: var(--err); }
svg text { font: 11px sans-serif; fill: #5b6673; } .note { background: #f6f8fa; border-left: 3px solid #9aa4af; padding: 8px 12px; }
"""

SCRIPT = r"""
(function () {
  var data = JSON.parse(document.getElementById('samples-data').textContent);
  var body = document.getElementById('samples-body'), count = document.getElementById('samples-count');
  var state = {status: 'all', task: 'all', q: '', sort: 'index'};
  function primary(r) { return r.task === 'gsm8k' ? 'strict-match' : 'rouge-l'; }
  function delta(r) { var k = primary(r); return (r.scores_after[k] || 0) - (r.scores_before[k] || 0); }
  function cell(tr, text, cls) {
    var td = document.createElement('td'); if (cls) td.className = cls;
    var div = document.createElement('div'); div.className = 'clip text'; div.textContent = text;
    div.title = 'click to expand'; div.addEventListener('click', function () { div.classList.toggle('open'); });
    td.appendChild(div); tr.appendChild(td);
  }
  function num(tr, text, cls) { var td = document.createElement('td'); td.className = 'num ' + (cls || ''); td.textContent = text; tr.appendChild(td); }
  function fmt(v) { return typeof v === 'number' ? (Math.abs(v) >= 1 || v === 0 ? v.toFixed(2) : v.toFixed(3)) : String(v); }
  function render() {
    var q = state.q.toLowerCase();
    var rows = data.filter(function (r) {
      if (state.status !== 'all' && r.status !== state.status) return false;
      if (state.task !== 'all' && r.task !== state.task) return false;
      if (!q) return true;
      return [r.prompt, r.reference, r.before, r.after].join('\n').toLowerCase().indexOf(q) >= 0;
    });
    if (state.sort === 'delta') rows.sort(function (a, b) { return delta(b) - delta(a); });
    if (state.sort === '-delta') rows.sort(function (a, b) { return delta(a) - delta(b); });
    body.textContent = '';
    rows.forEach(function (r) {
      var tr = document.createElement('tr'); tr.className = 'row st-' + r.status; tr.dataset.status = r.status;
      num(tr, String(r.i)); num(tr, r.task);
      cell(tr, r.prompt, 't'); cell(tr, r.reference, 't'); cell(tr, r.before, 't'); cell(tr, r.after, 't');
      var k = primary(r);
      num(tr, k + ' ' + fmt(r.scores_before[k]) + ' → ' + fmt(r.scores_after[k]));
      num(tr, r.status, 'st-' + r.status);
      body.appendChild(tr);
    });
    count.textContent = rows.length + ' of ' + data.length + ' samples';
  }
  document.querySelectorAll('[data-status]').forEach(function (b) {
    if (b.tagName !== 'BUTTON') return;
    b.addEventListener('click', function () {
      state.status = b.dataset.status;
      document.querySelectorAll('button[data-status]').forEach(function (x) { x.classList.toggle('on', x === b); });
      render();
    });
  });
  document.getElementById('task-filter').addEventListener('change', function (e) { state.task = e.target.value; render(); });
  document.getElementById('sort').addEventListener('change', function (e) { state.sort = e.target.value; render(); });
  document.getElementById('search').addEventListener('input', function (e) { state.q = e.target.value; render(); });
  render();
})();
"""


def json_for_script(value) -> str:
    """JSON that is safe inside a <script> element: no `</script>`, no `<!--`, no HTML entities."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _fmt(value, places: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{places}f}"
    return esc(value)


def _ci(ci) -> str:
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "–"


def headline(metrics: dict) -> str:
    """The before → after table of every figure, with the delta's paired-bootstrap CI and tests."""
    rows = []
    for fig in FIGURE_ORDER:
        e = metrics["comparison"].get(fig)
        if e is None:
            continue
        d = e["delta"]
        cls = "up" if d > 0 else "down" if d < 0 else ""
        ci = e.get("delta_ci95")
        sure = " (CI excludes 0)" if ci and (ci[0] > 0 or ci[1] < 0) else ""
        test = ""
        if "mcnemar" in e:
            m = e["mcnemar"]
            test = f"McNemar p = {m['p_value']:.3g} ({m['wrong_to_right']} wrong→right, {m['right_to_wrong']} right→wrong)"
        rows.append(f"<tr><td><code>{esc(fig)}</code></td><td class='num'>{_fmt(e['before'])}</td>"
                    f"<td class='num'>{_fmt(e['after'])}</td><td class='num {cls}'>{d:+.4f}</td>"
                    f"<td class='num'>{_ci(ci)}{esc(sure)}</td>"
                    f"<td class='num'>{e.get('wins', '–')} / {e.get('losses', '–')} / {e.get('ties', '–')}</td>"
                    f"<td>{esc(test)}</td></tr>")
    return ("<table><tr><th>metric</th><th class='num'>before</th><th class='num'>after</th><th class='num'>Δ</th>"
            "<th class='num'>95% CI of Δ (paired bootstrap)</th><th class='num'>wins / losses / ties</th>"
            f"<th>test</th></tr>{''.join(rows)}</table>")


def loss_chart(log_rows: list[dict], chosen_step: int | None, width: int = 760, height: int = 260) -> str:
    """Train and eval loss against steps as inline SVG, with the chosen checkpoint marked."""
    from ftbench.report.training import curves

    train, evals = curves(log_rows)
    points = train + evals
    if not points:
        return "<p class='muted'>No loss was logged.</p>"
    x0, x1 = 0, max(s for s, _ in points) or 1
    finite = [v for _, v in points if v == v and abs(v) != float("inf")]
    y0, y1 = min(finite), max(finite)
    y0, y1 = (y0 - 0.05 * (y1 - y0 or 1), y1 + 0.05 * (y1 - y0 or 1))
    pad_l, pad_b, pad_t, pad_r = 48, 28, 10, 12

    def sx(s):
        return pad_l + (s - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def sy(v):
        return pad_t + (y1 - v) / (y1 - y0) * (height - pad_t - pad_b)

    def path(pts, color, dash=""):
        d = " ".join(f"{'M' if i == 0 else 'L'}{sx(s):.1f},{sy(v):.1f}" for i, (s, v) in enumerate(pts))
        dots = "".join(f"<circle cx='{sx(s):.1f}' cy='{sy(v):.1f}' r='2.5' fill='{color}'/>" for s, v in pts) \
            if dash else ""
        return f"<path d='{d}' fill='none' stroke='{color}' stroke-width='1.8' {dash}/>{dots}"

    parts = [f"<svg role='img' aria-label='loss curves' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}'>"]
    for k in range(5):
        v = y0 + (y1 - y0) * k / 4
        parts.append(f"<line x1='{pad_l}' x2='{width - pad_r}' y1='{sy(v):.1f}' y2='{sy(v):.1f}' stroke='#eef0f3'/>"
                     f"<text x='4' y='{sy(v) + 4:.1f}'>{v:.2f}</text>")
    parts.append(f"<text x='{pad_l}' y='{height - 6}'>step 0</text><text x='{width - pad_r - 60}' "
                 f"y='{height - 6}'>step {x1}</text>")
    if train:
        parts.append(path(train, "#2f6feb"))
    if evals:
        parts.append(path(evals, "#d1242f", "stroke-dasharray='5 3'"))
    if chosen_step is not None:
        x = sx(chosen_step)
        right = x > 0.7 * width  # near the right edge the label goes on the line's left
        parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{pad_t}' y2='{height - pad_b}' stroke='#1a7f37' "
                     f"stroke-width='1.5'/><text x='{x - 4 if right else x + 4:.1f}' y='{pad_t + 30}' "
                     f"text-anchor='{'end' if right else 'start'}' style='fill:#1a7f37'>chosen: step "
                     f"{chosen_step}</text>")
    parts.append(f"<text x='{width - 190}' y='{pad_t + 12}' style='fill:#2f6feb'>— train loss</text>"
                 f"<text x='{width - 100}' y='{pad_t + 12}' style='fill:#d1242f'>- - eval loss</text></svg>")
    return "".join(parts)


def _gsm8k_section(metrics: dict) -> str:
    g = metrics.get("gsm8k")
    if not g:
        return "<h2>GSM8K</h2><p class='muted'>GSM8K was not evaluated in this run (--gsm8k none).</p>"
    comp = metrics["comparison"]
    out = ["<h2>GSM8K: strict-match vs flexible-extract</h2><table><tr><th></th><th class='num'>strict-match</th>"
           "<th class='num'>flexible-extract</th></tr>"]
    for side in ("before", "after"):
        out.append(f"<tr><th>{side}</th><td class='num'>{_fmt(comp['strict-match'][side])}</td>"
                   f"<td class='num'>{_fmt(comp['flexible-extract'][side])}</td></tr>")
    out.append("</table>")
    for side in ("before", "after"):
        d = g.get(side) or {}
        causes = d.get("causes") or {}
        invalid = d.get("invalid") or {}
        out.append(f"<h3>{side}: strict and flexible disagree on {esc(d.get('disagreements', 0))} of "
                   f"{esc(metrics.get('n', {}).get('gsm8k', ''))} problems</h3><p class='muted'>No answer found "
                   f"([invalid]): strict-match {esc(invalid.get('strict-match', 0))}, flexible-extract "
                   f"{esc(invalid.get('flexible-extract', 0))}.</p>")
        if not causes:
            out.append("<p class='muted'>They agree on every sample.</p>")
            continue
        out.append("<table><tr><th>cause</th><th class='num'>count</th><th>example</th></tr>")
        for name, info in causes.items():
            ex = (info.get("examples") or [{}])[0]
            example = (f"strict {ex.get('strict')!r}, flexible {ex.get('flexible')!r}, target {ex.get('target')!r}: "
                       f"{ex.get('excerpt', '')}") if ex else ""
            out.append(f"<tr><td><b>{esc(name)}</b>: {esc(info.get('explanation', ''))}</td><td class='num'>{esc(info.get('count'))}"
                       f"</td><td class='text mono'>{esc(example)}</td></tr>")
        out.append("</table>")
    return "".join(out)


def _checkpoint_label(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name if name.startswith("checkpoint-") else "final adapter"


def _kv_table(items: dict) -> str:
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td class='mono text'>{esc(v)}</td></tr>"
                               for k, v in items.items()) + "</table>"


def render_run_report(metrics: dict, tasks: dict, log_rows: list[dict], validation: dict | None,
                      title: str = "ftbench: did the fine-tune help?") -> str:
    """The whole page from metrics.json's content, the per-task comparisons and the trainer log."""
    run = metrics.get("run", {})
    ck = metrics.get("checkpoint") or {}
    diag = (metrics.get("training") or {}).get("diagnosis")
    body = [f"<h1>{esc(title)}</h1><p class='muted'>model <code>{esc(run.get('model', ''))}</code> · adapter "
            f"<code>{esc(run.get('adapter', ''))}</code> · backend {esc(run.get('backend', ''))}"
            + (" · <b>embedded demo run</b> (tiny random model: the numbers show the pipeline works, not model "
               "quality)" if run.get("demo") else "") + "</p>"]
    cards = []
    for fig in FIGURE_ORDER:
        e = metrics["comparison"].get(fig)
        if e:
            cls = "up" if e["delta"] > 0 else "down" if e["delta"] < 0 else ""
            cards.append(f"<div class='card'><div class='muted'>{esc(fig)}</div><div class='v'>{_fmt(e['before'], 2)}"
                         f" → {_fmt(e['after'], 2)}</div><div class='{cls}'>{e['delta']:+.2f}</div></div>")
    body.append(f"<div class='grid'>{''.join(cards)}</div><h2>Headline</h2>{headline(metrics)}")
    n = metrics.get("n", {})
    body.append(f"<p class='muted'>Samples: {esc(', '.join(f'{k} {v}' for k, v in n.items()))}. Deltas: after − "
                "before on the same samples; BLEU/ROUGE ×100 per sample as LLaMA-Factory computes them; GSM8K as "
                "lm-eval's exact_match (0–1); strict-parsable: the share of answers where strict-match finds a "
                "'#### &lt;number&gt;' at all (the answer format, right or wrong).</p>")
    body.append("<details><summary>Metric signatures</summary>" + _kv_table(metrics.get("signatures", {}))
                + "</details>")
    if ck:
        body.append(f"<h2>Training</h2><p>Chosen: <b>{esc(ck.get('name'))}</b> — {esc(ck.get('reason'))}.</p>")
    body.append(loss_chart(log_rows, ck.get("step")))
    if diag:
        body.append(f"<div class='note'><b>Diagnosis</b>: {esc(diag['message'])}<ul>"
                    + "".join(f"<li>{esc(e)}</li>" for e in diag.get("evidence", [])) + "</ul></div>")
    cks = (metrics.get("training") or {}).get("checkpoints") or []
    if cks:
        body.append("<table><tr><th>checkpoint</th><th class='num'>step</th><th class='num'>train loss</th>"
                    "<th class='num'>eval loss</th></tr>" + "".join(
                        f"<tr><td class='mono'>{esc(_checkpoint_label(c['path']))}</td><td class='num'>"
                        f"{c['step']}</td><td class='num'>{_fmt(c.get('loss'))}</td><td class='num'>"
                        f"{_fmt(c.get('eval_loss'))}</td></tr>" for c in cks) + "</table>")
    body.append(_gsm8k_section(metrics))
    samples = [r for t in tasks.values() for r in t.rows]
    task_options = "".join(f"<option value='{esc(t)}'>{esc(t)}</option>" for t in tasks)
    body.append("<h2>Samples</h2><div class='controls'>"
                + "".join(f"<button data-status='{s}' class='{'on' if s == 'all' else ''}'>{s}</button>"
                          for s in ("all", "improved", "regressed", "unchanged"))
                + f"<select id='task-filter'><option value='all'>all tasks</option>{task_options}</select>"
                "<select id='sort'><option value='index'>input order</option><option value='delta'>most improved"
                "</option><option value='-delta'>most regressed</option></select>"
                "<input id='search' type='search' placeholder='search prompts and answers'>"
                "<span id='samples-count' class='muted'></span></div>"
                "<table><thead><tr><th class='num'>#</th><th>task</th><th>prompt</th><th>reference</th><th>before</th>"
                "<th>after</th><th class='num'>score</th><th>status</th></tr></thead><tbody id='samples-body'>"
                "</tbody></table>")
    body.append(f"<script type='application/json' id='samples-data'>{json_for_script(samples)}</script>")
    if validation is not None:
        counts: dict[str, int] = {}
        for f in validation.get("warnings", []):
            counts[f["code"]] = counts.get(f["code"], 0) + 1
        body.append(f"<h2>Data</h2><p>{esc(validation['records'])} training records, "
                    f"{len(validation.get('errors', []))} errors, {len(validation.get('warnings', []))} warnings"
                    + (": " + esc(", ".join(f"{k} ×{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
                       if counts else "") + "</p>")
        shown = validation.get("warnings", [])[:20]
        if shown:
            body.append("<table><tr><th>where</th><th>code</th><th>what</th></tr>" + "".join(
                f"<tr><td class='mono'>{esc(f['file'])}:{esc(f['line'] or '')} {esc(f['path'] or '')}</td><td><code>"
                f"{esc(f['code'])}</code></td><td class='text'>{esc(f['message'])}</td></tr>" for f in shown)
                + "</table>")
    if run:
        body.append("<h2>Run</h2>" + _kv_table({"versions": run.get("versions"), "hardware": run.get("hardware"),
                                                 "durations (s)": run.get("durations"),
                                                 "compare settings": run.get("compare")}))
        body.append("<details><summary>Training config</summary>" + _kv_table(run.get("config") or {}) + "</details>")
    return page(title, "".join(body), css=CSS, script=SCRIPT)
