"""`ftbench.data.predictions`: prediction files written in order and resumed (the one mechanism `ftbench predict`
and train-and-compare share): rows in index order, a torn last line cut off, a sidecar that must match."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftbench.api.errors import InputError, UsageError
from ftbench.data.formats import ASSISTANT, USER, Sample
from ftbench.data.predictions import (
    OrderedRowWriter,
    make_row,
    meta_path,
    prediction_meta,
    prepare_output,
    read_existing,
    read_predictions,
    samples_sha256,
)

PARAMS = SimpleNamespace(
    max_new_tokens=16, do_sample=False, stop=(), temperature=None, top_p=None, top_k=None, seed=None
)


def _meta(**changes) -> dict:
    fields = dict(
        data="eval set",
        data_sha256="abc",
        fmt="auto",
        model="tiny",
        adapter=None,
        params=PARAMS,
        cutoff_len=None,
        engine="local",
    )
    return prediction_meta(**{**fields, **changes})


def _write(out, indices) -> None:
    writer = OrderedRowWriter(str(out), 0)
    for i in indices:
        writer.add([make_row(i, f"q{i}", f"a{i}", f"l{i}")])
    writer.close()


def test_rows_arriving_out_of_order_are_written_in_index_order(tmp_path):
    out = tmp_path / "p.jsonl"
    prepare_output(str(out), _meta())
    writer = OrderedRowWriter(str(out), 0)
    assert writer.add([make_row(2, "q", "a", "l"), make_row(1, "q", "a", "l")]) == 0  # 0 is missing: nothing yet
    assert writer.add([make_row(0, "q", "a", "l")]) == 3
    with pytest.raises(RuntimeError, match="produced twice"):
        writer.add([make_row(1, "q", "a", "l")])
    writer.close()
    assert [json.loads(line)["index"] for line in out.read_text().splitlines()] == [0, 1, 2]
    assert len(read_predictions(str(out))) == 3


def test_a_run_resumes_after_its_last_complete_row_and_a_torn_line_is_cut(tmp_path):
    out = tmp_path / "p.jsonl"
    meta = _meta()
    assert prepare_output(str(out), meta).count == 0
    created = json.loads(Path(meta_path(str(out))).read_text())["created"]
    _write(out, range(3))
    with open(out, "ab") as fh:
        fh.write(b'{"prompt": "q3", "pre')  # killed mid-write
    existing = prepare_output(str(out), _meta(), overwrite=False)
    assert (existing.count, existing.repaired_bytes) == (3, len(b'{"prompt": "q3", "pre'))
    assert out.read_text().endswith("}\n") and read_existing(str(out)).count == 3
    assert json.loads(Path(meta_path(str(out))).read_text())["created"] == created  # the first run's, kept
    writer = OrderedRowWriter(str(out), 3)
    writer.add([make_row(3, "q3", "a3", "l3")])
    writer.close()
    assert [json.loads(line)["index"] for line in out.read_text().splitlines()] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "change, said",
    [
        ({"data_sha256": "other"}, "a different data file"),
        ({"model": "smollm2"}, "another model"),
        ({"params": SimpleNamespace(**{**vars(PARAMS), "max_new_tokens": 8})}, "other generation settings"),
        ({"engine": "openai:chat"}, "another --engine"),
    ],
)
def test_a_file_made_otherwise_is_never_extended(tmp_path, change, said):
    out = tmp_path / "p.jsonl"
    prepare_output(str(out), _meta())
    _write(out, range(2))
    with pytest.raises(UsageError) as err:
        prepare_output(str(out), _meta(**change))
    assert str(err.value).startswith(f"{out} was made from {said}") and "--overwrite" in str(err.value)
    assert prepare_output(str(out), _meta(**change), overwrite=True).count == 0 and out.read_bytes() == b""


def test_rows_without_a_sidecar_or_out_of_order_are_refused(tmp_path):
    out = tmp_path / "p.jsonl"
    _write(out, range(2))
    with pytest.raises(UsageError, match="has no p.jsonl.meta.json"):
        prepare_output(str(out), _meta())
    out.write_text('{"index": 0}\n{"index": 2}\n')
    with pytest.raises(UsageError, match=r"p.jsonl:2: expected the row with index 1, found 2"):
        read_existing(str(out))
    out.write_text("not json\n")
    with pytest.raises(UsageError, match="p.jsonl:1: not a JSON row"):
        read_existing(str(out))
    meta_path_ = tmp_path / "q.jsonl.meta.json"
    (tmp_path / "q.jsonl").write_text('{"index": 0}\n')
    meta_path_.write_text('{"kind": "something else"}')
    with pytest.raises(UsageError, match="not an ftbench predict sidecar"):
        prepare_output(str(tmp_path / "q.jsonl"), _meta())


def test_an_empty_file_starts_afresh_and_a_folder_is_refused(tmp_path):
    out = tmp_path / "p.jsonl"
    out.write_bytes(b"")
    assert prepare_output(str(out), _meta()).count == 0 and (tmp_path / "p.jsonl.meta.json").is_file()
    with pytest.raises(UsageError, match="is a folder"):
        prepare_output(str(tmp_path), _meta())


def test_samples_sha256_is_the_identity_of_what_the_samples_ask():
    a = [Sample([(USER, "1+1?"), (ASSISTANT, "2")], "", "", "x", 0, None)]
    b = [Sample([(USER, "1+1?"), (ASSISTANT, "3")], "", "", "x", 0, None)]
    assert samples_sha256(a) == samples_sha256(list(a)) != samples_sha256(b)


def test_a_mistyped_row_is_one_located_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"predict": "a", "label": "b"}\n{"predict": "a", "label": null}\n')
    with pytest.raises(InputError) as err:
        read_predictions(str(path))
    assert f"{path}:2" in str(err.value) and "[1].label" in str(err.value)
