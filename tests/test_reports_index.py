"""reports/index.html names every run's and sweep's backend (issue 24, point 8), escaped like the rest."""

from __future__ import annotations

import json

from ftbench.recipes.reports_index import entries, write_index


def test_the_index_has_a_backend_column(tmp_path):
    run = tmp_path / "run1"
    run.mkdir()
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "before": {"rouge-l": 10.0},
                "after": {"rouge-l": 20.0},
                "run": {"model": "m", "backend": "llamafactory", "config": {"dataset": "d.json"}},
            }
        )
    )
    sweep = tmp_path / "sweep1"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"model": "m", "backend": "<b>peft</b>", "runs": [], "analysis": {}}))
    assert {e["name"]: e["backend"] for e in entries(str(tmp_path))} == {
        "run1": "llamafactory",
        "sweep1": "<b>peft</b>",
    }
    html = open(write_index(str(tmp_path)), encoding="utf-8").read()
    assert "<th>backend</th>" in html and "<td>llamafactory</td>" in html
    assert "&lt;b&gt;peft&lt;/b&gt;" in html and "<b>peft</b>" not in html
