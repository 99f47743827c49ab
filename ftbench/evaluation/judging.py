"""A pairwise judge's verdicts, read and summed: MT-Bench's pairwise protocol (each prompt judged twice, the two
answers swapped; reference-guided where a reference exists; `[[A]]`/`[[B]]`/`[[C]]` verdicts) as FastChat's
llm_judge and AlpacaEval read it.

Nothing here talks to a model: `judge_messages` renders what the judge is asked, `parse_verdict` reads one reply
strictly, `combine` turns the two orders of one prompt into the candidate's win/loss/tie (orders that disagree
are a tie), and `summarise` gives the counts, the win rate with its paired-bootstrap CI, a sign test, the win rate
split by which answer is longer, and the agreement with a per-sample metric's direction (e.g. ROUGE-L). The
judge scorer (`ftbench.evaluation.judge`) asks the model and keeps the judgments.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from ftbench.api.errors import UsageError
from ftbench.metrics.uncertainty import Bootstrap, percentile_interval, sign_test

TEMPLATE_DIR = os.path.join(os.path.dirname(__file__), "judge_templates")
TEMPLATE_FILES = ("system.j2", "pair.j2", "pair_reference.j2")
ORDERS = ("ab", "ba")  # ab: the baseline is assistant A; ba: the candidate is assistant A
VERDICT = re.compile(r"\[\[([ABC])\]\]")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def language_of(text: str) -> str:
    """ "zh" when at least a fifth of the text's letters are CJK ideographs, else "en" (which judge prompt to use)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    return "zh" if sum(1 for ch in letters if _CJK.match(ch)) * 5 >= len(letters) else "en"


@lru_cache(maxsize=8)
def _environment(folder: str):
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=False,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )


def template_folder(language: str, override: str | None = None) -> str:
    """The folder holding a language's judge templates: the user's ``override`` (a folder with en/ and zh/, or
    with the template files themselves) or the shipped ones."""
    if override:
        nested = os.path.join(override, language)
        folder = nested if os.path.isdir(nested) else override
        missing = [n for n in TEMPLATE_FILES if not os.path.isfile(os.path.join(folder, n))]
        if missing:
            raise UsageError(
                f"--judge-templates {override}: {folder} lacks {', '.join(missing)} (copy "
                f"{os.path.join(TEMPLATE_DIR, language)} and edit it)"
            )
        return folder
    return os.path.join(TEMPLATE_DIR, language)


def judge_messages(
    question: str,
    answer_a: str,
    answer_b: str,
    reference: str | None = None,
    *,
    language: str | None = None,
    templates: str | None = None,
) -> list[dict]:
    """The chat messages (system, user) asking which of two answers to ``question`` is better; with a
    ``reference``, the reference-guided prompt. The language follows the question unless given."""
    lang = language or language_of(question)
    env = _environment(template_folder(lang, templates))
    values = {"question": question, "answer_a": answer_a, "answer_b": answer_b, "reference": reference or ""}
    user = env.get_template("pair_reference.j2" if reference else "pair.j2").render(values)
    return [
        {"role": "system", "content": env.get_template("system.j2").render(values).strip()},
        {"role": "user", "content": user.strip()},
    ]


def parse_verdict(reply: str) -> str | None:
    """ "A", "B" or "C" (a tie) when the reply names exactly one verdict in MT-Bench's `[[X]]` format (repeating the
    same verdict is fine); None when it names none or several different ones (the reply is then retried)."""
    found = set(VERDICT.findall(reply or ""))
    return found.pop() if len(found) == 1 else None


def candidate_outcome(verdict: str | None, order: str) -> str | None:
    """One order's verdict from the candidate's side: "win", "loss", "tie", or None (unparseable)."""
    if verdict is None:
        return None
    if verdict == "C":
        return "tie"
    candidate = "B" if order == "ab" else "A"
    return "win" if verdict == candidate else "loss"


def combine(first: str | None, second: str | None) -> tuple[str | None, bool]:
    """(outcome, consistent) of one prompt from its two orders' candidate outcomes: the outcome both orders agree
    on, else a tie (inconsistent); None when an order has no parseable verdict."""
    if first is None or second is None:
        return None, False
    return (first, True) if first == second else ("tie", False)


@dataclass
class PairOutcome:
    """One prompt's judged result, with what the summary splits and checks it by."""

    outcome: str | None  # win / loss / tie for the candidate, None when a verdict could not be read
    consistent: bool
    candidate_longer: bool | None  # None: equal lengths
    metric_direction: int | None = None  # sign of (candidate - baseline) of a per-sample metric, if given


def summarise(pairs: Sequence[PairOutcome]) -> dict:
    """Counts, the candidate's win rate ((wins + ties/2) / judged) with a 95% paired-bootstrap CI over prompts, a
    two-sided sign test on wins vs losses, swap inconsistencies, the win rate by which answer is longer, and the
    share of decisive verdicts whose direction agrees with the metric's."""
    judged = [p for p in pairs if p.outcome is not None]
    wins = sum(p.outcome == "win" for p in judged)
    losses = sum(p.outcome == "loss" for p in judged)
    ties = len(judged) - wins - losses
    scores = np.array([1.0 if p.outcome == "win" else 0.5 if p.outcome == "tie" else 0.0 for p in judged])
    out = {
        "n": len(pairs),
        "judged": len(judged),
        "unparseable": len(pairs) - len(judged),
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "inconsistent": sum(not p.consistent for p in judged),
        "win_rate": float(scores.mean()) if len(judged) else None,
        "win_rate_ci95": percentile_interval(Bootstrap(len(judged)).means(scores)[:, 0]) if len(judged) >= 2 else None,
        "sign_test": sign_test(wins, losses),
        "method": "each prompt judged in both orders; orders that disagree count as a tie; win rate = "
        "(wins + ties/2) / judged, 95% CI by the percentile bootstrap over prompts",
    }
    by_length = {}
    for name, keep in (("candidate_longer", True), ("baseline_longer", False), ("same_length", None)):
        group = [s for s, p in zip(scores, judged) if p.candidate_longer is keep]
        by_length[name] = {"n": len(group), "win_rate": float(np.mean(group)) if group else None}
    out["length_bias"] = by_length
    decisive = [p for p in judged if p.outcome != "tie" and p.metric_direction]
    agree = sum((p.outcome == "win") == (p.metric_direction > 0) for p in decisive)
    out["metric_agreement"] = {
        "decisive": len(decisive),
        "agree": agree,
        "share": agree / len(decisive) if decisive else None,
    }
    return out


class JudgmentStore:
    """The judgments file: one JSON row per (prompt index, order), appended and fsynced as each arrives, so a
    killed run loses at most the replies in flight and a rerun judges only what is missing (nothing twice).

    Its first row is a header saying what is judged (the two files' hashes, the judge, the templates); a file
    with another header is never extended. A half-written last line (a kill mid-write) is cut off on reopening.
    """

    def __init__(self, path: str, header: dict):
        import orjson

        self.path, self.done = path, {}
        if os.path.exists(path):
            rows = self._read()
            if rows and rows[0].get("header") != header:
                raise UsageError(
                    f"{path} holds judgments of other answers or another judge: delete it to judge again "
                    "(with `ftbench judge`: or give another -o)"
                )
            self.done = {(r["index"], r["order"]): r for r in rows[1:]}
        else:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._fh = open(path, "ab")
        if not os.path.getsize(path):
            self._write(orjson.dumps({"header": header}))

    def _read(self) -> list[dict]:
        import orjson

        with open(self.path, "rb") as fh:
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):  # a torn last line: cut it, it is judged again
            with open(self.path, "r+b") as fh:
                fh.truncate(len(complete))
        rows = []
        for number, line in enumerate(complete.splitlines(), 1):
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise UsageError(f"{self.path}:{number}: not a judgment row (not JSON): give another -o") from None
            if not isinstance(row, dict) or (number > 1 and not {"index", "order"} <= set(row)):
                raise UsageError(f"{self.path}:{number}: not a judgment row: give another -o")
            rows.append(row)
        return rows

    def _write(self, line: bytes) -> None:
        self._fh.write(line + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def add(self, row: dict) -> None:
        import orjson

        self._write(orjson.dumps(row))
        self.done[(row["index"], row["order"])] = row

    def close(self) -> None:
        self._fh.close()
