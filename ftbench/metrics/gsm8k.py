"""GSM8K as lm-eval's `gsm8k` task scores it (v3.0): two answer extractions, exact match after normalising.

* strict-match: regex ``#### (\\-?[0-9\\.\\,]+)``, first match, then take_first;
* flexible-extract: regex ``(-?[$0-9.,]{2,})|(-?[0-9]+)``, last match (group_select -1), then take_first;
* either gives ``[invalid]`` when nothing matches;
* exact_match ignoring case, after deleting ``,``  ``$``  ``(?s).*#### ``  ``\\.$`` from prediction and target.

lm-eval's own RegexFilter and exact_match code do the work, so the figures are lm-eval's by construction;
a replica (tested equal) is used only if lm-eval cannot be imported.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ftbench import __version__
from ftbench.api.metrics import SampleMetric, format_signature
from ftbench.metrics.environment import package_version

TASK_VERSION = "3.0"  # lm-eval's gsm8k.yaml metadata.version these definitions come from
INVALID = "[invalid]"
STRICT_PATTERN = r"#### (\-?[0-9\.\,]+)"
FLEXIBLE_PATTERN = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"
FILTERS = {  # name -> (regex_pattern, group_select), as in lm-eval's filter_list
    "strict-match": (STRICT_PATTERN, 0),
    "flexible-extract": (FLEXIBLE_PATTERN, -1),
}
EXACT_MATCH_KWARGS = {
    "ignore_case": True,
    "ignore_punctuation": False,
    "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"],
}
STRICT_FIGURE = "exact_match,strict-match"  # lm-eval's result keys
FLEXIBLE_FIGURE = "exact_match,flexible-extract"


def target(label) -> str:
    """lm-eval's target from a prediction file's label: the GSM8K answer as the dataset has it. LLaMA-Factory
    writes a label as the decoded answer ids, so it ends in what the chat template adds after the answer (qwen:
    the "\\n" after <|im_end|>); exact_match would compare "18" with "18\\n" and never match. lm-eval's gold
    is cast to a string first (a number in an lm-eval samples file)."""
    return str(label).rstrip()


def truncate_at(text: str, until: Sequence[str]) -> str:
    """Cut a generation at the first stop sequence, as lm-eval does with the task's `until` list."""
    for term in until:
        if len(term) > 0:
            text = text.split(term)[0]
    return text


class _RegexFilterReplica:
    """lm-eval's RegexFilter.apply for one response per document (used only without lm-eval)."""

    def __init__(self, regex_pattern: str, group_select: int = 0, fallback: str = INVALID):
        self.regex, self.group_select, self.fallback = re.compile(regex_pattern), group_select, fallback

    def apply(self, resps, docs):
        out = []
        for inst in resps:
            filtered = []
            for resp in inst:
                if not isinstance(resp, str):
                    resp = ""
                match = self.regex.findall(resp)
                if match:
                    match = match[self.group_select]
                    if isinstance(match, tuple):
                        match = [m for m in match if m]
                        match = match[0] if match else self.fallback
                    match = match.strip()
                else:
                    match = self.fallback
                filtered.append(match)
            out.append(filtered)
        return out


def _exact_match_replica(predictions, references, regexes_to_ignore=None, ignore_case=False, ignore_punctuation=False):
    """lm-eval's exact_match_hf_evaluate for the options gsm8k uses (used only without lm-eval)."""
    for s in regexes_to_ignore or ():
        predictions = np.array([re.sub(s, "", x) for x in predictions])
        references = np.array([re.sub(s, "", x) for x in references])
    predictions, references = np.asarray(predictions), np.asarray(references)
    if ignore_case:
        predictions, references = np.char.lower(predictions), np.char.lower(references)
    return {"exact_match": np.mean(predictions == references)}


def implementation() -> tuple[type, object, str]:
    """(RegexFilter class, exact_match function, implementation label)."""
    try:
        from lm_eval.api.metrics import exact_match_hf_evaluate
        from lm_eval.filters.extraction import RegexFilter
    except ImportError:
        return _RegexFilterReplica, _exact_match_replica, f"ftbench-replica-of-lm-eval-gsm8k-v{TASK_VERSION}"
    return RegexFilter, exact_match_hf_evaluate, f"lm-eval-{package_version('lm_eval')}"


def extract(predictions: Sequence[str], filter_name: str) -> list[str]:
    """The answers lm-eval's filter pipeline (regex, take_first) extracts, in order."""
    regex_filter_cls, _, _ = implementation()
    pattern, group_select = FILTERS[filter_name]
    regex_filter = regex_filter_cls(regex_pattern=pattern, group_select=group_select, fallback=INVALID)
    return [resps[0] for resps in regex_filter.apply([[p] for p in predictions], None)]


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per-sample 0/1 exact match, each computed by lm-eval's metric call exactly as its task does."""
    _, exact_match_fn, _ = implementation()
    return np.array(
        [
            float(exact_match_fn(predictions=[p], references=[r], **EXACT_MATCH_KWARGS)["exact_match"])
            for p, r in zip(predictions, references)
        ],
        dtype=np.float64,
    )


def normalise(text: str) -> str:
    """The string exact_match compares (its regexes, then lower case)."""
    for pattern in EXACT_MATCH_KWARGS["regexes_to_ignore"]:
        text = re.sub(pattern, "", text)
    return text.lower()


class Gsm8kExactMatch(SampleMetric):
    """lm-eval gsm8k: exact_match under the strict-match and flexible-extract filters."""

    name = "gsm8k"
    figures = (STRICT_FIGURE, FLEXIBLE_FIGURE)

    def __init__(self, until: Sequence[str] = ()):
        self.until = tuple(until)
        self.extracted: dict[str, list[str]] = {}

    def per_sample(self, predictions, references):
        if self.until:
            predictions = [truncate_at(p, self.until) for p in predictions]
        references = [target(r) for r in references]
        self.extracted = {
            "strict": extract(predictions, "strict-match"),
            "flexible": extract(predictions, "flexible-extract"),
        }
        return {
            STRICT_FIGURE: exact_match(self.extracted["strict"], references),
            FLEXIBLE_FIGURE: exact_match(self.extracted["flexible"], references),
        }

    def aggregate(self, figure, values):
        return sum(values.tolist()) / len(values)  # lm-eval's `mean` aggregation

    def signatures(self) -> dict[str, str]:
        impl = implementation()[2]
        until = ",".join(f"'{u}'" for u in self.until) if self.until else None
        norm = "ignore-case,ignore=" + ",".join(f"'{r}'" for r in EXACT_MATCH_KWARGS["regexes_to_ignore"])
        sigs = {}
        for figure, filter_name in ((STRICT_FIGURE, "strict-match"), (FLEXIBLE_FIGURE, "flexible-extract")):
            pattern, group = FILTERS[filter_name]
            sigs[figure] = format_signature(
                figure,
                task=f"gsm8k-v{TASK_VERSION}",
                until=until,
                regex=pattern.replace("|", "\\|"),
                match="first" if group == 0 else "last",
                fallback=INVALID,
                norm=norm,
                agg="mean",
                impl=impl,
                ftbench=__version__,
            )
        return sigs


# --- the figures as reports name them ------------------------------------------------------------------------
REPORT_FIGURES = ("strict-match", "flexible-extract", "strict-parsable")  # lm-eval's keys without "exact_match,"
STRICT_PARSABLE = "strict-parsable"
_LABEL_AT_END = re.compile(r"#### *-?[0-9.,$]+\s*$")  # a GSM8K reference answer: "... #### 72"


def looks_like_gsm8k(labels: Sequence[str]) -> bool:
    """Whether references are GSM8K answers: at least 80% of them end in '#### <number>'."""
    labels = list(labels)
    return bool(labels) and sum(1 for label in labels if _LABEL_AT_END.search(str(label))) >= 0.8 * len(labels)


def add_report_figures(result) -> None:
    """Rename lm-eval's figure keys ("exact_match,strict-match" -> "strict-match") in every table of a
    `ScoreResult`, and add `strict-parsable`: the share of answers in which strict-match finds a '#### <number>'
    at all. It shows a model learning GSM8K's answer format while its arithmetic is still wrong (not an
    lm-eval figure, so its signature says ftbench)."""
    from ftbench.metrics.uncertainty import mean_intervals, mean_stderr

    for table in (result.metrics, result.stderr, result.ci95, result.signatures, result.samples):
        for key in [k for k in table if k.startswith("exact_match,")]:
            table[key.split(",", 1)[1]] = table.pop(key)
    values = [0.0 if s == INVALID else 1.0 for s in result.samples["strict"]]
    result.metrics[STRICT_PARSABLE] = sum(values) / len(values) if values else float("nan")
    result.samples[STRICT_PARSABLE] = values
    result.stderr[STRICT_PARSABLE] = mean_stderr(values)
    result.ci95[STRICT_PARSABLE] = mean_intervals({"x": values}, len(values))["x"] if values else None
    result.signatures[STRICT_PARSABLE] = format_signature(
        STRICT_PARSABLE, regex=STRICT_PATTERN.replace("|", "\\|"), match="first", agg="mean", ftbench=__version__
    )
