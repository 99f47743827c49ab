"""LLaMA-Factory's bleu-4 / rouge-1/2/l: ftbench must give the very same floats as the reference libraries
(jieba + rouge-chinese + nltk, called exactly as LLaMA-Factory's ComputeSimilarity calls them), computed here."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest

jieba = pytest.importorskip("jieba")
rouge_chinese = pytest.importorskip("rouge_chinese")
bleu_score = pytest.importorskip("nltk.translate.bleu_score")

from ftbench.metrics.lcs import lcs_length  # noqa: E402
from ftbench.metrics.llamafactory import cut_sentences, score_pair  # noqa: E402
from ftbench.metrics.scoring import score_pairs  # noqa: E402
from ftbench.metrics.segment import segmenter  # noqa: E402
from ftbench.metrics.similarity import llamafactory_scores  # noqa: E402

jieba.setLogLevel(logging.CRITICAL)


def reference_pair(pred: str, label: str) -> tuple[float, float, float, float]:
    """LLaMA-Factory's ComputeSimilarity body for one pair (src/llamafactory/train/sft/metric.py)."""
    hypothesis = list(jieba.cut(pred))
    reference = list(jieba.cut(label))
    if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
        result = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
    else:
        result = rouge_chinese.Rouge().get_scores(" ".join(hypothesis), " ".join(reference))[0]
    scores = {k: round(v["f"] * 100, 4) for k, v in result.items()}
    bleu = bleu_score.sentence_bleu(
        [list(label)], list(pred), smoothing_function=bleu_score.SmoothingFunction().method3
    )
    return (round(bleu * 100, 4), scores["rouge-1"], scores["rouge-2"], scores["rouge-l"])


EDGE_CASES = [
    ("", ""),
    ("", "有内容"),
    ("有内容", ""),
    (" ", "a"),
    ("\n\n", "\t \u3000"),
    ("。。。", "！？"),
    ("...", "......"),
    ("……", "…"),
    ("?", "?"),
    ("a", "a"),
    ("a", "b"),
    ("ab", "abc"),
    ("你", "你"),
    ("今天天气很好。", "今天天气很好。"),
    ("今天天气很好。", "今天天气不错！"),
    ("我爱北京天安门\n\n天安门上太阳升", "我爱北京\n天安门上太阳升。"),
    ("“你好。”他说。", "“你好！”她说？"),
    ("Hello, world! How are you?", "Hello world. How are you today?"),
    ("LoRA 的 rank 设为 8，alpha 设为 16。", "rank 设为 16，LoRA alpha 为 32。"),
    ("价格是 $1,000.00 元", "价格是1000元"),
    ("a\u00a0b c", "a b\u00a0c"),
    ("😀😀 emoji 😀", "emoji 😀"),
    ("第一句。第二句！第三句？", "第一句。\n第二句！\n第三句？"),
    ("重复重复重复重复", "重复"),
    ("the the the the", "the"),
    ("1 2 3 4 5", "5 4 3 2 1"),
    ("  leading and trailing  ", "leading and trailing"),
    ("......结尾", "开头......"),
    ("他说：“好。”然后走了。", "他说：“好！”"),
    ("x" * 5, "x" * 9),
]

_ALPHABET = (
    list(
        "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会家"
        "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789"
    )
    + list("，。！？?.…”’“‘：；、,;:!()（）-_%+#&")
    + [" ", " ", "  ", "\n", "\n\n", "\t", "\u3000", "\u00a0", "......", "……", "。”", "？’", "😀"]
)


def _random_text(rng: random.Random, words: list[str], size: int) -> str:
    parts = []
    while sum(map(len, parts)) < size:
        r = rng.random()
        if r < 0.55:
            parts.append(rng.choice(words))
        elif r < 0.7:
            parts.append(" " + rng.choice(["model", "LoRA", "loss", "the", "token", "GPU", "rate"]) + " ")
        else:
            parts.append(rng.choice(_ALPHABET))
    return "".join(parts)


@pytest.fixture(scope="module")
def generated_pairs() -> list[tuple[str, str]]:
    rng = random.Random(1234)
    words = [
        "今天",
        "天气",
        "很好",
        "我们",
        "模型",
        "训练",
        "学习率",
        "数据",
        "北京",
        "天安门",
        "问题",
        "答案",
        "因为",
        "所以",
        "但是",
        "可以",
        "没有",
        "一个",
        "时候",
        "知道",
        "微调",
        "显存",
        "损失",
        "下降",
    ]
    pairs = []
    for i in range(700):
        label = _random_text(rng, words, rng.choice([0, 1, 5, 20, 80, 200, 400]))
        kind = i % 4
        if kind == 0:  # a prediction sharing a prefix with the label, as model outputs often do
            pred = label[: rng.randint(0, len(label))] + _random_text(rng, words, rng.randint(0, 120))
        elif kind == 1:
            pred = _random_text(rng, words, rng.randint(0, 300))
        elif kind == 2:  # shuffled label clauses
            clauses = label.split("，")
            rng.shuffle(clauses)
            pred = "，".join(clauses)
        else:
            pred = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 12)))
        pairs.append((pred, label) if rng.random() < 0.5 else (label, pred))
    return pairs


def test_edge_cases_equal_llamafactory():
    cut = segmenter().cut
    for pred, label in EDGE_CASES:
        assert score_pair(pred, label, cut) == reference_pair(pred, label), (pred, label)
        assert score_pair(label, pred, cut) == reference_pair(label, pred), (label, pred)


def test_generated_pairs_equal_llamafactory(generated_pairs):
    cut = segmenter().cut
    mismatches = [(p, l) for p, l in generated_pairs if score_pair(p, l, cut) != reference_pair(p, l)]
    assert mismatches == []


def test_very_long_texts_equal_llamafactory():
    rng = random.Random(7)
    words = ["模型", "训练", "数据", "English", "words", "1234", "。", "，", "\n"]
    label = "".join(rng.choice(words) for _ in range(900))
    pred = label[:1500] + "".join(rng.choice(words) for _ in range(300))
    assert len(label) > 2000
    assert score_pair(pred, label, segmenter().cut) == reference_pair(pred, label)


def test_bleu_counting_paths_agree_and_huge_alphabets_fall_back():
    from ftbench.metrics.llamafactory import _clipped_matches_counter, clipped_matches, sentence_bleu4_chars

    rng = random.Random(9)
    for _ in range(300):
        a = "".join(rng.choice("abc的了是 。😀") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("abc的了是 。😀") for _ in range(rng.randint(0, 40)))
        assert clipped_matches(a, b) == _clipped_matches_counter(a, b)
    # more distinct characters than 4-gram ids can hold in an int64: the Counter path must take over
    label = "".join(chr(0x10000 + i) for i in range(60000))
    pred = label[:30000] + label[40000:50000]
    expected = bleu_score.sentence_bleu(
        [list(label)], list(pred), smoothing_function=bleu_score.SmoothingFunction().method3
    )
    assert sentence_bleu4_chars(pred, label) == expected


def test_sentence_cut_equals_rouge_chinese():
    rouge = rouge_chinese.Rouge()
    for text in [t for pair in EDGE_CASES for t in pair] + ["a。”b", "a？’c", "x......y", "x……y", "。”，"]:
        assert cut_sentences(text) == rouge.cut_sent(text)


def test_segmenter_equals_jieba_cut(generated_pairs):
    cut = segmenter().cut
    for text in [t for pair in generated_pairs[:300] for t in pair] + [t for pair in EDGE_CASES for t in pair]:
        assert cut(text) == list(jieba.cut(text))


def test_bit_parallel_lcs_equals_dynamic_programming():
    rng = random.Random(3)

    def dp(a, b):
        prev = [0] * (len(b) + 1)
        for x in a:
            cur = [0]
            for j, y in enumerate(b):
                cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
            prev = cur
        return prev[-1]

    for _ in range(400):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 90))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 90))]
        assert lcs_length(a, b) == dp(a, b) == lcs_length(b, a)
    assert lcs_length(["", "x", ""], ["", ""]) == 2  # rouge-chinese's empty-string words count


def test_parallel_workers_give_the_same_floats(generated_pairs):
    preds, labels = zip(*generated_pairs)
    one = llamafactory_scores(preds, labels, jobs=1)
    two = llamafactory_scores(preds, labels, jobs=2)
    assert one.tobytes() == two.tobytes()


def test_aggregates_are_llamafactorys_np_mean(generated_pairs):
    """ComputeSimilarity prints float(np.mean(list of rounded per-sample floats)); so must we."""
    preds, labels = zip(*generated_pairs[:200])
    ref = [reference_pair(p, l) for p, l in zip(preds, labels)]
    result = score_pairs(list(preds), list(labels), jobs=1)
    for i, figure in enumerate(("bleu-4", "rouge-1", "rouge-2", "rouge-l")):
        expected = float(np.mean([row[i] for row in ref]))
        assert result.metrics[figure] == expected
        assert f"{result.metrics[figure]:.4f}" == f"{expected:.4f}"
        assert result.samples[figure] == [row[i] for row in ref]
    assert list(result.metrics) == ["bleu-4", "rouge-1", "rouge-2", "rouge-l"]


def test_standard_metrics_keep_their_own_names():
    sacrebleu = pytest.importorskip("sacrebleu")
    preds = ["The cat sat on the mat.", "今天天气很好", "LoRA rank 8"]
    refs = ["The cat is on the mat.", "今天天气不错", "LoRA rank 16"]
    result = score_pairs(preds, refs, metrics=["bleu-4", "sacrebleu", "rougeLsum"])
    assert list(result.metrics) == ["bleu-4", "sacrebleu", "rougeLsum"]
    expected = sacrebleu.metrics.BLEU(tokenize="zh").corpus_score(preds, [refs]).score
    assert result.metrics["sacrebleu"] == pytest.approx(expected, abs=1e-12)
    assert "tok:zh" in result.signatures["sacrebleu"]
    assert any("rouge-score" in note for note in result.details["notes"])
    assert set(result.signatures) == {"bleu-4", "sacrebleu", "rougeLsum"}


def test_rounding_boundary_between_np_mean_and_sum_is_reported():
    """np.mean (do_predict) and sum/len (eval_bleu_rouge.py, lm-eval) can print different 4th decimals."""
    from ftbench.api.metrics import ScoreResult
    from ftbench.metrics.scorers import SimilarityScorer

    values = [
        64.7391,
        13.9148,
        66.0567,
        33.9645,
        11.0407,
        73.4086,
        57.5818,
        68.0517,
        36.3507,
        20.4444,
        40.2038,
        82.1472,
        81.4135,
        81.5226,
        51.4137,
        11.6388,
        92.4085,
        6.3083,
        63.9756,
        73.486,
    ]
    mean = float(np.mean(values))
    assert f"{mean:.4f}" != f"{sum(values) / len(values):.4f}"
    result = ScoreResult("similarity", len(values), {"rouge-l": mean}, {}, {}, {}, samples={"rouge-l": values})
    SimilarityScorer().explain([], [], [], result, None)
    assert result.details["sum_len_means"] == {"rouge-l": sum(values) / len(values)}
    assert "rounding boundary" in result.details["notes"][0]
