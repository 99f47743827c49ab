"""Which generated records may join the dataset: same format, clean, and not a copy of anything already in it.

Three checks, each reusing what `validate` uses: the format reader the loader chose for the input file
(`reader.convert`: structure, roles, required fields), the per-record quality checks (`RecordChecker`: empty
output, placeholders, mojibake, control characters...), and duplicates, exact (normalised text, as validate's
duplicate check) and near (`NearDuplicateIndex`, MinHash over the same text), against the originals, every
record accepted so far (this run and earlier ones) and the other records of the same reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftbench.api.findings import Finding
from ftbench.data.formats import Sample
from ftbench.data.reader import RawRecord
from ftbench.quality.checks import QualityOptions, RecordChecker, normalise
from ftbench.quality.text import find_placeholders

PROVENANCE_KEY = "_ftbench"


@dataclass
class Verdict:
    """What happened to one candidate record: accepted (record is what is written) or why not."""

    record: object
    accepted: bool = False
    reason: str | None = None  # a validator/quality code, "duplicate", "near-duplicate", "surplus", ...
    detail: str | None = None
    text: str | None = None  # the normalised text duplicates are judged on (valid records only)


def dedup_text(sample: Sample) -> str:
    """The text duplicates are judged on: normalised prompt (with system) and answer."""
    return normalise(sample.prompt_text()) + "\n" + normalise(sample.response_text())


class RecordGate:
    """Validates candidates and de-duplicates them against everything already in the dataset."""

    def __init__(self, reader, file_name: str, *, near_dup: bool = True, threshold: float = 0.8):
        self.reader, self.file = reader, file_name
        self.exact: dict[str, str] = {}  # dedup text -> what it is ("original #3", "source 3 variant 1")
        self.labels: list[str] = []  # near-duplicate index id -> what it is
        self.threshold = threshold
        self.index = self._new_index() if near_dup else None
        self.quality = QualityOptions(near_dup=False)

    def _new_index(self):
        from ftbench.quality.minhash import NearDuplicateIndex

        return NearDuplicateIndex(threshold=self.threshold)

    def to_sample(self, record: dict, position: int = 0) -> tuple[Sample | None, list[Finding]]:
        findings: list[Finding] = []
        return self.reader.convert(self.file, RawRecord(position, None, record), findings), findings

    def add_known(self, sample: Sample, label: str) -> None:
        """Register a record that is already in the dataset (an original, or one accepted by an earlier run)."""
        text = dedup_text(sample)
        self.exact.setdefault(text, label)
        if self.index is not None:
            self.index.add(text)
            self.labels.append(label)

    def check(
        self, candidates: list, source_record: dict, source_sample: Sample, want: int, labels: list[str]
    ) -> list[Verdict]:
        """A verdict for every candidate; at most ``want`` are accepted (the rest valid ones are "surplus").
        ``labels[k]`` names the k-th accepted record for later duplicate messages. Accepted records are
        registered at once, so the next reply is checked against them too."""
        verdicts = [self._check_one(c, source_record, source_sample) for c in candidates]
        survivors = [v for v in verdicts if v.accepted]
        seen: dict[str, int] = {}
        for k, v in enumerate(survivors):  # exact duplicates: against the dataset, then within this reply
            text = v.text
            if text in self.exact:
                v.accepted, v.reason, v.detail = False, "duplicate", f"same text as {self.exact[text]}"
            elif text in seen:
                v.accepted, v.reason, v.detail = False, "duplicate", "same text as another record of this reply"
            else:
                seen[text] = k
        survivors = [v for v in survivors if v.accepted]
        if self.index is not None and survivors:
            self._near_duplicates(survivors)
        accepted = [v for v in survivors if v.accepted]
        for k, v in enumerate(accepted):
            if k >= want:
                v.accepted, v.reason, v.detail = False, "surplus", f"more than the {want} records asked for"
                continue
            self.exact[v.text] = labels[k]
            if self.index is not None:
                self.index.add(v.text)
                self.labels.append(labels[k])
        return verdicts

    def _check_one(self, candidate, source_record: dict, source_sample: Sample) -> Verdict:
        if not isinstance(candidate, dict):
            return Verdict(candidate, reason="not-an-object", detail=f"a JSON {type(candidate).__name__}, not a record")
        # only the original's keys: a model's extra "explanation" or "id" must not become a training column
        record = {k: v for k, v in candidate.items() if k in source_record and k != PROVENANCE_KEY}
        sample, findings = self.to_sample(record)
        errors = [f for f in findings if f.severity == "error"]
        if sample is None or errors:
            first = errors[0] if errors else Finding("invalid-record", "not a valid record")
            dropped = sorted(set(candidate) - set(record) - {PROVENANCE_KEY})
            extra = f" (keys not in the original were dropped: {', '.join(map(str, dropped))})" if dropped else ""
            return Verdict(candidate, reason=first.code, detail=f"{_field(first.path)} {first.message}{extra}".strip())
        checker = RecordChecker(self.quality, self.file)
        checker.observe(sample)
        problems = checker.warnings
        if any(w.code == "placeholder" for w in problems) and _placeholders_kept(sample, source_sample):
            problems = [w for w in problems if w.code != "placeholder"]  # {{name}} copied from the original: fine
        if problems:
            w = problems[0]
            return Verdict(candidate, reason=w.code, detail=f"{_field(w.path)} {w.message}".strip())
        return Verdict(record, accepted=True, text=dedup_text(sample))

    def _near_duplicates(self, survivors: list[Verdict]) -> None:
        from ftbench.quality.minhash import NearDuplicateIndex

        batch = NearDuplicateIndex(threshold=self.threshold)
        batch.add_many([v.text for v in survivors])
        if len(self.index):
            for mine, theirs, similarity in batch.cross_pairs(self.index):
                v = survivors[mine]
                v.accepted, v.reason = False, "near-duplicate"
                v.detail = f"near copy of {self.labels[theirs]} (similarity {similarity:.2f})"
        for first, later, similarity in batch.pairs():
            v = survivors[later]
            if v.accepted and survivors[first].accepted:
                v.accepted, v.reason = False, "near-duplicate"
                v.detail = f"near copy of another record of this reply (similarity {similarity:.2f})"


def _placeholders_kept(sample: Sample, source: Sample) -> bool:
    """Every placeholder in the generated record is one the original has (then it is meant to be filled later)."""
    allowed = {p for text in source.fields.values() for p in find_placeholders(text)}
    found = {p for text in sample.fields.values() for p in find_placeholders(text)}
    return found <= allowed


def _field(path: str | None) -> str:
    """`[0].conversations[1].value` -> `.conversations[1].value` (the record index means nothing here)."""
    return (path or "").removeprefix("[0]")
