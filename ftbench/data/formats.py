"""SFT data formats (alpaca, sharegpt, OpenAI messages) as LLaMA-Factory reads them, normalised to `Sample`.

Each format is one class that turns a raw record into a `Sample` or into record errors with field paths
such as `[12].conversations[3].from`. The rules follow LLaMA-Factory's converters (`convert_alpaca`,
`convert_sharegpt`): what LLaMA-Factory silently drops ("Invalid role tag", "Invalid message count") is an
error here, said out loud.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ftbench.api.findings import Finding
from ftbench.data.reader import RawRecord

USER, ASSISTANT, SYSTEM, OBSERVATION, FUNCTION = "user", "assistant", "system", "observation", "function_call"

ALPACA_COLUMNS = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": "history",
    "system": "system",
    "tools": None,
}
SHAREGPT_COLUMNS = {"messages": "conversations", "system": "system", "tools": "tools"}
OPENAI_COLUMNS = {"messages": "messages", "system": "system", "tools": "tools"}
SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
OPENAI_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "tool",
    "function_tag": "function_call",
    "system_tag": "system",
}
REQUIRED_TAGS = ("role_tag", "content_tag", "user_tag", "assistant_tag")
FORMATS = ("alpaca", "sharegpt", "openai")
FORMAT_CHOICES = ("auto", *FORMATS)  # what --format takes: auto = chosen from the first records


@dataclass(slots=True)
class Sample:
    """One training example in any format: system prompt, tools, and turns (role, content) alternating
    user-side (user/observation) and assistant-side (assistant/function_call), ending assistant-side."""

    turns: list[tuple[str, str]]
    system: str
    tools: str
    file: str
    record: int
    line: int | None
    fields: dict[str, str] = field(default_factory=dict)  # field path -> text, for locating text findings
    response_path: str = ""  # the field path of the final assistant text
    kind: str = "sft"  # "sft", "ranking" (the response is the chosen one), "kto" or "pretrain" (one text)

    def prompt_text(self) -> str:
        """Everything the model is conditioned on, as plain text (for duplicate and overlap checks)."""
        if not self.system and len(self.turns) == 2:  # the common single-turn sample, without a copy
            return self.turns[0][1]
        parts = [self.system] if self.system else []
        parts.extend(content for _, content in self.turns[:-1])
        return "\n".join(parts)

    def response_text(self) -> str:
        return self.turns[-1][1] if self.turns else ""


_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_surrogates(sample: Sample) -> Sample:
    """The sample with lone surrogates (invalid Unicode, e.g. half an emoji from a bad JSON escape) replaced by
    U+FFFD: tokenizers cannot encode them. `validate` reports them as invalid-unicode; models get U+FFFD."""

    def clean(text: str) -> str:
        return text if text.isascii() or not _SURROGATE.search(text) else _SURROGATE.sub("\ufffd", text)

    sample.turns = [(role, clean(content)) for role, content in sample.turns]
    sample.system, sample.tools = clean(sample.system), clean(sample.tools)
    return sample


class RecordErrors:
    """Collects the errors of one record, each with the record's file, line, index and a field path."""

    __slots__ = ("file", "rec", "out", "count")

    def __init__(self, file: str, rec: RawRecord, out: list[Finding]):
        self.file, self.rec, self.out, self.count = file, rec, out, 0

    def add(self, code: str, path: str, message: str, hint: str | None = None, severity: str = "error") -> None:
        self.out.append(
            Finding(
                code,
                message,
                severity=severity,
                hint=hint,
                file=self.file,
                line=self.rec.line,
                record=self.rec.index,
                path=f"[{self.rec.index}]{path}",
            )
        )
        if severity == "error":
            self.count += 1


def type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _missing_key_hint(keys, wanted: str) -> str | None:
    close = difflib.get_close_matches(wanted, [k for k in keys if isinstance(k, str)], n=1, cutoff=0.6)
    if close:
        return f"found '{close[0]}': a typo for '{wanted}'?"
    return None


class AlpacaFormat:
    """instruction / input / output (+ optional system, history [[q, a], ...]), columns renamable."""

    name = "alpaca"

    def __init__(self, columns: dict | None = None):
        cols = dict(ALPACA_COLUMNS)
        cols.update(columns or {})  # a dataset_info entry gives every column, None for those LLaMA-Factory skips
        self.columns = cols
        self.prompt, self.query, self.response = cols["prompt"], cols["query"], cols["response"]
        self.history, self.system, self.tools = cols.get("history"), cols.get("system"), cols.get("tools")
        # field paths of the fast path, made once rather than per record
        self._paths = (f".{self.prompt}", f".{self.query}", f".{self.response}")

    def required_columns(self) -> list[str]:
        """Columns every record needs: the prompt (or, without one, the query) and the response."""
        return [c for c in (self.prompt or self.query, self.response) if c]

    def describe(self) -> str:
        """What a record must hold, for messages."""
        return " and ".join(f"'{c}'" for c in self.required_columns())

    def convert(self, file: str, rec: RawRecord, out: list[Finding]) -> Sample | None:
        v = rec.value
        if type(v) is not dict:
            RecordErrors(file, rec, out).add(
                "wrong-type", "", f"the record is {type_name(v)}, expected an object with {self.describe()}"
            )
            return None
        instruction = v.get(self.prompt) if self.prompt else ""
        query, response = v.get(self.query, "") if self.query else "", v.get(self.response)
        if (
            type(instruction) is str
            and type(response) is str
            and type(query) is str
            and (instruction.strip() or not self.prompt and query.strip())
            and not (self.history and v.get(self.history))
            and not (self.system and self.system in v)
        ):
            # fast path for the plain record (most of a large file): no history, no system, all strings
            prompt_path, query_path, response_path = self._paths
            fields = {prompt_path: instruction, response_path: response} if self.prompt else {response_path: response}
            if query:
                fields[query_path] = query
                # LLaMA-Factory joins prompt and query with \n
                instruction = f"{instruction}\n{query}" if instruction else query
            return Sample(
                [(USER, instruction), (ASSISTANT, response)], "", "", file, rec.index, rec.line, fields, response_path
            )
        errs = RecordErrors(file, rec, out)
        prompt = self.prompt_turns(v, errs)
        response = self._text(v, self.response, errs, prompt[3], required=True)
        if prompt[0] is None or response is None:
            return None
        turns, system, tools, fields = prompt
        turns.append((ASSISTANT, response))
        return Sample(turns, system, tools, file, rec.index, rec.line, fields, f".{self.response}")

    def prompt_turns(self, v: dict, errs: RecordErrors) -> tuple[list | None, str, str, dict]:
        """(history and user turns, system, tools, field texts) of a record; turns None if it has errors."""
        fields: dict[str, str] = {}
        instruction = self._text(v, self.prompt, errs, fields, required=True) if self.prompt else ""
        query = self._text(v, self.query, errs, fields, required=not self.prompt) if self.query else ""
        system = self._text(v, self.system, errs, fields, required=False) if self.system else ""
        tools = self._text(v, self.tools, errs, fields, required=False) if self.tools else ""
        turns = self._history(v, errs, fields) if self.history else []
        if instruction is not None and query is not None and not instruction.strip() and not query.strip():
            first = self.prompt or self.query
            errs.add(
                "empty-field",
                f".{first}",
                f"'{first}' is empty" + (f" and so is '{self.query}'" if self.query and self.prompt else ""),
                hint="the prompt has no text to train on",
            )
        if errs.count or turns is None or None in (instruction, query, system, tools):
            return None, "", "", fields
        user = "\n".join(t for t in (instruction, query) if t)  # LLaMA-Factory joins prompt and query with \n
        turns.append((USER, user))
        return turns, system or "", tools or "", fields

    def _text(self, v: dict, key: str, errs: RecordErrors, fields: dict, *, required: bool) -> str | None:
        value = v.get(key)
        if value is None:
            if required and key not in v:
                errs.add(
                    "missing-field",
                    f".{key}",
                    f"required field '{key}' is missing",
                    hint=_missing_key_hint(v.keys(), key) or f'add "{key}": "..."',
                )
                return None
            if required:
                errs.add("wrong-type", f".{key}", f"'{key}' is null, expected a string")
                return None
            return ""
        if type(value) is not str:
            errs.add(
                "wrong-type",
                f".{key}",
                f"'{key}' is {type_name(value)}, expected a string",
                hint="lists of answers are preference (ranking) data; SFT needs one string"
                if key == self.response and isinstance(value, list)
                else None,
            )
            return None
        fields[f".{key}"] = value
        return value

    def _history(self, v: dict, errs: RecordErrors, fields: dict) -> list[tuple[str, str]] | None:
        history = v.get(self.history)
        if history is None:
            return []
        if type(history) is not list:
            errs.add(
                "wrong-type",
                f".{self.history}",
                f"'{self.history}' is {type_name(history)}, expected an array of [question, answer] pairs",
            )
            return None
        turns: list[tuple[str, str]] = []
        for i, pair in enumerate(history):
            path = f".{self.history}[{i}]"
            if type(pair) is not list or len(pair) != 2:
                errs.add(
                    "wrong-type",
                    path,
                    f"history item is {type_name(pair)}"
                    + (f" of {len(pair)} items" if isinstance(pair, list) else "")
                    + ", expected a [question, answer] pair",
                )
                continue
            for j, (role, text) in enumerate(zip((USER, ASSISTANT), pair)):
                if type(text) is not str:
                    errs.add("wrong-type", f"{path}[{j}]", f"history text is {type_name(text)}, expected a string")
                elif not text.strip():
                    errs.add("empty-field", f"{path}[{j}]", "history text is empty")
                else:
                    fields[f"{path}[{j}]"] = text
                    turns.append((role, text))
        return None if errs.count else turns


class ConversationFormat:
    """A list of turns with a role key and a content key: sharegpt (from/value, human/gpt) or OpenAI
    messages (role/content, user/assistant), with LLaMA-Factory's `columns` and `tags` honoured."""

    TURN_KEY_ALTERNATIVES = ("value", "content", "text", "input", "message", "output")

    def __init__(self, name: str, columns: dict | None = None, tags: dict | None = None):
        self.name = name
        base_cols, base_tags = (OPENAI_COLUMNS, OPENAI_TAGS) if name == "openai" else (SHAREGPT_COLUMNS, SHAREGPT_TAGS)
        self.columns = {**base_cols, **(columns or {})}
        # a None observation/function/system tag is honoured (LLaMA-Factory then rejects that role); the
        # role, content, user and assistant tags always have a value (dataset_info reports them missing)
        self.tags = {**base_tags, **(tags or {})}
        for key in REQUIRED_TAGS:
            self.tags[key] = self.tags[key] if self.tags[key] is not None else base_tags[key]
        t = self.tags
        self.messages, self.system_col, self.tools_col = (
            self.columns["messages"] or base_cols["messages"],
            self.columns.get("system"),
            self.columns.get("tools"),
        )
        self.role_tag, self.content_tag = t["role_tag"], t["content_tag"]
        roles = (
            (t["user_tag"], USER),
            (t["assistant_tag"], ASSISTANT),
            (t["observation_tag"], OBSERVATION),
            (t["function_tag"], FUNCTION),
            (t["system_tag"], SYSTEM),
        )
        self.role_of = {tag: role for tag, role in roles if tag is not None}
        self.user_side = tuple(tag for tag in (t["user_tag"], t["observation_tag"]) if tag is not None)
        self.assistant_side = tuple(tag for tag in (t["assistant_tag"], t["function_tag"]) if tag is not None)

    def required_columns(self) -> list[str]:
        """Columns every record needs: the list of turns."""
        return [self.messages]

    def describe(self) -> str:
        """What a record must hold, for messages."""
        return f"'{self.messages}'"

    def convert(self, file: str, rec: RawRecord, out: list[Finding]) -> Sample | None:
        errs = RecordErrors(file, rec, out)
        parsed = self.parse(rec.value, errs)
        if parsed is None:
            return None
        turns, system, tools, fields, turns_raw = parsed
        key = self.messages
        if turns and turns[-1][0] not in (ASSISTANT, FUNCTION):
            last = len(turns_raw) - 1
            errs.add(
                "last-turn-not-assistant",
                f".{key}[{last}].{self.role_tag}",
                f"the conversation ends with a '{turns_raw[last][self.role_tag]}' turn; it must end with "
                f"'{self.tags['assistant_tag']}'",
                hint="add the assistant's answer or drop the unanswered turn "
                "(LLaMA-Factory drops the whole conversation: 'Invalid message count')",
            )
            return None
        response_path = f".{key}[{len(turns_raw) - 1}].{self.content_tag}"
        return Sample(turns, system, tools, file, rec.index, rec.line, fields, response_path)

    def parse(self, v, errs: RecordErrors) -> tuple[list, str, str, dict, list] | None:
        """(turns, system, tools, field texts, the raw turns) of a record whose turns alternate user-side,
        assistant-side; None (with the errors in ``errs``) if they do not."""
        if type(v) is not dict:
            errs.add("wrong-type", "", f"the record is {type_name(v)}, expected an object with '{self.messages}'")
            return None
        key = self.messages
        turns_raw = v.get(key)
        if turns_raw is None:
            if key in v:
                errs.add("wrong-type", f".{key}", f"'{key}' is null, expected an array of turns")
            else:
                errs.add(
                    "missing-field",
                    f".{key}",
                    f"required field '{key}' is missing",
                    hint=_missing_key_hint(v.keys(), key) or f'add "{key}": [{{...}}, ...]',
                )
            return None
        if type(turns_raw) is not list:
            errs.add("wrong-type", f".{key}", f"'{key}' is {type_name(turns_raw)}, expected an array of turns")
            return None
        if not turns_raw:
            errs.add("empty-conversation", f".{key}", "the conversation has no turns")
            return None
        fields: dict[str, str] = {}
        system = ""
        if self.system_col and v.get(self.system_col) is not None:
            system = v[self.system_col]
            if type(system) is not str:
                errs.add(
                    "wrong-type",
                    f".{self.system_col}",
                    f"'{self.system_col}' is {type_name(system)}, expected a string",
                )
                system = ""
            else:
                fields[f".{self.system_col}"] = system
        tools = v.get(self.tools_col) if self.tools_col else None
        tools = tools if isinstance(tools, str) else ""
        turns: list[tuple[str, str]] = []
        start = 0
        first = turns_raw[0]
        if (
            type(first) is dict
            and self.tags["system_tag"] is not None
            and first.get(self.role_tag) == self.tags["system_tag"]
        ):
            content = self._content(first, f".{key}[0]", errs, fields, allow_empty=True)
            system = content if content is not None else system
            start = 1
        if start == len(turns_raw):
            errs.add("empty-conversation", f".{key}", "the conversation has only a system turn")
            return None
        expect_user = True
        for i in range(start, len(turns_raw)):
            turn = turns_raw[i]
            path = f".{key}[{i}]"
            if type(turn) is not dict:
                errs.add(
                    "wrong-type",
                    path,
                    f"turn is {type_name(turn)}, expected an object with '{self.role_tag}' and '{self.content_tag}'",
                )
                expect_user = not expect_user
                continue
            role = self._role(turn, path, errs, expect_user)
            # resynchronise on the turn actually given, so one missing turn is one error, not one per later turn
            tag = turn.get(self.role_tag)
            if tag in self.user_side or tag in self.assistant_side:
                expect_user = tag in self.assistant_side
            else:
                expect_user = not expect_user
            content = self._content(turn, path, errs, fields, allow_empty=role in (ASSISTANT, FUNCTION))
            if role is not None and content is not None:
                turns.append((role, content))
        if errs.count:
            return None
        return turns, system, tools, fields, turns_raw

    def _role(self, turn: dict, path: str, errs: RecordErrors, user_side: bool) -> str | None:
        if self.role_tag not in turn:
            other = [k for k in ("from", "role", "speaker", "author") if k in turn and k != self.role_tag]
            errs.add(
                "missing-field",
                f"{path}.{self.role_tag}",
                f"turn has no '{self.role_tag}'",
                hint=f"it has '{other[0]}': set tags.role_tag in dataset_info.json or rename it" if other else None,
            )
            return None
        tag = turn[self.role_tag]
        if type(tag) is not str:  # a list or object is unhashable, a number is no tag: say so at the field
            errs.add(
                "wrong-type",
                f"{path}.{self.role_tag}",
                f"'{self.role_tag}' is {type_name(tag)}, expected a role string such as {self.tags['user_tag']!r}",
                hint=f'write one role as a string: "{self.role_tag}": {json.dumps(self.tags["user_tag"])}',
            )
            return None
        if tag not in self.role_of:
            known = ", ".join(repr(t) for t in self.role_of)
            errs.add(
                "unknown-role",
                f"{path}.{self.role_tag}",
                f"unknown role {tag!r}; expected one of {known}",
                hint=self._role_hint(tag),
            )
            return None
        expected = self.user_side if user_side else self.assistant_side
        if tag not in expected:
            want = " or ".join(repr(t) for t in expected)
            errs.add(
                "role-order",
                f"{path}.{self.role_tag}",
                f"turn is {tag!r} but {want} was expected here: turns must alternate user, assistant, ...",
                hint="merge consecutive turns of the same side or add the missing turn (LLaMA-Factory drops the "
                "whole conversation: 'Invalid role tag')",
            )
            return None
        return self.role_of[tag]

    def _role_hint(self, tag: Any) -> str | None:
        pairs = {
            "user": "user_tag",
            "human": "user_tag",
            "assistant": "assistant_tag",
            "gpt": "assistant_tag",
            "tool": "observation_tag",
            "system": "system_tag",
        }
        if isinstance(tag, str) and tag.lower() in pairs:
            return f"this file uses {tag!r}: declare it in dataset_info.json tags ({pairs[tag.lower()]}: {tag!r})"
        return None

    def _content(self, turn: dict, path: str, errs: RecordErrors, fields: dict, *, allow_empty: bool) -> str | None:
        key = self.content_tag
        if turn.get(key) is None:  # absent, or null as in a Parquet struct whose other rows use another key
            used = [
                k
                for k in self.TURN_KEY_ALTERNATIVES
                if k != key and k in turn and (key not in turn or isinstance(turn[k], str))
            ]
            if key in turn and not used:
                errs.add("wrong-type", f"{path}.{key}", f"'{key}' is null, expected a string")
                return None
            if used:
                errs.add(
                    "wrong-turn-key",
                    f"{path}.{used[0]}",
                    f"turn uses '{used[0]}' where '{key}' is expected",
                    hint=f"rename '{used[0]}' to '{key}' (or set tags.content_tag in dataset_info.json)",
                )
            else:
                errs.add(
                    "missing-field", f"{path}.{key}", f"turn has no '{key}'", hint=_missing_key_hint(turn.keys(), key)
                )
            return None
        content = turn[key]
        if type(content) is list and self.name == "openai":  # OpenAI content parts: keep the text ones
            texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
                content = "".join(texts)
        if type(content) is not str:
            errs.add("wrong-type", f"{path}.{key}", f"'{key}' is {type_name(content)}, expected a string")
            return None
        if not allow_empty and not content.strip():
            errs.add("empty-field", f"{path}.{key}", "the turn's text is empty")
            return None
        fields[f"{path}.{key}"] = content
        return content
