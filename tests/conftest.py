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


@pytest.fixture(scope="session")
def llamafactory_cli():
    """The real `llamafactory-cli` (its own venv): FTBENCH_LLAMAFACTORY_CLI, else on PATH. CI installs it
    (`make llamafactory`) and sets FTBENCH_REQUIRE_LLAMAFACTORY=1, so there a missing one fails instead of skipping."""
    import shutil

    cli = os.environ.get("FTBENCH_LLAMAFACTORY_CLI") or shutil.which("llamafactory-cli")
    if not cli or not os.path.isfile(cli):
        if os.environ.get("FTBENCH_REQUIRE_LLAMAFACTORY"):
            pytest.fail(
                "FTBENCH_REQUIRE_LLAMAFACTORY is set but no llamafactory-cli was found "
                "(set FTBENCH_LLAMAFACTORY_CLI or run `make llamafactory`)"
            )
        pytest.skip("LLaMA-Factory is not installed (`make llamafactory` installs it in its own venv)")
    return cli


@pytest.fixture(scope="session")
def llamafactory_python(llamafactory_cli):
    """The Python of LLaMA-Factory's venv, to run its library code (never imported into ftbench's process)."""
    python = os.path.join(os.path.dirname(os.path.realpath(llamafactory_cli)), "python")
    if not os.path.isfile(python):
        python = os.path.join(os.path.dirname(llamafactory_cli), "python")
    return python
