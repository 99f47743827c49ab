"""The pairwise judge's protocol without a model: strict verdict parsing, both orders combined (a swap that
changes the verdict is a tie), the win rate and its statistics from known outcomes, the judgments file's resume."""

from __future__ import annotations

import json

import pytest

from ftbench.api.errors import UsageError
from ftbench.evaluation.judging import (
    JudgmentStore,
    PairOutcome,
    candidate_outcome,
    combine,
    judge_messages,
    language_of,
    parse_verdict,
    summarise,
)


@pytest.mark.parametrize(
    "reply, verdict",
    [
        ("A is more accurate. [[A]]", "A"),
        ("[[B]]", "B"),
        ("Both fine. [[C]]", "C"),
        ("[[A]] ... final: [[A]]", "A"),
        ("[[A]] no, [[B]]", None),
        ("A", None),
        ("[A]", None),
        ("", None),
        ("[[D]]", None),
    ],
)
def test_verdicts_are_read_strictly(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_the_two_orders_are_read_from_the_candidates_side():
    # order ab: the baseline is A, the candidate B; order ba: the candidate is A
    assert candidate_outcome("B", "ab") == "win" and candidate_outcome("A", "ba") == "win"
    assert candidate_outcome("A", "ab") == "loss" and candidate_outcome("B", "ba") == "loss"
    assert candidate_outcome("C", "ab") == "tie" and candidate_outcome(None, "ab") is None
    assert combine("win", "win") == ("win", True)
    assert combine("win", "loss") == ("tie", False)  # the judge followed the position, not the answer
    assert combine("win", "tie") == ("tie", False)
    assert combine(None, "win") == (None, False)


def test_the_win_rate_is_what_the_outcomes_imply():
    from scipy.stats import binomtest

    pairs = (
        [PairOutcome("win", True, True, 1)] * 6
        + [PairOutcome("loss", True, False, 1)] * 2
        + [PairOutcome("tie", False, None, -1)] * 2
        + [PairOutcome(None, False, True)]
    )
    s = summarise(pairs)
    assert (s["n"], s["judged"], s["unparseable"], s["wins"], s["losses"], s["ties"], s["inconsistent"]) == (
        11,
        10,
        1,
        6,
        2,
        2,
        2,
    )
    assert s["win_rate"] == pytest.approx((6 + 0.5 * 2) / 10)
    lo, hi = s["win_rate_ci95"]
    assert lo < 0.7 < hi and 0 <= lo and hi <= 1
    assert s["sign_test"]["p_value"] == pytest.approx(binomtest(6, 8, 0.5).pvalue)
    assert s["length_bias"]["candidate_longer"] == {"n": 6, "win_rate": 1.0}
    assert s["length_bias"]["baseline_longer"] == {"n": 2, "win_rate": 0.0}
    assert s["length_bias"]["same_length"] == {"n": 2, "win_rate": 0.5}
    # decisive verdicts: 6 wins with the metric up (agree), 2 losses with the metric up (disagree)
    assert s["metric_agreement"] == {"decisive": 8, "agree": 6, "share": 0.75}


def test_the_prompt_follows_the_questions_language_and_shows_the_reference():
    assert language_of("What is the capital of France?") == "en" and language_of("中国的首都是哪里？") == "zh"
    en = judge_messages("What is 2+2?", "4", "5", reference="4")
    assert en[0]["role"] == "system" and "[[A]]" in en[0]["content"] and "reference answer" in en[0]["content"]
    assert "[The Start of Reference Answer]\n4\n" in en[1]["content"]
    zh = judge_messages("2 加 2 等于几？", "4", "5")
    assert "公正的评审" in zh[0]["content"] and "[助手 A 的回答开始]\n4\n" in zh[1]["content"]
    assert "参考答案" not in zh[1]["content"]


def test_user_templates_replace_the_shipped_ones(tmp_path):
    for name, text in (
        ("system.j2", "Judge: {{ 'ref' if reference else 'plain' }}"),
        ("pair.j2", "Q={{ question }} A={{ answer_a }} B={{ answer_b }}"),
        ("pair_reference.j2", "Q={{ question }} R={{ reference }}"),
    ):
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert judge_messages("q", "a", "b", templates=str(tmp_path)) == [
        {"role": "system", "content": "Judge: plain"},
        {"role": "user", "content": "Q=q A=a B=b"},
    ]
    (tmp_path / "pair.j2").unlink()
    with pytest.raises(UsageError, match="lacks pair.j2"):
        judge_messages("q", "a", "b", templates=str(tmp_path))


def test_the_judgments_file_resumes_without_judging_twice(tmp_path):
    path = tmp_path / "j.jsonl"
    store = JudgmentStore(str(path), {"a": "x"})
    store.add({"index": 0, "order": "ab", "verdict": "B"})
    store.add({"index": 0, "order": "ba", "verdict": "A"})
    store.close()
    with open(path, "ab") as fh:
        fh.write(b'{"index": 1, "ord')  # killed mid-write
    again = JudgmentStore(str(path), {"a": "x"})
    assert set(again.done) == {(0, "ab"), (0, "ba")}
    again.add({"index": 1, "order": "ab", "verdict": "C"})
    again.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0] == {"header": {"a": "x"}} and [(r["index"], r["order"]) for r in rows[1:]] == [
        (0, "ab"),
        (0, "ba"),
        (1, "ab"),
    ]
    with pytest.raises(UsageError, match="another judge"):
        JudgmentStore(str(path), {"a": "y"})
