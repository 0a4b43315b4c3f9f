"""The plugin host: discovery, registration, lookups, and one broken plugin not breaking the rest."""

from __future__ import annotations

import types

import pytest

from p2pcore import P2PError, load_host
from p2pcore.api import NormRef, Params, hookimpl


def _plugin(name: str, **hooks) -> types.SimpleNamespace:
    plugin = types.SimpleNamespace(__name__=name, __p2p_distribution__=name, __version__="1.2.3")
    for hook, fn in hooks.items():
        setattr(plugin, hook, hookimpl(fn))
    return plugin


def test_builtins_are_registered_through_entry_points(host):
    names = {kind: host.registry.names(kind) for kind in ("norm", "generator", "discriminator", "loss", "task")}
    assert {"batch", "instance", "none"} <= set(names["norm"])
    assert "unet" in names["generator"] and "patch" in names["discriminator"]
    assert {"gan", "l1"} <= set(names["loss"]) and "pix2pix" in names["task"]
    assert all(r.ok for r in host.records if r.distribution == "p2pcore"), [r for r in host.records if not r.ok]
    assert host.registry.get("norm", "batch").distribution == "p2pcore"


def test_unknown_name_suggests_and_lists(host):
    with pytest.raises(P2PError) as err:
        host.build("norm", "instnce", key="model.generator.norm")
    assert err.value.key == "model.generator.norm.name"
    assert "did you mean 'instance'" in err.value.hint and "p2p list norm" in err.value.hint


def test_unknown_parameter_suggests(host):
    with pytest.raises(P2PError) as err:
        host.build("generator", {"name": "unet", "ngff": 8}, in_channels=3, out_channels=3, key="model.generator")
    assert err.value.key == "model.generator.ngff"
    assert "did you mean 'ngf'" in err.value.message


def test_nested_reference_is_validated_with_its_path(host):
    with pytest.raises(P2PError) as err:
        host.resolve("generator", {"name": "unet", "norm": {"name": "batch", "momentun": 0.1}}, key="model.generator")
    assert err.value.key == "model.generator.norm.momentun"
    assert "momentum" in err.value.message


def test_broken_plugin_is_reported_and_others_load():
    def boom(register):
        register("fine", lambda p, c: None)
        raise RuntimeError("plugin bug")

    host = load_host(extra_plugins=[("broken", _plugin("broken", p2p_register_norms=boom))])
    record = next(r for r in host.records if r.name == "broken")
    assert not record.ok and "plugin bug" in record.error
    assert "fine" not in host.registry.names("norm")  # all-or-nothing
    assert "batch" in host.registry.names("norm")
    with pytest.raises(P2PError, match="failed to load"):
        load_host(strict=True, extra_plugins=[("broken", _plugin("broken", p2p_register_norms=boom))])


def test_builtin_names_are_reserved_and_clashes_need_qualified_names():
    class Group(Params):
        groups: int = 4
        norm: NormRef = "batch"

    def register_batch(register):
        register("batch", lambda p, c: "theirs")

    def register_group_a(register):
        register("group", lambda p, c: "a", params=Group)

    def register_group_b(register):
        register("group", lambda p, c: "b")

    host = load_host(extra_plugins=[
        ("thief", _plugin("thief", p2p_register_norms=register_batch)),
        ("a", _plugin("a", p2p_register_norms=register_group_a)),
        ("b", _plugin("b", p2p_register_norms=register_group_b)),
    ])
    thief = next(r for r in host.records if r.name == "thief")
    assert not thief.ok and "reserved" in thief.error
    with pytest.raises(P2PError, match="several plugins"):
        host.build("norm", "group")
    assert host.build("norm", "a:group") == "a" and host.build("norm", "b:group") == "b"
    assert host.registry.get("norm", "a:group").version == "1.2.3"


def test_registry_is_frozen(host):
    from p2pcore.registry import ComponentSpec

    with pytest.raises(RuntimeError, match="frozen"):
        host.registry.add(ComponentSpec("norm", "late", lambda p, c: None, Params, "x", "x", "0"))


def test_wildcard_search(host):
    assert [s.name for s in host.registry.search("generator", "*unet*")] == ["unet"]
    assert {(s.kind, s.name) for s in host.registry.search(None, "patch")} == {("discriminator", "patch"),
                                                                              ("loss", "patch_nce")}


def test_a_misspelt_hook_fails_its_plugin_only():
    import types

    from p2pcore.api import hookimpl

    misspelt = types.SimpleNamespace(p2p_register_metric=hookimpl(lambda register: None))
    host = load_host(extra_plugins=[("typo", misspelt)])
    record = next(r for r in host.records if r.name == "typo")
    assert not record.ok and "did you mean 'p2p_register_metrics'" in record.error
    assert all(r.ok for r in host.records if r.name != "typo")
