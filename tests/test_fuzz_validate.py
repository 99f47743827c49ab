"""Property-based fuzzing of `ftbench validate` (issue 12): mutations of the bundled valid files and of
dataset_info.json never reach an internal error (exit 3), a hang or a finding without a location. And of the
HTTP reply surface (issue 22): whatever status, headers and body a server on 127.0.0.1 answers,
`ftbench predict --engine openai` ends with exit 0, 1 or 2, at most one line, and no run of the key's characters
in its output or its files.

Every example runs the real CLI in-process. CI runs the seeded "ci" profile (derandomized: the same examples
every run); `make fuzz` runs the "fuzz" profile (FTBENCH_FUZZ_EXAMPLES examples per test, random seeds).
"""

from __future__ import annotations

import json
import os
import time

import pytest
from helpers import REPO, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FTBENCH_FUZZ_EXAMPLES", "1000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("fuzz" if os.environ.get("FTBENCH_FUZZ") else "ci")

SECONDS_PER_RUN = 20  # a small file is checked in well under a second; this catches hangs and blow-ups
SOURCES = ["alpaca_demo.json", "sharegpt_demo.json", "openai_demo.jsonl", "identity.json"]
_TEXT = {name: open(os.path.join(REPO, "datasets", name), "rb").read()[:6000] for name in SOURCES}
PUNCTUATION = b"[]{}\",:'\\"
FULLWIDTH = ["，", "：", "“", "”", "｛", "｝", "［", "］"]
ODD_VALUES = [None, True, 0, -1, 1.5, 10**30, "", "x", [], ["a"], {}, {"a": None}, [[["deep"]]], "\ud800"]


def _cut(data: bytes) -> bytes:
    """The first records of a file, cut at a record boundary, so each example stays small."""
    if data.lstrip().startswith(b"["):
        end = data.find(b"\n  },", 1000)
        return data[: end + 4] + b"\n]\n" if end > 0 else data
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


ENTRY_KEYS = [
    "file_name",
    "formatting",
    "columns",
    "tags",
    "ranking",
    "split",
    "num_samples",
    "subset",
    "folder",
    "hf_hub_url",
    "script_url",
    "cloud_file_name",
    "media_dir",
]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(ENTRY_KEYS),
            st.sampled_from(
                ODD_VALUES
                + [
                    "alpaca_demo.json",
                    "sharegpt",
                    {"prompt": "instruction"},
                    {"prompt": 5},
                    {"role_tag": ["from"]},
                    "train[:2]",
                    "train[x]",
                    {"user_tag": {"a": 1}},
                ]
            ),
        ),
        max_size=4,
    ),
    st.sampled_from([None, "odd"]),
)
def test_odd_dataset_info_values(tmp_path_factory, members, odd_entry):
    folder = tmp_path_factory.mktemp("info")
    (folder / "alpaca_demo.json").write_bytes(BASE["alpaca_demo.json"])
    entry = {"file_name": "alpaca_demo.json"}
    entry.update(dict(members))
    info = {"d": entry} if odd_entry is None else {"d": entry, "x": None, "y": [entry]}
    (folder / "dataset_info.json").write_text(
        json.dumps(info, ensure_ascii=False), encoding="utf-8", errors="surrogatepass"
    )
    _assert_well_behaved(["--dataset-info", str(folder / "dataset_info.json")])


@pytest.mark.parametrize("depth", [400, 600, 1100, 5000])
def test_deep_nesting_in_json_and_jsonl(tmp_path, depth):
    for name, text in (
        ("deep.json", '[{"instruction": "q", "output": ' + "[" * depth + "]" * depth + "}]"),
        ("deep.jsonl", '{"instruction": "q", "output": ' + '{"a":' * depth + "1" + "}" * depth + "}"),
        ("open.json", '{"a":' * depth),
    ):
        (tmp_path / name).write_text(text)
        _assert_well_behaved([str(tmp_path / name)])


# -- the HTTP reply surface: whatever a server answers, `ftbench predict --engine openai` ends well -------------
HTTP_KEY = "sk-fz" + "Q4v8Jw2Xk6Rp9Tm3Hs7Gd"  # distinctive: a 6-character run of it is never a coincidence
STATUSES = [200, 200, 200, 201, 204, 301, 302, 307, 308, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503]
_header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def http_replies(draw) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one reply; "{KEY}" in a body or header is replaced by the key the request
    carried (a server echoing it back)."""
    status = draw(st.sampled_from(STATUSES) | st.integers(100, 599))
    headers = draw(
        st.dictionaries(
            st.sampled_from(
                ["Retry-After", "Location", "Content-Type", "Content-Length", "Transfer-Encoding", "X-Echo"]
            ),
            _header_text
            | st.sampled_from(
                [
                    "999999",
                    "-1",
                    "1e400",
                    "0",
                    "chunked",
                    "http://127.0.0.1:9/v1/completions",
                    "/v1/x",
                    "{KEY}",
                    "Wed, 21 Oct 2099 07:28:00 GMT",
                ]
            ),
            max_size=3,
        )
    )
    text = draw(JSON_VALUES | st.text(max_size=60) | st.sampled_from(["{KEY}", "\ud800", "\x1b]0;t\x07\x00"]))
    body = draw(st.sampled_from(["completion", "error", "raw"]))
    if body == "completion":
        data = json.dumps(
            {"choices": [{"text": text, "finish_reason": draw(JSON_VALUES)}], "usage": draw(JSON_VALUES)}
        ).encode()
    elif body == "error":
        data = json.dumps({"error": {"message": text if isinstance(text, str) else json.dumps(text)}}).encode()
    else:
        data = draw(st.binary(max_size=200)) + (b"{KEY}" if draw(st.booleans()) else b"")
    return status, headers, data


@pytest.fixture(scope="module")
def reply_server(tiny_model):
    from hostile import HostileServer

    from ftbench.inference.models import load_tokenizer

    load_tokenizer(tiny_model)  # transformers imported once, so that SECONDS_PER_RUN times the request alone
    state = {}

    def behave(req, conn):
        status, headers, body = state["reply"]
        key = req.headers.get("authorization", "")[len("Bearer ") :]
        head = {"Content-Length": str(len(body)), "Connection": "close", **headers}
        lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in head.items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body
        server.send(conn, raw.replace(b"{KEY}", key.encode()))

    server = HostileServer(behave)
    yield server, state
    server.close()


@given(http_replies())
def test_any_http_reply_ends_in_one_line_without_the_key(tiny_model, reply_server, tmp_path_factory, reply):
    server, state = reply_server
    state["reply"] = reply
    folder = tmp_path_factory.mktemp("reply")
    data = folder / "d.jsonl"
    data.write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n")
    os.environ["FUZZ_KEY"] = HTTP_KEY
    try:
        t = time.perf_counter()
        result = run_cli(
            "predict",
            "--model",
            "tiny",
            "--data",
            str(data),
            "-o",
            str(folder / "o.jsonl"),
            "--engine",
            "openai",
            "--base-url",
            server.url,
            "--api-key-env",
            "FUZZ_KEY",
            "--max-retries",
            "0",
            "--request-timeout",
            "3",
            "--max-new-tokens",
            "8",
            "-q",
        )
        seconds = time.perf_counter() - t
    finally:
        os.environ.pop("FUZZ_KEY", None)
    assert seconds < SECONDS_PER_RUN, f"predict took {seconds:.1f} s"
    assert result.exit_code in (0, 1, 2), (reply, result.output[-2000:])
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) <= 1 and (result.exit_code == 0 or len(lines) == 1), (reply, result.output)
    written = "".join(p.read_text(errors="replace") for p in folder.iterdir() if p.is_file())
    runs = [HTTP_KEY[i : i + 6] for i in range(len(HTTP_KEY) - 5)]
    assert not [r for r in runs if r in result.output or r in written], (reply, result.output)
    assert not set("\x1b\x00\x07") & set(result.output), (reply, result.output)


# --- issue 22: the CLI-number surface: every numeric option and YAML key, any number -> exit 0/1/2, never 3 -------

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.sampled_from(["inf", "-inf", "nan", "1e308", "1e39", "-0", "1e-320", "9" * 400, "0x10", "1_000", ""]),
)


def _one_line_failure(result) -> None:
    """Exit 0, 1 or 2; a failure is one `error:` line and no traceback."""
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output[-2000:]
    if result.exit_code:
        assert len([line for line in result.output.splitlines() if "error:" in line]) == 1, result.output


# (command, option, the arguments that make a valid value stop early, before any model runs)
_MISSING_MODEL = ["--model", "/nonexistent/model", "--data", "datasets/alpaca_demo.json", "-o", "/nonexistent/o"]
OPTIONS = [
    *[
        ("predict", o, _MISSING_MODEL)
        for o in (
            "--batch-size",
            "--max-new-tokens",
            "--limit",
            "--cutoff-len",
            "--max-prompt-tokens",
            "--temperature",
            "--top-p",
            "--top-k",
            "--seed",
            "--threads",
        )
    ],
    *[
        ("predict", o, ["--engine", "openai", "--base-url", "http://127.0.0.1:9/v1", *_MISSING_MODEL])
        for o in ("--request-timeout", "--concurrency", "--max-retries")
    ],
    *[
        ("sweep", o, ["--devices", "not-a-gpu"])
        for o in ("--fractions", "--lr-factors", "--ranks", "--gsm8k-limit", "--max-new-tokens", "--threads")
    ],
    *[("validate", o, ["datasets/alpaca_demo.json"]) for o in ("--near-dup-threshold", "--cutoff-len")],
    *[
        (
            "augment",
            o,
            [
                "llm",
                "/nonexistent/data.json",
                "--model",
                "m",
                "--provider",
                "openai",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "-o",
                "/nonexistent/out.json",
            ],
        )
        for o in (
            "--timeout",
            "--backoff",
            "--temperature",
            "--near-dup-threshold",
            "--seed",
            "--n",
            "--concurrency",
            "--max-retries",
            "--max-tokens",
            "--batch-size",
        )
    ],
]


@given(st.sampled_from(OPTIONS), NUMBERS)
def test_numeric_options_never_crash(tmp_path_factory, option, value):
    command, name, rest = option
    args = (
        [command, *rest[:1], name, str(value), *rest[1:]]
        if command == "augment"
        else [command, name, str(value), *rest]
    )
    if command == "sweep":
        args += ["--model", "tiny", "--output-dir", str(tmp_path_factory.mktemp("sweep"))]
    _one_line_failure(run_cli(*args))


def _numeric_yaml_keys() -> list[str]:
    import msgspec

    from ftbench.data.schema import unwrap
    from ftbench.recipes.run_settings import CompareKeys
    from ftbench.training.config_keys import TYPED

    compare = {f.name: f.type for f in msgspec.structs.fields(CompareKeys)}
    return sorted(key for key, declared in {**TYPED, **compare}.items() if unwrap(declared)[0] in (int, float))


@given(st.sampled_from(_numeric_yaml_keys()), NUMBERS)
def test_numeric_yaml_keys_never_crash(tmp_path_factory, key, value):
    folder = tmp_path_factory.mktemp("yaml")
    shown = (
        {float("inf"): ".inf", float("-inf"): "-.inf"}.get(value, str(value))
        if isinstance(value, float)
        else str(value)
    )
    if isinstance(value, float) and value != value:
        shown = ".nan"
    config = folder / "c.yaml"
    config.write_text(
        f"model_name_or_path: tiny\ndataset: /nonexistent/data.json\n{key}: {shown!s}\n", encoding="utf-8"
    )
    _one_line_failure(run_cli("train-and-compare", "--config", str(config), "--output-dir", str(folder / "run")))
