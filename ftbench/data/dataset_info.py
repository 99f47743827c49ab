"""LLaMA-Factory's `dataset_info.json`: the registry that names datasets and says how to read each one.

Each entry is resolved as LLaMA-Factory's `data/parser.py` resolves it: where the rows come from (a hub URL,
then `script_url`, then `cloud_file_name`, then `file_name`), `formatting`, `ranking`, `split`, `num_samples`,
and `columns`/`tags`, which **replace** the defaults wholesale (a column or tag left out of them is None, not
its default). Problems in the registry itself become findings located at their entry's line; the datasets it
declares become `DatasetSpec`s for the loader.
"""

from __future__ import annotations

import json
import os
import re
from typing import Literal, Optional

import msgspec

from ftbench.api.errors import UsageError
from ftbench.api.findings import Finding
from ftbench.data import jsonsyntax
from ftbench.data.encoding import decode_text
from ftbench.data.formats import FORMATS, REQUIRED_TAGS, SHAREGPT_TAGS
from ftbench.data.reader import read_small_file
from ftbench.data.schema import PositiveInt, SchemaError, check
from ftbench.data.sources import parse_split, split_windows
from ftbench.data.spec import DatasetSpec

DATASET_INFO = "dataset_info.json"
# LLaMA-Factory's DatasetAttr defaults, in its order
DEFAULT_COLUMNS = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": None,
    "messages": "conversations",
    "system": None,
    "tools": None,
    "images": None,
    "videos": None,
    "audios": None,
    "chosen": None,
    "rejected": None,
    "kto_tag": None,
}
KNOWN_COLUMNS = set(DEFAULT_COLUMNS)
KNOWN_TAGS = set(SHAREGPT_TAGS)
HUB_KEYS = (("hf_hub_url", "hf_hub"), ("ms_hub_url", "ms_hub"), ("om_hub_url", "om_hub"))


class DatasetEntry(msgspec.Struct):
    """What one dataset_info.json entry may hold (other keys are ignored, as LLaMA-Factory ignores them). Which
    source key wins, and what an empty one means, is `_EntryReader._source`'s; the keys' types are declared here."""

    file_name: str = ""
    hf_hub_url: str = ""
    ms_hub_url: str = ""
    om_hub_url: str = ""
    script_url: str = ""
    cloud_file_name: str = ""
    formatting: Literal[FORMATS] = "alpaca"  # type: ignore[valid-type]
    ranking: bool = False
    columns: dict[str, Optional[str]] = {}
    tags: dict[str, Optional[str]] = {}
    split: str = "train"
    num_samples: Optional[PositiveInt] = None  # 0 would train on nothing
    subset: Optional[str] = None
    folder: Optional[str] = None


# what a wrong value of a key says before the schema's reason ("columns.prompt: expected a string or null, got 5"),
# and a hint
_EXPECTED = {
    **{
        key: (f"{key} must be a path or an id", None)
        for key in ("file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
    },
    "formatting": ("unknown formatting", 'use "alpaca", "sharegpt" or "openai"'),
    "ranking": ("ranking", "true only for preference data (chosen/rejected)"),
    "columns": (
        '"columns" must map column names to the data\'s keys',
        'e.g. "columns": {"prompt": "question", "response": "answer"}',
    ),
    "tags": (
        '"tags" must map tag names to strings',
        'e.g. "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}',
    ),
    "split": ("split", 'e.g. "train", or a slice of it such as "train[:1000]"'),
    "num_samples": ("num_samples", "the number of rows LLaMA-Factory draws from this dataset"),
}


def declared_names(info_path: str) -> set[str]:
    """The dataset names a dataset_info.json declares (none if it is missing or not a JSON object; its syntax
    errors are reported, located, by `parse_dataset_info`)."""
    try:
        info = json.loads(read_small_file(info_path, "dataset_info.json"))
    except (OSError, ValueError, RecursionError, UsageError):
        return set()
    return set(info) if isinstance(info, dict) else set()


def unknown_name(info_path: str, name: str, declared: set[str]) -> str:
    """The message for a dataset name ``info_path`` does not declare: what it has, or the name it differs from
    only in case."""
    close = [n for n in sorted(declared) if n.lower() == name.lower()]
    return f"{info_path}: no dataset named '{name}'" + (
        f" (did you mean '{close[0]}'?)" if close else f"; it has: {', '.join(sorted(declared))}"
    )


def resolve_dataset_names(
    names: list[str],
    info_path: str,
    findings: list[Finding],
    *,
    locate=None,
    formatting: str | None = None,
    media_dir: str | None = None,
) -> tuple[list[DatasetSpec], list[str]]:
    """Dataset names as LLaMA-Factory resolves them, plus ftbench's file paths: a name ``info_path`` declares is
    its entry (its problems become findings), else a data file or folder at ``locate(name)`` (default: the name
    itself) read with ``formatting``. The one implementation of dataset names (`ftbench validate --dataset`,
    a config's ``dataset``/``eval_dataset``). Returns the specs in the names' order and the names that are
    neither (the caller says so in its own terms)."""
    declared = declared_names(info_path) if os.path.isfile(info_path) else set()
    if os.path.isfile(info_path) and not declared:
        parse_dataset_info(info_path, None, findings)  # a broken registry: its syntax problems, located
    wanted = [n for n in dict.fromkeys(names) if n in declared]
    parsed = {s.name: s for s in parse_dataset_info(info_path, wanted, findings, media_dir=media_dir)} if wanted else {}
    specs, unknown = [], []
    for name in names:
        if name in declared:
            if name in parsed:
                specs.append(parsed[name])
            continue
        path = locate(name) if locate else name
        if os.path.exists(path):
            specs.append(DatasetSpec(path, formatting=formatting))
        else:
            unknown.append(name)
    return specs, unknown


def parse_dataset_info(
    info_path: str, names: list[str] | None, findings: list[Finding], *, media_dir: str | None = None
) -> list[DatasetSpec]:
    """The datasets a LLaMA-Factory dataset_info.json declares (all, or those named), with file paths resolved
    relative to it; problems in the file itself become findings located at their entry's line. ``media_dir``
    is where media paths are relative to (LLaMA-Factory's default: the dataset_info.json folder)."""
    if os.path.isdir(info_path):
        info_path = os.path.join(info_path, DATASET_INFO)
    text, problems = decode_text(read_small_file(info_path, "dataset_info.json"), info_path)
    findings.extend(problems)
    try:
        info = json.loads(text)
    except (ValueError, RecursionError):
        findings.extend(jsonsyntax.diagnose_json(text, info_path)[1])
        return []
    if not isinstance(info, dict):
        findings.append(
            Finding(
                "dataset-info-invalid",
                "dataset_info.json must be an object of dataset entries",
                file=info_path,
                line=1,
                column=1,
            )
        )
        return []
    base = os.path.dirname(info_path)
    specs = []
    for name in names or list(info):
        entry = info.get(name)
        if name not in info:
            raise UsageError(unknown_name(info_path, name, set(info)))
        spec = _EntryReader(info_path, base, name, _key_line(text, name), findings).spec(entry, media_dir or base)
        if spec is not None:
            specs.append(spec)
    return specs


class _EntryReader:
    """Turns one dataset_info entry into a DatasetSpec, reporting its problems at the entry's line."""

    def __init__(self, info_path: str, base: str, name: str, line: int | None, findings: list[Finding]):
        self.info_path, self.base, self.name, self.line, self.findings = info_path, base, name, line, findings

    def bad(
        self, code: str, message: str, hint: str | None = None, sub: str | None = None, severity: str = "error"
    ) -> None:
        self.findings.append(
            Finding(
                code,
                message,
                severity=severity,
                hint=hint,
                file=self.info_path,
                line=self.line,
                path=f"{self.name}{'.' + sub if sub else ''}",
            )
        )

    def spec(self, entry, media_dir: str) -> DatasetSpec | None:
        name = self.name
        if not isinstance(entry, dict):
            self.bad("dataset-info-invalid", f"entry '{name}' must be an object")
            return None
        try:
            checked = check(entry, DatasetEntry)
        except SchemaError as e:
            key, _, inner = e.path.partition(".")
            lead, hint = _EXPECTED.get(key, (key, None))
            self.bad(
                "dataset-info-invalid", f"{lead}: {inner + ': ' if inner else ''}{e.reason}", hint=hint, sub=e.path
            )
            return None
        source = self._source(entry)
        if source is None:
            return None
        load_from, location, key = source
        formatting = checked.formatting
        columns, tags = self._columns(entry, checked), self._tags(entry, checked)
        split = self._split(checked.split, load_from)
        if split is None:
            return None
        num_samples, ranking = checked.num_samples, checked.ranking
        kind = (
            "ranking"
            if ranking
            else "kto"
            if columns["kto_tag"]
            else "pretrain"
            if formatting == "alpaca" and not columns["response"]
            else "sft"
        )
        if kind == "pretrain" and not (columns["prompt"] or columns["query"]):
            self.bad(
                "dataset-info-invalid",
                '"columns" maps no text column: LLaMA-Factory sets every column left out of "columns" to None',
                sub="columns",
                hint='list them all, e.g. "columns": {"prompt": "instruction", "query": "input", "response": "output"}',
            )
            return None
        if formatting != "alpaca" and not columns["messages"]:
            self.bad(
                "dataset-info-invalid",
                '"columns" leaves out "messages": LLaMA-Factory sets every column '
                'left out of "columns" to None, and then finds no conversation',
                sub="columns",
                hint='add "messages": "conversations" (the key holding the list of turns)',
            )
            return None
        path = (
            location if load_from in ("hf_hub", "ms_hub", "om_hub", "cloud_file") else os.path.join(self.base, location)
        )
        return DatasetSpec(
            path,
            name=name,
            formatting=formatting,
            columns=columns,
            tags=tags,
            info_file=self.info_path,
            info_line=self.line,
            kind=kind,
            split=split,
            num_samples=num_samples,
            media_dir=media_dir,
            load_from=load_from,
            subset=checked.subset,
            folder=checked.folder,
            path_key=key,
        )

    def _source(self, entry: dict) -> tuple[str, str, str] | None:
        """(load_from, path or id, key) in LLaMA-Factory's order: hub URLs (ModelScope / OpenMind when their
        environment variable says so, or when there is no hf_hub_url), script_url, cloud_file_name, file_name."""
        urls = {load: entry[key] for key, load in HUB_KEYS if key in entry}
        if urls:
            use_ms = os.environ.get("USE_MODELSCOPE_HUB", "0").lower() in ("true", "y", "1")
            use_om = os.environ.get("USE_OPENMIND_HUB", "0").lower() in ("true", "y", "1")
            load = (
                "ms_hub"
                if "ms_hub" in urls and (use_ms or "hf_hub" not in urls)
                else "om_hub"
                if "om_hub" in urls and (use_om or "hf_hub" not in urls)
                else "hf_hub"
            )
            found = (load, urls[load], f"{load}_url")
        elif "script_url" in entry:
            found = ("script", entry["script_url"], "script_url")
        elif "cloud_file_name" in entry:
            found = ("cloud_file", entry["cloud_file_name"], "cloud_file_name")
        elif "file_name" in entry:
            found = ("file", entry["file_name"], "file_name")
        else:
            self.bad(
                "dataset-info-invalid",
                f"entry '{self.name}' has no file_name",
                hint='add "file_name": "your_data.json" (or a hf_hub_url)',
            )
            return None
        if not found[1]:  # its type is DatasetEntry's
            self.bad("dataset-info-invalid", f"{found[2]} must be a path or an id, not {found[1]!r}", sub=found[2])
            return None
        return found

    def _columns(self, entry: dict, checked: DatasetEntry) -> dict:
        """Every column LLaMA-Factory knows, from "columns" when the entry has it (unlisted ones None)."""
        if "columns" not in entry:
            return dict(DEFAULT_COLUMNS)
        for key in checked.columns:
            if key not in KNOWN_COLUMNS:
                self.bad(
                    "dataset-info-invalid",
                    f"unknown column key '{key}'",
                    sub=f"columns.{key}",
                    hint=f"known: {', '.join(sorted(KNOWN_COLUMNS))}",
                    severity="warning",
                )
        return {key: checked.columns.get(key) for key in DEFAULT_COLUMNS}

    def _tags(self, entry: dict, checked: DatasetEntry) -> dict:
        """Every sharegpt tag, from "tags" when the entry has it (unlisted ones None, as in LLaMA-Factory; the
        role/content/user/assistant tags then keep their defaults after an error says so)."""
        if "tags" not in entry:
            return dict(SHAREGPT_TAGS)
        given = checked.tags
        for key in given:
            if key not in KNOWN_TAGS:
                self.bad(
                    "dataset-info-invalid",
                    f"unknown tag key '{key}'",
                    sub=f"tags.{key}",
                    hint=f"known: {', '.join(sorted(KNOWN_TAGS))}",
                    severity="warning",
                )
        missing = [key for key in REQUIRED_TAGS if not given.get(key)]
        if missing and checked.formatting != "alpaca":
            listed = ", ".join(f'"{k}": "{SHAREGPT_TAGS[k]}"' for k in missing)
            self.bad(
                "dataset-tags-incomplete",
                f'"tags" leaves out {", ".join(missing)}: LLaMA-Factory sets '
                'every tag left out of "tags" to None (it does not keep the defaults), so it rejects every '
                "conversation",
                sub="tags",
                hint=f"list them too, e.g. {listed} (with your data's values)",
            )
        return {key: given.get(key) for key in SHAREGPT_TAGS}

    def _split(self, split: str, load_from: str) -> str | None:
        try:
            parse_split(split)
            if load_from == "file":
                split_windows(split, 0)  # a local file has only the train split
        except ValueError as err:
            self.bad(
                "dataset-split-invalid",
                str(err),
                sub="split",
                hint='use "train", or a slice of it such as "train[:1000]" or "train[:10%]"',
            )
            return None
        return split


def _key_line(text: str, key: str) -> int | None:
    """The line of an entry's key: at the start of a line (an indented file), else its first occurrence."""
    quoted = '"' + re.escape(key) + r'"\s*:'
    m = re.search(r"^\s*" + quoted, text, flags=re.M) or re.search(r"[{,]\s*" + quoted, text)
    return text.count("\n", 0, m.start()) + 1 if m else None
