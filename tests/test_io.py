"""`ftbench.io.write_json`: the one way ftbench writes a JSON file (atomic, UTF-8, strict JSON)."""

from __future__ import annotations

import json
import math

from ftbench.io import write_json, write_jsonl


def test_write_json_is_strict_utf8_and_names_the_values_it_replaced(tmp_path):
    path = tmp_path / "m.json"
    replaced = write_json(
        str(path), {"runs": [{"value": float("nan")}, {"value": 1.5}], "ci": (0.1, math.inf), "name": "介绍一下你自己"}
    )
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text and "介绍一下你自己" in text
    assert json.loads(text) == {"runs": [{"value": None}, {"value": 1.5}], "ci": [0.1, None], "name": "介绍一下你自己"}
    assert replaced == ["$.runs[0].value", "$.ci[1]"]
    assert write_json(str(path), {"a": 1}) == [] and json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left


def test_write_jsonl_one_strict_object_a_line(tmp_path):
    path = tmp_path / "log.jsonl"
    assert write_jsonl(str(path), [{"loss": 1.0}, {"loss": -math.inf}]) == ["[1].loss"]
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"loss": 1.0}, {"loss": None}]
