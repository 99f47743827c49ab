"""Property-based fuzzing of `ftbench validate` (issue 12): mutations of the bundled valid files and of
dataset_info.json never reach an internal error (exit 3), a hang or a finding without a location.

Every example runs the real CLI in-process. CI runs the seeded "ci" profile (derandomized: the same examples
every run); `make fuzz` runs the "fuzz" profile (FTBENCH_FUZZ_EXAMPLES examples per test, random seeds).
"""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import REPO, run_cli

settings.register_profile("ci", max_examples=40, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("fuzz", max_examples=int(os.environ.get("FTBENCH_FUZZ_EXAMPLES", "1000")), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("fuzz" if os.environ.get("FTBENCH_FUZZ") else "ci")

SECONDS_PER_RUN = 20  # a small file is checked in well under a second; this catches hangs and blow-ups
SOURCES = ["alpaca_demo.json", "sharegpt_demo.json", "openai_demo.jsonl", "identity.json"]
_TEXT = {name: open(os.path.join(REPO, "datasets", name), "rb").read()[:6000] for name in SOURCES}
PUNCTUATION = b'[]{}",:\'\\'
FULLWIDTH = ["，", "：", "“", "”", "｛", "｝", "［", "］"]
ODD_VALUES = [None, True, 0, -1, 1.5, 10**30, "", "x", [], ["a"], {}, {"a": None}, [[["deep"]]], "\ud800"]


def _cut(data: bytes) -> bytes:
    """The first records of a file, cut at a record boundary, so each example stays small."""
    if data.lstrip().startswith(b"["):
        end = data.find(b"\n  },", 1000)
        return data[:end + 4] + b"\n]\n" if end > 0 else data
    return b"\n".join(data.split(b"\n")[:8]) + b"\n"


BASE = {name: _cut(data) for name, data in _TEXT.items()}


def _assert_well_behaved(args: list[str]) -> dict | None:
    t = time.perf_counter()
    result = run_cli("validate", "--json", "--no-near-dup", *args)
    seconds = time.perf_counter() - t
    assert seconds < SECONDS_PER_RUN, f"validate took {seconds:.1f} s"
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output[-2000:])
    if result.exit_code == 2:
        assert "internal error" not in result.output and "Traceback" not in result.output, result.output
        return None
    report = json.loads(result.stdout)
    for finding in report["errors"] + report["warnings"] + report.get("notes", []):
        assert finding["file"], finding
        assert finding["line"] is not None or finding["record"] is not None or finding["path"], finding
    return report


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(SOURCES))
    data = bytearray(BASE[name])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "fullwidth", "nest"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = bytes([draw(st.sampled_from(PUNCTUATION))])
        elif kind == "delete":
            idx = [i for i, b in enumerate(data) if b in PUNCTUATION]
            if idx:
                del data[draw(st.sampled_from(idx))]
        elif kind == "fullwidth":
            data[pos:pos] = draw(st.sampled_from(FULLWIDTH)).encode()
        else:
            depth = draw(st.integers(10, 1200))
            data[pos:pos] = b'{"a":' * depth
    return name, bytes(data)


@given(mutated())
def test_mutated_files_are_findings_never_crashes(tmp_path_factory, case):
    name, data = case
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    _assert_well_behaved([str(path)])


@st.composite
def wrong_types(draw) -> tuple[str, str]:
    """A record of a valid file with one field (or turn field) set to a value of another type."""
    name = draw(st.sampled_from(["alpaca_demo.json", "sharegpt_demo.json", "openai_demo.jsonl"]))
    text = BASE[name].decode()
    records = json.loads(text) if name.endswith(".json") else [json.loads(x) for x in text.splitlines() if x]
    record = records[draw(st.integers(0, len(records) - 1))]
    target = record
    for key in ("conversations", "messages"):
        if key in record and draw(st.booleans()):
            target = record[key][draw(st.integers(0, len(record[key]) - 1))]
    key = draw(st.sampled_from(sorted(target)))
    target[key] = draw(st.sampled_from(ODD_VALUES))
    if name.endswith(".json"):
        return name, json.dumps(records, ensure_ascii=False, indent=1)
    return name, "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"


@given(wrong_types())
def test_wrong_types_for_every_field(tmp_path_factory, case):
    name, text = case
    path = tmp_path_factory.mktemp("types") / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    report = _assert_well_behaved([str(path)])
    assert report is not None


ENTRY_KEYS = ["file_name", "formatting", "columns", "tags", "ranking", "split", "num_samples", "subset", "folder",
              "hf_hub_url", "script_url", "cloud_file_name", "media_dir"]


@given(st.lists(st.tuples(st.sampled_from(ENTRY_KEYS), st.sampled_from(ODD_VALUES + [
    "alpaca_demo.json", "sharegpt", {"prompt": "instruction"}, {"prompt": 5}, {"role_tag": ["from"]},
    "train[:2]", "train[x]", {"user_tag": {"a": 1}}])), max_size=4), st.sampled_from([None, "odd"]))
def test_odd_dataset_info_values(tmp_path_factory, members, odd_entry):
    folder = tmp_path_factory.mktemp("info")
    (folder / "alpaca_demo.json").write_bytes(BASE["alpaca_demo.json"])
    entry = {"file_name": "alpaca_demo.json"}
    entry.update(dict(members))
    info = {"d": entry} if odd_entry is None else {"d": entry, "x": None, "y": [entry]}
    (folder / "dataset_info.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8",
                                              errors="surrogatepass")
    _assert_well_behaved(["--dataset-info", str(folder / "dataset_info.json")])


@pytest.mark.parametrize("depth", [400, 600, 1100, 5000])
def test_deep_nesting_in_json_and_jsonl(tmp_path, depth):
    for name, text in (("deep.json", '[{"instruction": "q", "output": ' + "[" * depth + "]" * depth + "}]"),
                       ("deep.jsonl", '{"instruction": "q", "output": ' + '{"a":' * depth + "1" + "}" * depth + "}"),
                       ("open.json", '{"a":' * depth)):
        (tmp_path / name).write_text(text)
        _assert_well_behaved([str(tmp_path / name)])
