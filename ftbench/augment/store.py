"""The files of an `augment llm` run, all append-only so a killed run restarted with the same command resumes:

* OUT: one accepted record a line, each with provenance under "_ftbench":
  {"source": 3, "variant": 1, "model": "...", "attempt": 2} (an original copied by --include-original has
  {"source": 3, "original": true}). On restart the (source, variant) pairs present are skipped.
* OUT.rejected.jsonl: everything set aside, with the reason: invalid or duplicate records, replies without
  usable JSON, failed requests, records that did not get all their variants.
* OUT.meta.json: the data file's sha256 and format; a run over other data never extends OUT.

A batch of lines is written with one write() then flushed and fsynced; a kill mid-write leaves at most a
half-written last line, which the next run cuts off (its records are generated again).
"""

from __future__ import annotations

import json
import os
from typing import Iterable

import orjson

from ftbench.api.errors import UsageError
from ftbench.augment.gate import PROVENANCE_KEY
from ftbench.io import atomic_write_text, json_text

META_KIND = "ftbench-augment"
RESUME_KEYS = ("data_sha256", "format")


def rejected_path(out: str) -> str:
    return out + ".rejected.jsonl"


def meta_path(out: str) -> str:
    return out + ".meta.json"


class JsonlLog:
    """An append-only JSON Lines file: complete lines are read back, a half-written last line is cut off."""

    def __init__(self, path: str, redact):
        self.path, self.redact = path, redact
        self.repaired_bytes = 0
        self.fh = None

    def open(self, *, fresh: bool) -> list[dict]:
        """Open for appending (emptied if ``fresh``); returns the rows already there."""
        rows: list[dict] = []
        if fresh or not os.path.exists(self.path):
            with open(self.path, "wb"):
                pass
        else:
            rows = self._read_and_repair()
        self.fh = open(self.path, "ab")
        return rows

    def _read_and_repair(self) -> list[dict]:
        with open(self.path, "rb") as fh:
            data = fh.read()
        complete = data.rfind(b"\n") + 1
        rows = []
        for lineno, line in enumerate(data[:complete].split(b"\n")[:-1], start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                row = None
            if not isinstance(row, dict) or not isinstance(row.get(PROVENANCE_KEY), dict):
                raise UsageError(
                    f"{self.path}:{lineno}: not a line written by ftbench augment (no "
                    f'"{PROVENANCE_KEY}" provenance); use another -o, or --overwrite to start again'
                )
            rows.append(row)
        if complete < len(data):  # killed mid-write: drop the partial line; its record is generated again
            with open(self.path, "r+b") as fh:
                fh.truncate(complete)
                fh.flush()
                os.fsync(fh.fileno())
            self.repaired_bytes = len(data) - complete
        return rows

    def append(self, rows: Iterable[dict]) -> None:
        """Write the rows as one batch, durably (flush + fsync)."""
        text = "".join(self.redact(json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)
        if not text:
            return
        self.fh.write(text.encode("utf-8"))
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


class AugmentOutput:
    """OUT, its rejected side file and its meta sidecar; knows what an earlier run already made."""

    def __init__(self, out: str, meta: dict, redact, *, overwrite: bool = False):
        if os.path.isdir(out):
            raise UsageError(f"-o {out}: is a folder; give a .jsonl file path")
        os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
        self.out, self.meta = out, meta
        self.records = JsonlLog(out, redact)
        self.rejected = JsonlLog(rejected_path(out), redact)
        fresh = overwrite or not os.path.exists(out) or os.path.getsize(out) == 0
        if not fresh:
            self._check_meta()
        rows = self.records.open(fresh=fresh)
        self.previous_rejections = len(self.rejected.open(fresh=fresh))
        atomic_write_text(meta_path(out), redact(json_text(meta)[0]))
        self.variants: dict[int, set[int]] = {}  # source -> variant numbers already in OUT
        self.originals: set[int] = set()
        self.existing: list[dict] = rows
        for lineno, row in enumerate(rows, start=1):
            self._remember(row, lineno)

    def _check_meta(self) -> None:
        path = meta_path(self.out)
        try:
            with open(path, encoding="utf-8") as fh:
                old = json.load(fh)
        except (OSError, ValueError):
            raise UsageError(
                f"{self.out} exists but {os.path.basename(path)} is missing or unreadable, so it cannot "
                "be resumed safely; use another -o, or --overwrite to start again"
            ) from None
        if not isinstance(old, dict) or old.get("kind") != META_KIND:
            raise UsageError(f"{path}: not written by ftbench augment; use another -o, or --overwrite")
        for key in RESUME_KEYS:
            if old.get(key) != self.meta.get(key):
                what = "different data (DATA's contents changed)" if key == "data_sha256" else "another format"
                raise UsageError(
                    f"{self.out} was made from {what}, so its source indices do not match; use another "
                    "-o, or --overwrite to start again"
                )

    def _remember(self, row: dict, lineno: int) -> None:
        prov = row[PROVENANCE_KEY]
        source = prov.get("source")
        if not isinstance(source, int):
            raise UsageError(f"{self.out}:{lineno}: provenance without a source index; use --overwrite to start again")
        if prov.get("original"):
            self.originals.add(source)
            return
        variant = prov.get("variant")
        done = self.variants.setdefault(source, set())
        if not isinstance(variant, int) or variant in done:
            raise UsageError(
                f"{self.out}:{lineno}: variant {variant!r} of source {source} is missing or repeated; "
                "the file was edited (use --overwrite to start again)"
            )
        done.add(variant)

    def close(self) -> None:
        self.records.close()
        self.rejected.close()


def strip_provenance(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != PROVENANCE_KEY}
