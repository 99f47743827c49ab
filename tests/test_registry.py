"""`ftbench.api.registry.Registry`, the one mechanism behind every name ftbench lets you choose (backends, engines,
metrics, scorers, commands): where names come from and which source wins, unknown names, broken plug-ins."""

from __future__ import annotations

import sys
import types
from importlib import metadata

import pytest

from ftbench.api.errors import UsageError
from ftbench.api.registry import BUILT_IN, IN_CODE, Registry


class Base:
    """The kind of thing this registry holds."""


class Builtin(Base):
    description = "the built-in one"


class FromPlugin(Base):
    """From an installed package."""


class InCode(Base):
    description = "registered in code"


class NotABase:
    pass


@pytest.fixture
def plugin_module(monkeypatch):
    """A module the fake entry points point at: a good class, a broken attribute, a wrong type."""
    module = types.ModuleType("ftbench_test_plugin")
    module.Good, module.Wrong = FromPlugin, NotABase
    monkeypatch.setitem(sys.modules, "ftbench_test_plugin", module)
    return module


def _registry(monkeypatch, entry_points: dict[str, str]) -> Registry:
    reg = Registry(
        "widget",
        base=Base,
        entry_point_group="ftbench.widgets",
        listing="ftbench widgets",
        builtins={"alpha": f"{__name__}:Builtin", "beta": f"{__name__}:Builtin"},
    )
    eps = [metadata.EntryPoint(n, v, "ftbench.widgets") for n, v in entry_points.items()]
    monkeypatch.setattr(reg, "_entry_points", lambda: eps)
    return reg


def test_code_registration_wins_over_entry_points_which_win_over_builtins(monkeypatch, plugin_module):
    reg = _registry(monkeypatch, {"beta": "ftbench_test_plugin:Good", "gamma": "ftbench_test_plugin:Good"})
    assert reg.names() == ["alpha", "beta", "gamma"]
    assert reg.load("alpha") is Builtin and reg.load("beta") is FromPlugin and reg.load("gamma") is FromPlugin
    reg.register("gamma", InCode, replace=True)
    assert reg.load("gamma") is InCode
    sources = {e.name: e.source for e in reg.entries()}
    assert sources["alpha"] == BUILT_IN and sources["gamma"] == IN_CODE
    assert sources["beta"].startswith("entry point (package")
    assert isinstance(reg.create("alpha"), Builtin)


def test_an_entry_point_repeating_a_builtin_is_the_builtin(monkeypatch):
    reg = _registry(monkeypatch, {"alpha": f"{__name__}:Builtin"})
    assert {e.name: e.source for e in reg.entries()}["alpha"] == BUILT_IN


def test_registering_a_taken_name_needs_replace_and_a_decorator_registers(monkeypatch):
    reg = _registry(monkeypatch, {})
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", InCode)

    @reg.register("delta")
    class Delta(Base):
        description = "by decorator"

    assert reg.load("delta") is Delta
    assert [e.description for e in reg.entries() if e.name == "delta"] == ["by decorator"]
    reg.register("delta", f"{__name__}:InCode", replace=True)  # a string is imported only when used
    assert reg.load("delta") is InCode


def test_an_unknown_name_lists_the_known_ones_with_did_you_mean(monkeypatch):
    reg = _registry(monkeypatch, {})
    with pytest.raises(UsageError) as err:
        reg.load("alpah")
    assert str(err.value) == (
        "unknown widget 'alpah' (did you mean 'alpha'?); installed: alpha, beta (see `ftbench widgets`)"
    )
    with pytest.raises(UsageError) as err:
        reg.load("zzz")
    assert "did you mean" not in str(err.value) and "installed: alpha, beta" in str(err.value)
    assert "alpha" in reg and "zzz" not in reg and list(reg) == ["alpha", "beta"]


def test_broken_plugins_are_listed_with_their_error_and_refused_by_name(monkeypatch, plugin_module):
    reg = _registry(
        monkeypatch,
        {
            "missing": "ftbench_no_such_module:X",
            "wrong": "ftbench_test_plugin:Wrong",
            "good": "ftbench_test_plugin:Good",
        },
    )
    entries = {e.name: e for e in reg.entries()}  # the listing survives both broken plug-ins
    assert entries["good"].error is None and entries["good"].description == "From an installed package."
    assert entries["missing"].error.startswith("ModuleNotFoundError: No module named 'ftbench_no_such_module'")
    assert entries["wrong"].error == "TypeError: ftbench_test_plugin:Wrong is not a Base subclass"
    assert entries["alpha"].description == "the built-in one"
    with pytest.raises(UsageError) as err:
        reg.load("wrong")
    assert str(err.value).startswith("widget 'wrong' (entry point (package") and "cannot be loaded: TypeError" in str(
        err.value
    )
