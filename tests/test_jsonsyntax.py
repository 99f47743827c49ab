"""ftbench.data.jsonsyntax: every syntax mistake gets its code, its exact line:column and a hint."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ftbench.data.jsonsyntax import decode_text, diagnose_json

BROKEN = Path(__file__).resolve().parent.parent / "datasets" / "broken"


def _strict_loads(text: str):
    """json.loads, but NaN / Infinity are errors, as for every JSON reader but Python's."""

    def reject(name):
        raise ValueError(name)

    return json.loads(text, parse_constant=reject)


def _diagnose_file(name: str):
    """Decode a fixture and diagnose it as the reader does: the whole .json text, or each bad JSONL line."""
    text, findings = decode_text((BROKEN / name).read_bytes(), name)
    repaired = text
    if name.endswith(".jsonl"):
        for number, line in enumerate(text.split("\n"), start=1):
            try:
                _strict_loads(line) if line.strip() else None
            except ValueError:
                findings += diagnose_json(line, name, first_line=number, record=number - 1)[1]
        return text, None, findings
    try:
        _strict_loads(text)
    except ValueError:
        repaired, more = diagnose_json(text, name)
        findings += more
    return text, repaired, findings


# (code, line, column) computed by hand from each fixture; columns count characters, not bytes
EXPECTED = {
    "trailing-comma.json": [("trailing-comma", 5, 43), ("trailing-comma", 11, 4)],
    "missing-comma.json": [("missing-comma", 4, 49), ("missing-comma", 7, 45)],
    "single-quotes.jsonl": [
        ("single-quotes", 2, 2),
        ("single-quotes", 4, 2),
        ("single-quotes", 5, 2),
        ("python-literal", 5, 71),
    ],
    "python-literal.json": [("python-literal", 6, 17), ("python-literal", 7, 15)],
    "fullwidth-punctuation.json": [("fullwidth-punctuation", 3, 18), ("fullwidth-punctuation", 5, 52)],
    "control-character-in-string.json": [
        ("control-character-in-string", 5, 43),
        ("control-character-in-string", 12, 18),
    ],
    "json-comment.json": [("json-comment", 1, 1), ("json-comment", 5, 19)],
    "nan-infinity.json": [("nan-infinity", 6, 14), ("nan-infinity", 12, 14)],
    "truncated-json.json": [("truncated-json", 10, 77)],
    "unescaped-quote.json": [("unescaped-quote", 4, 23), ("unescaped-quote", 8, 33)],
    "invalid-escape.json": [("invalid-escape", 5, 27), ("invalid-escape", 8, 40)],
    "invalid-json.json": [("invalid-json", 3, 18)],
    "braces-for-list.json": [("braces-for-list", 3, 22)],
    "multiple-errors.json": [("missing-comma", 4, 24), ("trailing-comma", 5, 25), ("fullwidth-punctuation", 8, 18)],
    "utf8-bom.json": [("utf8-bom", 1, 1)],
    "invalid-utf8.jsonl": [("invalid-utf8", 2, 18)],
    "not-utf8.json": [("not-utf8", 1, 1)],
}
UNREPAIRABLE = {"truncated-json.json", "invalid-json.json"}


def test_every_syntax_code_has_a_fixture():
    # other engineers' fixtures for record-level checks live in the same folder: only ours are pinned here
    assert all((BROKEN / name).is_file() for name in EXPECTED)
    codes = {code for expected in EXPECTED.values() for code, _, _ in expected}
    assert {name.split(".")[0] for name in EXPECTED} - {"multiple-errors"} <= codes


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_findings_are_exact(name):
    _, _, findings = _diagnose_file(name)
    assert [(f.code, f.line, f.column) for f in findings] == EXPECTED[name]
    for finding in findings:
        assert finding.hint and finding.message and finding.severity == "error"
        assert finding.file == name


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.endswith(".json") and n not in UNREPAIRABLE))
def test_repaired_text_parses_and_keeps_lines(name):
    text, repaired, _ = _diagnose_file(name)
    assert repaired is not None
    _strict_loads(repaired)
    assert repaired.count("\n") == text.count("\n")


@pytest.mark.parametrize("name", sorted(UNREPAIRABLE))
def test_unrepairable_returns_none(name):
    assert _diagnose_file(name)[1] is None


def test_repairs_keep_content_and_record_lines():
    text, repaired, _ = _diagnose_file("control-character-in-string.json")
    records = _strict_loads(repaired)
    haiku = "Crisp leaves drift and fall\nGolden light on quiet paths\nThe year breathes slowly"
    assert records[0]["output"] == haiku
    assert records[1]["output"] == "苹果\t香蕉\t橙子"
    # the second record still starts on line 9 and its instruction is still on line 10
    assert repaired.split("\n")[8].strip() == "{"
    assert repaired.split("\n")[9].strip().startswith('"instruction": "列出三种水果')

    _, repaired, _ = _diagnose_file("multiple-errors.json")
    records = _strict_loads(repaired)
    assert records[0]["input"] == "苹果，香蕉，橘子" and records[1]["instruction"] == 'What does "LoRA" stand for?'

    _, repaired, _ = _diagnose_file("unescaped-quote.json")
    records = _strict_loads(repaired)
    assert records[0]["input"] == 'He said "I am tired" and went home.'
    assert records[1]["instruction"] == '把这句话翻译成英文：他说"你好"。'


def test_messages_name_the_problem():
    findings = {}
    for name in EXPECTED:
        for finding in _diagnose_file(name)[2]:
            findings.setdefault(finding.code, finding)  # the first one of each code
    assert "the array opened at 1:1" in findings["truncated-json"].message
    assert "the string opened at 10:15" in findings["truncated-json"].message
    assert "'：'" in findings["fullwidth-punctuation"].message and "':'" in findings["fullwidth-punctuation"].message
    assert "raw newline (U+000A)" in findings["control-character-in-string"].message
    assert "\\n" in findings["control-character-in-string"].hint
    assert "json.dump" in findings["single-quotes"].hint and "print()" in findings["single-quotes"].hint
    assert "GB18030" in findings["invalid-utf8"].hint
    assert "Expecting ',' delimiter" in findings["invalid-json"].message


def test_syntax_characters_inside_strings_are_not_flagged():
    inside = "\"，：“”｛｝［］【】 // /* */ # NaN -Infinity True None 'x' C:\\\\Users \\\\n\""
    valid = '{"instruction": %s, "output": "ok"}' % inside
    assert diagnose_json(valid, "ok.json") == (valid, [])
    broken = '{"instruction": %s, "output": "ok",}' % inside  # one real problem: the trailing comma
    repaired, findings = diagnose_json(broken, "x.json")
    assert [(f.code, f.line, f.column) for f in findings] == [("trailing-comma", 1, len(broken) - 1)]
    assert _strict_loads(repaired) == _strict_loads(valid)


def test_jsonl_line_reports_file_line_and_record():
    line = '{"instruction": "写诗", "output": "春眠不觉晓",}'
    repaired, findings = diagnose_json(line, "data.jsonl", first_line=7, record=6)
    assert [(f.code, f.line, f.column, f.record) for f in findings] == [("trailing-comma", 7, 40, 6)]
    assert _strict_loads(repaired)["output"] == "春眠不觉晓"
    truncated = diagnose_json('{"instruction": "写诗", "output": ["a"', "data.jsonl", first_line=3, record=2)
    assert truncated[0] is None
    assert "the line ends too early" in truncated[1][0].message and "opened at 3:1" in truncated[1][0].message


@pytest.mark.parametrize(
    "text, code, line, column",
    [
        ('{"a": "写诗,\n "b": ""}', "unterminated-string", 1, 10),
        ('{"instruction": "hello}', "unterminated-string", 1, 23),
        ("[1,,2]", "extra-comma", 1, 4),
        ('{"a" "b"}', "missing-colon", 1, 5),
        ('{"a": }', "missing-value", 1, 7),
        ('{instruction: "写诗"}', "unquoted-string", 1, 2),
        ('{"a": 1}\u00a0', "invisible-character", 1, 9),
        ('[{"a": 1}}, {"b": 2}]', "mismatched-bracket", 1, 10),
        ('{"a": 1}\n{"b": 2}\n', "extra-data", 2, 1),
        ("[01]", "invalid-number", 1, 3),
        ("  \n", "empty-json", 1, 1),
        ('{"instruction”: "x"}', "fullwidth-punctuation", 1, 14),
        ("[1, 2,]", "trailing-comma", 1, 6),
        ("{“a”：“b”}", "fullwidth-punctuation", 1, 2),
        ("# note\n[1]", "json-comment", 1, 1),
        ('{"p": "\\x41"}', "invalid-escape", 1, 8),
    ],
)
def test_more_causes(text, code, line, column):
    _, findings = diagnose_json(text, "t.json")
    assert (findings[0].code, findings[0].line, findings[0].column) == (code, line, column)
    assert findings[0].hint


def test_fullwidth_quotes_are_repaired_in_pairs():
    repaired, findings = diagnose_json("{“instruction”：“你好，世界”，“output”：“hi”}", "t.json")
    assert _strict_loads(repaired) == {"instruction": "你好，世界", "output": "hi"}
    assert len(findings) == 1 and "more on this line" in findings[0].message


def test_every_problem_is_reported_up_to_the_limit():
    text = "[\n" + ",\n".join("{'a': %d}" % i for i in range(30)) + "\n]"
    repaired, findings = diagnose_json(text, "t.json")
    assert [f.line for f in findings] == list(range(2, 32))
    assert _strict_loads(repaired) == [{"a": i} for i in range(30)]
    repaired, findings = diagnose_json(text, "t.json", max_findings=5)
    assert repaired is None and len(findings) == 6 and findings[-1].code == "too-many-findings"
    assert findings[-1].severity == "warning"


def test_decode_text():
    assert decode_text('[1, "你好"]'.encode(), "a.json") == ('[1, "你好"]', [])
    text, findings = decode_text((BROKEN / "utf8-bom.json").read_bytes(), "b.json")
    assert text.startswith("[") and _strict_loads(text)[0]["output"] == "凉爽、金黄、丰收"
    assert "without BOM" in findings[0].hint
    text, findings = decode_text((BROKEN / "not-utf8.json").read_bytes(), "c.json")
    assert _strict_loads(text)[0]["input"] == "" and "UTF-8" in findings[0].hint
    raw_line = (BROKEN / "invalid-utf8.jsonl").read_bytes().split(b"\n")[1]
    text, findings = decode_text(raw_line, "d.jsonl")  # the reader decodes a bad JSONL line on its own
    assert [(f.code, f.line, f.column) for f in findings] == [("invalid-utf8", 1, 18)]
    assert "\ufffd" in text and "翻译成英文" in findings[0].message
    text, findings = decode_text('[{"a": 1}]'.encode("utf-16-le"), "e.json")  # UTF-16 without a BOM
    assert text == '[{"a": 1}]' and findings[0].code == "not-utf8"
    text, findings = decode_text('{"a": "café"}\n'.encode("latin-1"), "f.json")
    assert [(f.code, f.line, f.column) for f in findings] == [("invalid-utf8", 1, 11)]
    assert "GB18030" not in findings[0].hint and text == '{"a": "caf\ufffd"}\n'


def test_windows_line_endings_keep_positions():
    text = (BROKEN / "multiple-errors.json").read_text(encoding="utf-8").replace("\n", "\r\n")
    repaired, findings = diagnose_json(text, "crlf.json")
    assert [(f.code, f.line, f.column) for f in findings] == EXPECTED["multiple-errors.json"]
    assert repaired.count("\r\n") == text.count("\r\n")
    _, findings = diagnose_json('["a\r\nb"]', "crlf.json")
    assert (findings[0].line, findings[0].column) == (1, 4) and "CR LF" in findings[0].message


def test_ten_thousand_bad_jsonl_lines_are_fast():
    bad = [
        "{'instruction': '写一首诗', 'input': '', 'output': '春风又绿江南岸', 'ok': True}",
        '{"instruction": "Translate" "input": "hello", "output": "你好",}',
        '{"instruction"："翻译"，"output"："你好"}',
        '{"instruction": "He said "hi"", "output": "x", "score": NaN}',
    ]
    start = time.perf_counter()
    for i in range(10_000):
        assert diagnose_json(bad[i % 4], "big.jsonl", first_line=i + 1, record=i)[1]
    assert time.perf_counter() - start < 10  # about 1 s on one core; generous for slow CI machines


def test_braces_where_a_list_belongs_are_repaired_and_the_records_still_checked():
    """A tutorial writes sharegpt turns as "conversations": { {...}, {...} } with "input" for "value": the syntax
    finding names the fix ([ ... ]), and the same report says what is wrong with the turns."""
    _, repaired, findings = _diagnose_file("braces-for-list.json")
    assert "'['" in findings[0].hint and "']'" in findings[0].hint and '"conversations"' in findings[0].message
    assert "6:5" in findings[0].message  # where the brace that closes it is
    assert _strict_loads(repaired)[0]["conversations"][1]["input"].startswith("LoRA")
    from helpers import validate_json

    code, report = validate_json("datasets/broken/braces-for-list.json", "--no-near-dup")
    assert code == 1
    assert [(f["code"], f["line"], f["column"], f["path"]) for f in report["errors"]] == [
        ("wrong-turn-key", 2, None, "[0].conversations[0].input"),
        ("wrong-turn-key", 2, None, "[0].conversations[1].input"),
        ("braces-for-list", 3, 22, None),
    ]
    assert report["stats"]["valid_records"] == 1  # the second record is fine


@pytest.mark.parametrize(
    "text, code, hint_words",
    [
        ('{"a": [ {"b": 1}, ]}', "trailing-comma", ["Delete this comma"]),
        ('[{"a": 1}}', "mismatched-bracket", ["Write ']' here"]),
        ('[{"a": 1}]]', "extra-data", ["Delete"]),
        ("[1, 2] [3]", "extra-data", ["Name the file .jsonl"]),
        ('[ "instruction": "x" ]', "invalid-json", ["'{' and '}'"]),
    ],
)
def test_hints_name_the_fix(text, code, hint_words):
    _, findings = diagnose_json(text, "t.json")
    assert findings[0].code == code
    assert all(word in findings[0].hint for word in hint_words), findings[0].hint


@pytest.mark.parametrize(
    "text, hint",
    [
        ("[01]", "Write it as 1 (not 01)."),
        ("[.5]", "Write it as 0.5 (not .5)."),
        ("[+5]", "Write it as 5 (not +5)."),
        ('{instruction: "写诗"}', 'Put it in double quotes: "instruction".'),
    ],
)
def test_number_and_quote_hints_give_the_corrected_text(text, hint):
    assert diagnose_json(text, "t.json")[1][0].hint == hint
