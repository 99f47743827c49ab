"""The GSM8K-style arithmetic generator: format, correct reasoning, determinism.

The checks re-derive every number independently of the generator: each ``<<expr=result>>`` annotation is
re-evaluated with a small AST-walking evaluator of our own (``+ - * /`` on integers, exact with
fractions; never ``eval``), its result must be what the text states right after ``>>``, every operand must
come from the question or from an earlier step, and the last result must be the ``#### N`` answer.
"""

from __future__ import annotations

import ast
import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from ftbench.recipes.demo.arithmetic import generate, write_jsonl

REPO = Path(__file__).resolve().parent.parent
ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>=]+)>>")
FINAL = re.compile(r"\n#### (-?\d+)\Z")
NUMBER = re.compile(r"\d+")
# numbers the reasoning may use without them appearing in the question: "twice" (2), per cent (100),
# minutes in an hour (60), days in a week (7)
IMPLICIT_CONSTANTS = {2, 7, 60, 100}


def safe_eval(expr: str) -> Fraction:
    """Exact value of an expression made only of integer literals, + - * /, unary minus and parentheses."""
    ops = {
        ast.Add: lambda a, b: a + b,
        ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b,
    }

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(f"disallowed syntax in {expr!r}: {ast.dump(node)}")

    return walk(ast.parse(expr.strip(), mode="eval"))


def test_safe_eval_refuses_anything_but_arithmetic():
    assert safe_eval("3*4+10/5") == 14
    assert safe_eval("(7-2)*3") == 15
    for bad in ("__import__('os')", "2**10", "len('ab')", "1 if 1 else 2", "a+1", "1.5*2"):
        with pytest.raises((ValueError, SyntaxError)):
            safe_eval(bad)


@pytest.fixture(scope="module")
def problems() -> list[dict]:
    return generate(500, seed=0)


def test_records_have_exactly_question_and_answer(problems):
    assert len(problems) == 500
    for p in problems:
        assert set(p) == {"question", "answer"}
        assert isinstance(p["question"], str) and p["question"].strip()
        assert isinstance(p["answer"], str) and p["answer"].strip()


def test_every_answer_ends_with_an_integer(problems):
    for p in problems:
        m = FINAL.search(p["answer"])
        assert m, p["answer"]
        assert p["answer"].count("####") == 1


def test_annotations_are_correct_and_lead_to_the_final_answer(problems):
    for p in problems:
        answer = p["answer"]
        steps = list(ANNOTATION.finditer(answer))
        assert 1 <= len(steps) <= 3, answer
        question_numbers = {int(x) for x in NUMBER.findall(p["question"])}
        known = question_numbers | IMPLICIT_CONSTANTS
        results: list[int] = []
        for m in steps:
            expr, stated = m.group(1), m.group(2)
            value = safe_eval(expr)
            assert value.denominator == 1, f"non-integer step {expr} in {answer!r}"
            assert int(stated) == value, f"{expr}={stated} is wrong in {answer!r}"
            # the text right after the annotation repeats the result, GSM8K style
            assert answer[m.end() :].startswith(stated), answer
            # the expression's text before the annotation is the same expression
            assert answer[: m.start()].endswith(f"{expr} = "), answer
            # no number is conjured: every operand comes from the question or an earlier step
            for operand in NUMBER.findall(expr):
                assert int(operand) in known, f"operand {operand} of {expr} not in {p['question']!r}"
            results.append(int(value))
            known.add(int(value))
        final = int(FINAL.search(answer).group(1))
        assert results[-1] == final, answer


def test_answers_are_integers_and_non_negative(problems):
    for p in problems:
        assert int(FINAL.search(p["answer"]).group(1)) >= 0


def test_deterministic_for_a_seed():
    assert generate(200, seed=7) == generate(200, seed=7)
    assert generate(50, seed=7) == generate(200, seed=7)[:50]


def test_different_seeds_differ():
    a, b = generate(100, seed=1), generate(100, seed=2)
    assert a != b
    assert len({p["question"] for p in a} & {p["question"] for p in b}) < 10


def test_questions_are_distinct_and_varied(problems):
    questions = [p["question"] for p in problems]
    assert len(set(questions)) == len(questions)
    # many different answers and step counts, so the format has to be learned, not memorised
    assert len({FINAL.search(p["answer"]).group(1) for p in problems}) > 150
    step_counts = {len(ANNOTATION.findall(p["answer"])) for p in problems}
    assert step_counts == {1, 2, 3}


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_lang_mix(problems):
    share = sum(_is_chinese(p["question"]) for p in problems) / len(problems)
    assert 0.2 < share < 0.4
    assert not any(_is_chinese(p["question"]) for p in generate(100, seed=3, lang_mix=0.0))
    assert all(_is_chinese(p["question"]) for p in generate(100, seed=3, lang_mix=1.0))


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate(-1)
    with pytest.raises(ValueError):
        generate(5, lang_mix=1.5)
    assert generate(0) == []


def test_write_jsonl_round_trips(tmp_path):
    path = tmp_path / "arith.jsonl"
    assert write_jsonl(path, 25, seed=4) == 25
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == generate(25, seed=4)


def test_bundled_demo_file_is_seed_zero():
    path = REPO / "datasets" / "arithmetic_demo.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert records == generate(300, seed=0)
