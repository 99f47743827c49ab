"""The dataset kinds besides SFT that a LLaMA-Factory registry holds, each checked as what it is.

- **ranking** (`"ranking": true`, DPO/RM): alpaca records need `chosen` and `rejected` strings; sharegpt
  conversations end with the user's turn and carry `chosen`/`rejected` assistant turns (LLaMA-Factory's
  converters drop anything else). Both answers present, non-empty and different.
- **KTO** (a `kto_tag` column): the tag must be a JSON boolean, or LLaMA-Factory reads the row as plain SFT.
- **pretraining text** (`"columns": {"prompt": "text"}`, and every `.txt` file): one text per record.
- **multimodal** (`images`/`videos`/`audios` columns, on top of any kind): every file exists relative to the
  media folder, and the turns hold as many `<image>`/`<video>`/`<audio>` placeholders as there are files.
"""

from __future__ import annotations

import os

from ftbench.api.findings import Finding
from ftbench.data.formats import ASSISTANT, FUNCTION, AlpacaFormat, ConversationFormat, RecordErrors, Sample, type_name
from ftbench.data.record import RawRecord

# LLaMA-Factory's extras/constants.py, overridable through the same environment variables
PLACEHOLDERS = {
    "images": os.getenv("IMAGE_PLACEHOLDER", "<image>"),
    "videos": os.getenv("VIDEO_PLACEHOLDER", "<video>"),
    "audios": os.getenv("AUDIO_PLACEHOLDER", "<audio>"),
}
MEDIA_KINDS = tuple(PLACEHOLDERS)


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def _compare_answers(errs: RecordErrors, chosen: str, rejected: str, paths: tuple[str, str]) -> None:
    """Warnings for a preference pair that teaches nothing: an empty answer, or two equal answers."""
    for text, path, which in ((chosen, paths[0], "chosen"), (rejected, paths[1], "rejected")):
        if not text.strip():
            errs.add(
                "empty-output",
                path,
                f"the {which} answer is empty",
                severity="warning",
                hint="a preference pair needs two real answers; fill it or drop the record",
            )
    if chosen.strip() and _normalised(chosen) == _normalised(rejected):
        errs.add(
            "chosen-equals-rejected",
            paths[1],
            "the rejected answer is the same as the chosen one",
            severity="warning",
            hint="the pair teaches no preference: make the rejected answer the worse one, or drop the record",
        )


class RankingAlpaca(AlpacaFormat):
    """Alpaca preference data: the prompt columns, and `chosen`/`rejected` answer strings."""

    kind = "ranking"

    def __init__(self, columns: dict | None = None):
        super().__init__(columns)
        self.chosen, self.rejected = self.columns.get("chosen") or "chosen", self.columns.get("rejected") or "rejected"

    def required_columns(self) -> list[str]:
        return [c for c in (self.prompt or self.query, self.chosen, self.rejected) if c]

    def convert(self, file: str, rec: RawRecord, out: list[Finding]) -> Sample | None:
        v, errs = rec.value, RecordErrors(file, rec, out)
        if type(v) is not dict:
            errs.add("wrong-type", "", f"the record is {type_name(v)}, expected an object with {self.describe()}")
            return None
        turns, system, tools, fields = self.prompt_turns(v, errs)
        chosen, rejected = (self._answer(v, key, errs, fields) for key in (self.chosen, self.rejected))
        if turns is None or chosen is None or rejected is None:
            return None
        _compare_answers(errs, chosen, rejected, (f".{self.chosen}", f".{self.rejected}"))
        turns.append((ASSISTANT, chosen))
        return Sample(turns, system, tools, file, rec.index, rec.line, fields, f".{self.chosen}", "ranking")

    def _answer(self, v: dict, key: str, errs: RecordErrors, fields: dict) -> str | None:
        before = len(errs.out)
        text = self._text(v, key, errs, fields, required=True)
        if text is None and isinstance(v.get(key), dict):
            errs.out[before].hint = (
                'an answer turn {"from": ..., "value": ...} is sharegpt\'s: declare '
                '"formatting": "sharegpt", or give the answer as a string'
            )
        return text


class RankingConversation(ConversationFormat):
    """sharegpt/OpenAI preference data: a conversation ending with the user's turn, and `chosen`/`rejected`
    assistant turns ({"from": "gpt", "value": ...})."""

    kind = "ranking"

    def __init__(self, name: str, columns: dict | None = None, tags: dict | None = None):
        super().__init__(name, columns, tags)
        self.chosen, self.rejected = self.columns.get("chosen") or "chosen", self.columns.get("rejected") or "rejected"

    def required_columns(self) -> list[str]:
        return [self.messages, self.chosen, self.rejected]

    def convert(self, file: str, rec: RawRecord, out: list[Finding]) -> Sample | None:
        errs = RecordErrors(file, rec, out)
        parsed = self.parse(rec.value, errs)
        answers = (
            [self._answer(rec.value, key, errs) for key in (self.chosen, self.rejected)]
            if isinstance(rec.value, dict)
            else [None, None]
        )
        if parsed is None or None in answers:
            return None
        turns, system, tools, fields, turns_raw = parsed
        if turns[-1][0] in (ASSISTANT, FUNCTION):
            last = len(turns_raw) - 1
            errs.add(
                "last-turn-not-user",
                f".{self.messages}[{last}].{self.role_tag}",
                f"a preference conversation ends with the user's turn, but this one ends with "
                f"'{turns_raw[last][self.role_tag]}'",
                hint=f"move the answers into '{self.chosen}' and "
                f"'{self.rejected}' (LLaMA-Factory drops the record: 'Invalid message count')",
            )
            return None
        chosen, rejected = answers
        fields[f".{self.chosen}.{self.content_tag}"] = chosen
        fields[f".{self.rejected}.{self.content_tag}"] = rejected
        _compare_answers(
            errs, chosen, rejected, (f".{self.chosen}.{self.content_tag}", f".{self.rejected}.{self.content_tag}")
        )
        turns.append((ASSISTANT, chosen))
        return Sample(
            turns, system, tools, file, rec.index, rec.line, fields, f".{self.chosen}.{self.content_tag}", "ranking"
        )

    def _answer(self, v: dict, key: str, errs: RecordErrors) -> str | None:
        """The text of the `chosen` or `rejected` turn, or None with its error."""
        turn = v.get(key)
        if type(turn) is not dict:
            what = "is missing" if key not in v else f"is {type_name(turn)}"
            errs.add(
                "missing-field" if key not in v else "wrong-type",
                f".{key}",
                f"'{key}' {what}, expected an assistant turn {{\"{self.role_tag}\": "
                f'"{self.tags["assistant_tag"]}", "{self.content_tag}": "..."}}',
                hint="LLaMA-Factory drops a preference record without both answer turns",
            )
            return None
        role = turn.get(self.role_tag)
        if role not in self.assistant_side:
            errs.add(
                "unknown-role" if type(role) is not str or role not in self.role_of else "role-order",
                f".{key}.{self.role_tag}",
                f"the {key} turn has role {role!r}; an answer is {self.tags['assistant_tag']!r}",
                hint="LLaMA-Factory drops the record: 'Invalid role tag'",
            )
            return None
        return self._content(turn, f".{key}", errs, {}, allow_empty=True)


class PretrainFormat:
    """Pretraining text: one document per record in the prompt column (`"columns": {"prompt": "text"}`, or a
    .txt file's lines); LLaMA-Factory trains on the text plus an end-of-text token."""

    name = "text"
    kind = "pretrain"

    def __init__(self, columns: dict | None = None):
        self.columns = {"prompt": (columns or {}).get("prompt") or "text"}
        self.column = self.columns["prompt"]

    def required_columns(self) -> list[str]:
        return [self.column]

    def describe(self) -> str:
        return f"'{self.column}'"

    def convert(self, file: str, rec: RawRecord, out: list[Finding]) -> Sample | None:
        v, errs, key = rec.value, RecordErrors(file, rec, out), self.column
        if type(v) is not dict:
            errs.add("wrong-type", "", f"the record is {type_name(v)}, expected an object with '{key}'")
            return None
        text = v.get(key)
        if key not in v:
            errs.add("missing-field", f".{key}", f"required field '{key}' is missing", hint=f'add "{key}": "..."')
            return None
        if text is not None and type(text) is not str:
            errs.add("wrong-type", f".{key}", f"'{key}' is {type_name(text)}, expected a string")
            return None
        if not text or not text.strip():
            errs.add(
                "empty-text",
                f".{key}",
                f"the text is {'null' if text is None else 'empty'}",
                severity="warning",
                hint="LLaMA-Factory trains on it as a lone end-of-text token; drop the blank line or record",
            )
        text = text or ""
        return Sample([(ASSISTANT, text)], "", "", file, rec.index, rec.line, {f".{key}": text}, f".{key}", "pretrain")


class ColumnChecks:
    """A format reader plus the checks of its extra columns: KTO's tag, and media files with their
    placeholders. Reads like the reader it wraps (same name, columns, tags)."""

    def __init__(
        self, base, *, kto_tag: str | None = None, media: dict[str, str] | None = None, media_dir: str | None = None
    ):
        self.base, self.kto_tag, self.media, self.media_dir = base, kto_tag, media or {}, media_dir or "."
        self.kind = "kto" if kto_tag else getattr(base, "kind", "sft")

    def __getattr__(self, attr):
        if attr.startswith("__") or attr == "base":  # not yet set while unpickling in a worker
            raise AttributeError(attr)
        return getattr(self.base, attr)

    def required_columns(self) -> list[str]:
        """The base format's columns and the KTO tag (media columns may be absent from text-only records)."""
        return self.base.required_columns() + ([self.kto_tag] if self.kto_tag else [])

    def convert(self, file: str, rec: RawRecord, out: list[Finding]) -> Sample | None:
        sample = self.base.convert(file, rec, out)
        v = rec.value
        if type(v) is not dict:
            return sample
        errs = RecordErrors(file, rec, out)
        if self.kto_tag:
            self._kto(v, errs)
        for kind, column in self.media.items():
            files = self._media_files(v, kind, column, errs)
            if sample is not None and files is not None:
                self._placeholders(sample, kind, column, len(files), errs)
        if errs.count or sample is None:
            return None
        sample.kind = self.kind if sample.kind == "sft" else sample.kind
        return sample

    def _kto(self, v: dict, errs: RecordErrors) -> None:
        key = self.kto_tag
        tag = v.get(key)
        if type(tag) is not bool:
            what = "missing" if key not in v else f"{type_name(tag)} ({tag!r})" if tag is not None else "null"
            errs.add(
                "missing-field" if key not in v else "wrong-type",
                f".{key}",
                f"'{key}' is {what}, expected true or false",
                hint="KTO needs a JSON boolean per record: "
                "true for a desirable answer, false for an undesirable one (LLaMA-Factory reads anything else "
                "as plain SFT)",
            )

    def _media_files(self, v: dict, kind: str, column: str, errs: RecordErrors) -> list | None:
        """The media paths of one record (LLaMA-Factory: a string, a list, or for videos lists of frames),
        each checked to exist in the media folder (or as given); None if the column is malformed."""
        value = v.get(column)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            nested = isinstance(item, list) and kind == "videos"  # a video given as its frames
            for j, media in enumerate(item if nested else [item]):
                path = f".{column}[{i}]" + (f"[{j}]" if nested else "")
                if isinstance(media, dict):  # datasets' Image/Audio feature: {"bytes": ..., "path": ...}
                    if media.get("bytes") is not None:
                        continue
                    media = media.get("path")
                if not isinstance(media, str):
                    errs.add("wrong-type", path, f"a media entry is {type_name(media)}, expected a file path")
                    return None
                if not os.path.isfile(os.path.join(self.media_dir, media)) and not os.path.isfile(media):
                    errs.add(
                        "media-file-missing",
                        path,
                        f"{kind[:-1]} {media!r} is not in the media folder {self.media_dir}",
                        hint="paths are relative to media_dir (by default dataset_dir, "
                        "the folder of dataset_info.json); LLaMA-Factory fails when it opens the file",
                    )
        return items

    def _placeholders(self, sample: Sample, kind: str, column: str, count: int, errs: RecordErrors) -> None:
        mark = PLACEHOLDERS[kind]
        found = sum(content.count(mark) for _, content in sample.turns)
        if found != count:
            errs.add(
                "media-placeholder-mismatch",
                f".{column}",
                f"{count} {kind[:-1] if count == 1 else kind} but "
                f"{found} {mark} placeholder{'' if found == 1 else 's'} in the turns",
                hint=f"put one {mark} in the text where each {kind[:-1]} goes (LLaMA-Factory stops: The number "
                f"of {kind} does not match the number of {mark} tokens)",
            )
