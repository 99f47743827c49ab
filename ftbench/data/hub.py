"""Datasets a dataset_info.json entry does not hold as local files: `hf_hub_url` (and `ms_hub_url`,
`om_hub_url`), `script_url`, `cloud_file_name`. The hub and script ones are loaded the way LLaMA-Factory loads
them, with `datasets.load_dataset(path, name=subset, data_dir=folder, split=split)`, when the hub is reachable
or the dataset is in the local cache, and then checked row by row like any file; otherwise they get a note
("not checked: ...") that leaves the exit code alone. `datasets` is imported only here, and only then.
"""

from __future__ import annotations

import os
import socket
from typing import Iterator
from urllib.parse import urlparse

from ftbench.api.findings import Finding
from ftbench.data.columnar import BATCH_ROWS, table_rows
from ftbench.data.record import RawRecord
from ftbench.data.sources import where

NOT_AVAILABLE = "not checked: hub dataset not available offline"
_TRUE = ("1", "true", "yes", "on")
_loaded: dict[tuple, object] = {}  # (load_from, path, subset, folder, split) -> datasets.Dataset, per process


def display_name(spec) -> str:
    """How findings name a hub or script dataset: its id (or path), with the subset and split LLaMA-Factory
    loads."""
    name = os.path.relpath(spec.path) if spec.load_from == "script" and not os.path.isabs(spec.path) else spec.path
    extra = [spec.subset] if spec.subset else []
    return f"{name} ({', '.join(extra + [spec.split])})"


def available(spec, findings: list[Finding]) -> bool:
    """True if the dataset can be read (loading it now); otherwise a note, or an error for a local script
    folder that is missing or a Python loading script, goes to ``findings``."""
    note = lambda message, hint=None: findings.append(
        Finding("remote-dataset-skipped", message, "note", hint, **where(spec))
    )
    if spec.load_from == "cloud_file":
        note(
            f"not checked: {spec.path} is a cloud file (s3:// or gs://), which ftbench does not read",
            "download it and register it with file_name to check it",
        )
        return False
    if spec.load_from in ("ms_hub", "om_hub"):
        hub = "ModelScope" if spec.load_from == "ms_hub" else "OpenMind"
        note(
            f"not checked: {hub} hub datasets are read only by LLaMA-Factory (through the {hub} SDK)",
            "download it and register it with file_name to check it",
        )
        return False
    if spec.load_from == "script":
        if not os.path.exists(spec.path):
            findings.append(
                Finding(
                    "dataset-file-missing",
                    f"script_url {spec.path} does not exist",
                    hint="script_url is relative to the folder of dataset_info.json",
                    **where(spec),
                )
            )
            return False
        if os.path.isfile(spec.path) or any(f.endswith(".py") for f in os.listdir(spec.path)):
            findings.append(
                Finding(
                    "unsupported-file-type",
                    f"{spec.path} is a Python loading script; datasets 4, "
                    "which LLaMA-Factory 0.9.5 uses, no longer runs them ('Dataset scripts are no "
                    "longer supported')",
                    hint="save the data as Parquet or JSON Lines and register it with file_name",
                    **where(spec),
                )
            )
            return False
    local = os.path.exists(spec.path)
    offline = not local and _go_offline_if_unreachable()
    try:
        _load(spec)
    except Exception as err:  # datasets raises many kinds: connection, missing config, bad split, bad files
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        if offline or _is_connection_error(err):
            note(
                NOT_AVAILABLE + f" ({first})",
                "connect to the hub once (it is then cached), or download it and register it with file_name",
            )
        else:
            findings.append(
                Finding(
                    "dataset-load-failed",
                    f"`datasets` cannot load {spec.path}: {first}",
                    hint="check hf_hub_url/script_url, subset, folder and split in the entry",
                    **where(spec),
                )
            )
        return False
    return True


def peek(spec, limit: int) -> list[RawRecord]:
    """The first ``limit`` rows of a loaded hub dataset."""
    out: list[RawRecord] = []
    for record in read_hub_records(spec, display_name(spec), []):
        out.append(record)
        if len(out) == limit:
            break
    return out


def read_hub_records(spec, name: str, findings: list[Finding], *, counts: dict | None = None) -> Iterator[RawRecord]:
    """Every row of a hub or script dataset (as loaded for its split) as a record, in batches."""
    dataset = _load(spec)
    first = 0
    for batch in dataset.with_format("arrow").iter(batch_size=BATCH_ROWS):
        yield from table_rows(batch, first)
        first += batch.num_rows
    if counts is not None:
        counts["lines"], counts["records"] = 0, first


def _load(spec):
    key = (spec.load_from, spec.path, spec.subset, spec.folder, spec.split)
    if key not in _loaded:
        import datasets

        datasets.logging.set_verbosity_error()
        datasets.disable_progress_bars()
        _loaded[key] = datasets.load_dataset(spec.path, name=spec.subset, data_dir=spec.folder, split=spec.split)
    return _loaded[key]


def _go_offline_if_unreachable() -> bool:
    """True if the hub cannot be used: offline mode is set, or the hub's host does not answer within a few
    seconds (then offline mode is switched on, so `datasets` reads its cache instead of retrying for minutes)."""
    if any(os.environ.get(k, "").lower() in _TRUE for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=3).close()
        return False
    except OSError:
        pass
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    import sys

    for module, attr in (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE")):
        if module in sys.modules:  # already imported: the environment variable is read at import time
            setattr(sys.modules[module], attr, True)
    return True


def _is_connection_error(err: Exception) -> bool:
    text = f"{type(err).__name__} {err}"
    return any(
        word in text
        for word in ("ConnectionError", "Couldn't reach", "offline", "LocalEntryNotFound", "OfflineModeIsEnabled")
    )
