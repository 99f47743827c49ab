(function () {
  var data = JSON.parse(document.getElementById('samples-data').textContent);
  var body = document.getElementById('samples-body'), count = document.getElementById('samples-count');
  var state = {status: 'all', scorer: 'all', q: '', sort: 'index'};
  function primary(r) { return r.primary; }  // the figure deciding the row's status (its scorer's)
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
      if (state.scorer !== 'all' && r.scorer !== state.scorer) return false;
      if (!q) return true;
      return [r.prompt, r.reference, r.before, r.after, r.note || ''].join('\n').toLowerCase().indexOf(q) >= 0;
    });
    if (state.sort === 'delta') rows.sort(function (a, b) { return delta(b) - delta(a); });
    if (state.sort === '-delta') rows.sort(function (a, b) { return delta(a) - delta(b); });
    body.textContent = '';
    rows.forEach(function (r) {
      var tr = document.createElement('tr'); tr.className = 'row st-' + r.status; tr.dataset.status = r.status;
      num(tr, String(r.i)); num(tr, r.scorer);
      cell(tr, r.prompt, 't'); cell(tr, r.reference, 't'); cell(tr, r.before, 't'); cell(tr, r.after, 't');
      var k = primary(r);
      num(tr, k + ' ' + fmt(r.scores_before[k]) + ' → ' + fmt(r.scores_after[k]));
      num(tr, r.status, 'st-' + r.status);
      if (r.note) {  // a judge's reasons, under its verdict
        var why = document.createElement('div'); why.className = 'clip text reason'; why.textContent = r.note;
        why.title = 'the judge\'s replies: click to expand';
        why.addEventListener('click', function () { why.classList.toggle('open'); });
        tr.lastChild.appendChild(why);
      }
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
  document.getElementById('scorer-filter').addEventListener('change', function (e) { state.scorer = e.target.value; render(); });
  document.getElementById('sort').addEventListener('change', function (e) { state.sort = e.target.value; render(); });
  document.getElementById('search').addEventListener('input', function (e) { state.q = e.target.value; render(); });
  render();
})();
