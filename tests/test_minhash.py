"""MinHash LSH near-duplicate index: estimate accuracy, what is and is not found, determinism."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from ftbench.quality.minhash import NearDuplicateIndex, _union_find_roots, char_shingles, lsh_params

CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 2000)]


def english_text(rng: random.Random, chars: int) -> str:
    """Random words of random letters, about `chars` long: unrelated texts share few 5-grams."""
    words = []
    while sum(map(len, words)) + len(words) < chars:
        words.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))))
    return " ".join(words)


def chinese_text(rng: random.Random, chars: int) -> str:
    return "".join(rng.choice(CJK) for _ in range(chars))


def edit(rng: random.Random, text: str, edits: int, alphabet: str = "xyz的是了") -> str:
    """`text` with `edits` random single characters replaced."""
    chars = list(text)
    for _ in range(edits):
        chars[rng.randrange(len(chars))] = rng.choice(alphabet)
    return "".join(chars)


def true_jaccard(a: str, b: str) -> float:
    x, y = char_shingles(a), char_shingles(b)
    return len(x & y) / len(x | y)


def pairs_with_known_overlap(seed: int, make) -> list[tuple[str, str]]:
    """Text pairs spanning Jaccard ~0.1-0.97: a shared part plus a different part of chosen sizes."""
    rng = random.Random(seed)
    out = []
    for shared in (40, 120, 200, 280, 340, 380, 395):
        for _ in range(4):
            common = make(rng, shared)
            out.append((common + " " + make(rng, 400 - shared), common + " " + make(rng, 400 - shared)))
    return out


@pytest.mark.parametrize("make", [english_text, chinese_text], ids=["english", "chinese"])
def test_estimate_close_to_true_jaccard_and_to_datasketch(make):
    datasketch = pytest.importorskip("datasketch")
    pairs = pairs_with_known_overlap(7, make)
    index = NearDuplicateIndex()
    for a, b in pairs:
        index.add(a)
        index.add(b)
    ours, ref, true = [], [], []
    for i, (a, b) in enumerate(pairs):
        ours.append(index.similarity(2 * i, 2 * i + 1))
        true.append(true_jaccard(a, b))
        ma, mb = datasketch.MinHash(num_perm=128), datasketch.MinHash(num_perm=128)
        ma.update_batch([s.encode() for s in char_shingles(a)])
        mb.update_batch([s.encode() for s in char_shingles(b)])
        ref.append(ma.jaccard(mb))
    ours, ref, true = map(np.array, (ours, ref, true))
    assert true.min() < 0.2 and true.max() > 0.9  # the pairs do span the range
    err, ref_err = np.abs(ours - true), np.abs(ref - true)
    assert err.mean() < 0.04 and err.max() < 0.15
    assert abs(np.mean(ours - true)) < 0.02  # unbiased
    assert err.mean() < ref_err.mean() + 0.02  # as accurate as classic MinHash with 128 permutations
    assert np.abs(ours - ref).max() < 0.2


def test_short_texts_estimate_via_densification():
    rng = random.Random(3)
    index, true = NearDuplicateIndex(), []
    for _ in range(100):
        a = english_text(rng, rng.randint(8, 40))
        b = edit(rng, a, 1)
        index.add_many([a, b])
        true.append(true_jaccard(a, b))
    est = np.array([index.similarity(2 * i, 2 * i + 1) for i in range(100)])
    assert np.abs(est - np.array(true)).mean() < 0.1


def test_near_duplicates_found_and_unrelated_not():
    rng = random.Random(11)
    texts = [english_text(rng, 350) if i % 2 else chinese_text(rng, 350) for i in range(3000)]
    planted = {}
    for source in rng.sample(range(3000), 40):
        planted[len(texts)] = source
        texts.append(edit(rng, texts[source], rng.randint(1, 3)))
    texts.append(texts[5])  # an exact copy is a near-duplicate too
    planted[len(texts) - 1] = 5
    index = NearDuplicateIndex(threshold=0.8)
    assert list(index.add_many(texts)) == list(range(len(texts)))
    pairs = index.pairs()
    assert {(b, a) for a, b, _ in pairs} == {(copy, src) for copy, src in planted.items()}
    for a, b, sim in pairs:
        assert a < b and sim >= 0.8
        assert abs(sim - true_jaccard(texts[a], texts[b])) < 0.12
    assert dict(((b, a), s) for a, b, s in pairs)[(len(texts) - 1, 5)] == 1.0


def test_texts_below_threshold_are_not_pairs():
    rng = random.Random(5)
    base = [english_text(rng, 300) for _ in range(200)]
    # rewrite ~40% of each text: true Jaccard around 0.4-0.6, well under the threshold
    halves = [t[:180] + english_text(rng, 120) for t in base]
    index = NearDuplicateIndex(threshold=0.8)
    index.add_many(base + halves)
    assert index.pairs() == []


def test_identical_cluster_is_a_star_not_a_clique():
    rng = random.Random(1)
    index = NearDuplicateIndex()
    index.add_many([english_text(rng, 200) for _ in range(50)])
    same = chinese_text(rng, 300)
    ids = index.add_many([same] * 1000)
    pairs = index.pairs()
    assert len(pairs) == 999
    assert pairs == [(ids[0], i, 1.0) for i in ids[1:]]


def test_normalisation_case_whitespace_nul():
    index = NearDuplicateIndex()
    ids = index.add_many(
        [
            "Hello   World\tAgain ",
            "hello world again",
            "  HELLO\nWORLD again",
            "hello\x00world again",
            "",
            " \t\n ",
            "中文 文本",
            "中文\u3000文本",
        ]
    )
    sig = index.signatures
    for i in ids[1:4]:
        assert (sig[i] == sig[ids[0]]).all()
    assert (sig[4] == sig[5]).all()
    assert (sig[6] == sig[7]).all()
    assert not (sig[0] == sig[4]).all()


def test_signature_of_a_text_does_not_depend_on_its_batch():
    rng = random.Random(2)
    texts = [english_text(rng, rng.randint(0, 500)) for _ in range(1500)] + ["😀 emoji 𝔘 text", "lone \ud800 surrogate"]
    one = NearDuplicateIndex()
    for t in texts:
        one.add(t)
    reversed_ = NearDuplicateIndex()
    reversed_.add_many(texts[::-1])
    assert np.array_equal(one.signatures, reversed_.signatures[::-1])
    alone = NearDuplicateIndex()
    alone.add(texts[700])
    assert np.array_equal(alone.signatures[0], one.signatures[700])


def test_cross_pairs_finds_light_edit_of_train_item():
    rng = random.Random(4)
    train_texts = [chinese_text(rng, 300) if i % 3 else english_text(rng, 300) for i in range(1000)]
    test_texts = [english_text(rng, 300) for _ in range(100)]
    test_texts[10] = edit(rng, train_texts[123], 2)
    test_texts[20] = train_texts[456]
    train, test = NearDuplicateIndex(), NearDuplicateIndex()
    train.add_many(train_texts)
    test.add_many(test_texts)
    found = train.cross_pairs(test)
    assert [(a, b) for a, b, _ in found] == [(123, 10), (456, 20)]
    assert found[0][2] >= 0.8 and found[1][2] == 1.0
    with pytest.raises(ValueError):
        train.cross_pairs(NearDuplicateIndex(num_perm=64))
    assert train.cross_pairs(NearDuplicateIndex()) == []


def test_union_find_roots_are_earliest_members():
    nodes, roots = _union_find_roots(np.array([5, 7, 2, 9, 11]), np.array([7, 9, 3, 5, 12]))
    assert dict(zip(nodes.tolist(), roots.tolist())) == {2: 2, 3: 2, 5: 5, 7: 5, 9: 5, 11: 11, 12: 11}


def test_lsh_params_favour_recall():
    for threshold in (0.5, 0.7, 0.8, 0.9):
        index = NearDuplicateIndex(threshold=threshold)
        assert index.bands * index.rows <= index.num_perm
        at_threshold = 1 - (1 - threshold**index.rows) ** index.bands
        assert at_threshold > 0.8
    assert lsh_params(0.8, 128) == (NearDuplicateIndex().bands, NearDuplicateIndex().rows)


SIGNATURE_DIGEST = """
import hashlib, random
from ftbench.quality.minhash import NearDuplicateIndex
rng = random.Random(0)
texts = ["".join(rng.choice("abc 的是了XYZ") for _ in range(rng.randint(0, 400))) for _ in range(700)]
index = NearDuplicateIndex()
index.add_many(texts)
print(hashlib.sha256(index.signatures.tobytes()).hexdigest(), index.pairs()[:3])
"""


def test_deterministic_across_processes():
    outputs = set()
    for hash_seed in ("1", "2"):  # Python's str hash differs per process: the signatures must not
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run(
            [sys.executable, "-c", SIGNATURE_DIGEST], capture_output=True, text=True, env=env, check=True
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1
    digest = outputs.pop().split()[0]
    assert len(digest) == 64 and digest != hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("num_perm", [64, 100])
def test_other_signature_sizes(num_perm):
    rng = random.Random(8)
    texts = [chinese_text(rng, 200) for _ in range(300)]
    texts.append(edit(rng, texts[17], 2))
    index = NearDuplicateIndex(num_perm=num_perm)
    index.add_many(texts)
    assert index.signatures.shape == (301, num_perm)
    assert [(a, b) for a, b, _ in index.pairs()] == [(17, 300)]


def test_from_signatures_of_separately_built_indexes():
    rng = random.Random(9)
    texts = [english_text(rng, 300) for _ in range(1200)]
    texts[1100] = edit(rng, texts[40], 2)
    halves = [NearDuplicateIndex(), NearDuplicateIndex()]  # as worker processes would build them
    halves[0].add_many(texts[:700])
    halves[1].add_many(texts[700:])
    merged = NearDuplicateIndex.from_signatures(np.concatenate([h.signatures for h in halves]))
    whole = NearDuplicateIndex()
    whole.add_many(texts)
    assert np.array_equal(merged.signatures, whole.signatures)
    assert merged.pairs() == whole.pairs() and [(a, b) for a, b, _ in whole.pairs()] == [(40, 1100)]
    assert merged.add("one more") == 1200 and merged.signatures.shape == (1201, 128)


@pytest.mark.parametrize(
    "kwargs", [{"threshold": 1.0}, {"threshold": 0}, {"num_perm": 1}, {"ngram": 0}, {"bands": 20, "rows": 10}]
)
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        NearDuplicateIndex(**kwargs)
