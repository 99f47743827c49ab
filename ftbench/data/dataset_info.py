"""LLaMA-Factory's `dataset_info.json`: the registry that names datasets and says how to read each one
(file_name, formatting, columns, tags, ranking, hub entries). Problems in the registry itself become findings
located at their entry's line; the datasets it declares become `DatasetSpec`s for the loader.
"""

from __future__ import annotations

import json
import os
import re

from ftbench.api.errors import UsageError
from ftbench.api.findings import Finding
from ftbench.data import jsonsyntax
from ftbench.data.encoding import decode_text
from ftbench.data.formats import FORMATS, SHAREGPT_TAGS
from ftbench.data.loader import DatasetSpec

DATASET_INFO = "dataset_info.json"
KNOWN_COLUMNS = {"prompt", "query", "response", "history", "messages", "system", "tools", "images", "videos",
                 "audios", "chosen", "rejected", "kto_tag"}
KNOWN_TAGS = set(SHAREGPT_TAGS)


def declared_names(info_path: str) -> set[str]:
    """The dataset names a dataset_info.json declares (none if it is missing or not a JSON object; its syntax
    errors are reported, located, by `parse_dataset_info`)."""
    try:
        with open(info_path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError):
        return set()
    return set(info) if isinstance(info, dict) else set()


def parse_dataset_info(info_path: str, names: list[str] | None, findings: list[Finding]) -> list[DatasetSpec]:
    """The datasets a LLaMA-Factory dataset_info.json declares (all, or those named), with file paths resolved
    relative to it; problems in the file itself become findings located at their entry's line."""
    if os.path.isdir(info_path):
        info_path = os.path.join(info_path, DATASET_INFO)
    if not os.path.isfile(info_path):
        raise UsageError(f"{info_path}: no such file")
    with open(info_path, "rb") as fh:
        text, problems = decode_text(fh.read(), info_path)
    findings.extend(problems)
    try:
        info = json.loads(text)
    except ValueError:
        findings.extend(jsonsyntax.diagnose_json(text, info_path)[1])
        return []
    if not isinstance(info, dict):
        findings.append(Finding("dataset-info-invalid", "dataset_info.json must be an object of dataset entries",
                                file=info_path, line=1, column=1))
        return []
    base = os.path.dirname(info_path)
    wanted = names or list(info)
    specs = []
    for name in wanted:
        line = _key_line(text, name)
        entry = info.get(name)
        if entry is None:
            close = [n for n in info if n.lower() == name.lower()]
            raise UsageError(f"{info_path}: no dataset named '{name}'"
                             + (f" (did you mean '{close[0]}'?)" if close else f"; it has: {', '.join(sorted(info))}"))
        spec = _entry_spec(info_path, base, name, entry, line, findings)
        if spec is not None:
            specs.append(spec)
    return specs


def _entry_spec(info_path, base, name, entry, line, findings) -> DatasetSpec | None:
    def bad(code, message, hint=None, sub=None, severity="error"):
        findings.append(Finding(code, message, severity=severity, hint=hint, file=info_path, line=line,
                                path=f"{name}{'.' + sub if sub else ''}"))

    if not isinstance(entry, dict):
        bad("dataset-info-invalid", f"entry '{name}' must be an object")
        return None
    if "file_name" not in entry:
        if any(k in entry for k in ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")):
            bad("remote-dataset-skipped", f"dataset '{name}' is on a hub; ftbench checks local files only",
                hint="download it and register it with file_name to check it", severity="warning")
        else:
            bad("dataset-info-invalid", f"entry '{name}' has no file_name", hint='add "file_name": "your_data.json"')
        return None
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATS:
        bad("dataset-info-invalid", f"unknown formatting {formatting!r}", hint="use \"alpaca\" or \"sharegpt\"",
            sub="formatting")
        return None
    columns, tags = entry.get("columns", {}) or {}, entry.get("tags", {}) or {}
    for key in columns:
        if key not in KNOWN_COLUMNS:
            bad("dataset-info-invalid", f"unknown column key '{key}'", hint=f"known: {', '.join(sorted(KNOWN_COLUMNS))}",
                sub=f"columns.{key}", severity="warning")
    for key in tags:
        if key not in KNOWN_TAGS:
            bad("dataset-info-invalid", f"unknown tag key '{key}'", hint=f"known: {', '.join(sorted(KNOWN_TAGS))}",
                sub=f"tags.{key}", severity="warning")
    if entry.get("ranking"):
        bad("unsupported-dataset", f"dataset '{name}' is preference (ranking) data; ftbench checks SFT data",
            severity="warning")
        return None
    return DatasetSpec(os.path.join(base, entry["file_name"]), name=name, formatting=formatting,
                       columns={k: v for k, v in columns.items() if k in KNOWN_COLUMNS}, tags=tags,
                       info_file=info_path, info_line=line)


def _key_line(text: str, key: str) -> int | None:
    m = re.search(r'^\s*"' + re.escape(key) + r'"\s*:', text, flags=re.M)
    return text.count("\n", 0, m.start()) + 1 if m else None
