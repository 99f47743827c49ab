"""Files: writing so that nothing a user made is lost (atomic replace for whole files), and content hashes
that tell whether an input changed."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and an atomic rename: a crash
    leaves either the old file or the new one, never half of it."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write_with(path, write)


def strict_json(value: Any, where: str = "$") -> tuple[Any, list[str]]:
    """``value`` with every non-finite float (NaN, ±inf) replaced by None, and the JSON paths of those replaced
    (`$.runs[2].value`): JSON has no NaN, and a reader must be able to say which figures were not numbers."""
    replaced: list[str] = []

    def clean(v: Any, at: str) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            replaced.append(at)
            return None
        if isinstance(v, dict):
            return {k: clean(x, f"{at}.{k}") for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x, f"{at}[{i}]") for i, x in enumerate(v)]
        return v

    return clean(value, where), replaced


def json_text(value: Any) -> tuple[str, list[str]]:
    """``value`` as ftbench writes every JSON file (UTF-8 text, indent 1, strict: non-finite floats as null, other
    objects as their str()), and the paths of the non-finite floats written as null."""
    cleaned, replaced = strict_json(value)
    return json.dumps(cleaned, ensure_ascii=False, indent=1, allow_nan=False, default=str) + "\n", replaced


def write_json(path: str, value: Any) -> list[str]:
    """Write ``value`` to ``path`` atomically as `json_text` formats it; returns the JSON paths of the non-finite
    floats written as null (empty when every number was finite)."""
    text, replaced = json_text(value)
    atomic_write_text(path, text)
    return replaced


def write_jsonl(path: str, rows) -> list[str]:
    """Write ``rows`` to ``path`` atomically, one strict JSON object a line (non-finite floats as null); returns
    the paths (`[row].key`) of the values replaced."""
    lines, replaced = [], []
    for i, row in enumerate(rows):
        cleaned, found = strict_json(row, f"[{i}]")
        replaced += found
        lines.append(json.dumps(cleaned, ensure_ascii=False, allow_nan=False, default=str) + "\n")
    atomic_write_text(path, "".join(lines))
    return replaced


def atomic_write_with(path: str, write) -> None:
    """Call ``write(tmp_path)`` to write a temporary file next to ``path``, then rename it over ``path``
    atomically (for files another library writes, such as Parquet)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ftbench-", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


DATA_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".parquet", ".arrow", ".txt")  # what a data folder holds


def sha256_of_texts(texts: Iterable[str]) -> str:
    """sha256 of texts in order, each ended by a NUL (so "ab","c" and "a","bc" differ); lone surrogates kept."""
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def sha256_of_path(path: str) -> str:
    """sha256 of a file's bytes, or of a folder's data files (names and bytes, sorted)."""
    h = hashlib.sha256()
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if os.path.isfile(full) and name.lower().endswith(DATA_SUFFIXES):
                h.update(name.encode("utf-8") + b"\0")
                _hash_file(full, h)
        return h.hexdigest()
    _hash_file(path, h)
    return h.hexdigest()


def _hash_file(path: str, h) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)


def build_folder_atomically(
    final_dir: str | os.PathLike,
    build: Callable[[Path], None],
    complete: Callable[[Path], bool],
    *,
    replace: bool = False,
) -> str:
    """Run ``build(tmp)`` into a temporary sibling folder and rename it to ``final_dir``: readers see no folder
    or a whole one, never half of one (a killed build leaves only a hidden temporary folder).

    If another process finished the same folder first (``complete(final)``), its build is kept and ours is
    discarded. With ``replace``, an existing folder (e.g. a damaged one) is swapped out for the new build.
    """
    final = Path(final_dir).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        build(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a cache may be shared, and a model is not a secret
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        if replace and final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, old / "previous")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, final)  # atomic; fails if a complete build already sits there
        except OSError:
            if not complete(final):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


def cache_root() -> Path:
    """Where ftbench keeps what it builds once (models): `$FTBENCH_CACHE`, else `~/.cache/ftbench`."""
    env = os.environ.get("FTBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ftbench"


# Resource limits on what a user hands us (docs/validate.md "Limits"); FTBENCH_MAX_JSON_MB overrides the first.
MAX_JSON_DOCUMENT_BYTES = int(float(os.environ.get("FTBENCH_MAX_JSON_MB", "1024")) * 2**20)  # a .json read whole
MAX_SMALL_FILE_BYTES = 64 * 2**20  # dataset_info.json, YAML configs, metrics.json, task YAMLs: read whole


def not_a_regular_file(path: str) -> str | None:
    """Why ``path`` cannot be read as a data file without reading it (FIFOs and devices never end, or never
    start), or None. Decided by `os.stat` alone, so /dev/zero or a named pipe is refused before any read."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as e:
        return e.strerror or str(e)
    if stat.S_ISREG(mode):
        return None
    kind = (
        "a directory"
        if stat.S_ISDIR(mode)
        else "a named pipe (FIFO)"
        if stat.S_ISFIFO(mode)
        else "a character device"
        if stat.S_ISCHR(mode)
        else "a block device"
        if stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    return f"is {kind}, not a regular file"
