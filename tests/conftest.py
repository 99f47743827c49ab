"""Shared fixtures. Add yours below; do not remove others'."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """The offline tiny model's folder, built once per test run into a cache that the xdist workers share
    (FTBENCH_CACHE if it is already set). The build is atomic, so workers racing to build it never clash."""
    from ftbench.inference.models import resolve_model

    if not os.environ.get("FTBENCH_CACHE"):
        os.environ["FTBENCH_CACHE"] = str(tmp_path_factory.getbasetemp().parent / "ftbench-cache")
    return resolve_model("tiny")


@pytest.fixture
def one_torch_thread():
    """Tiny matrices: one thread is several times faster than two fighting over a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
