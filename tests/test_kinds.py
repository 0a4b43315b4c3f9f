"""The table of kinds (`p2pcore.kinds.KINDS`) and what derives from it: the hook specifications, the registry,
the host's enforcement of each kind's parameter base, the api's reference types and `p2pcore.testing`'s checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from p2pcore import P2PError, api, hookspecs, load_host, plugins, registry
from p2pcore.api import DiscriminatorParams, MetricParams, Params, hookimpl
from p2pcore.kinds import BY_HOOK, KINDS, NAMES, get_kind
from p2pcore.testing import contract_check, host_with

ROOT = Path(__file__).resolve().parents[1]


# -- the table and what derives from it ------------------------------------------------------------------

def _registration_specs() -> set[str]:
    return {name for name in dir(hookspecs)
            if name.startswith("p2p_register_") and hasattr(getattr(hookspecs, name), "p2p_spec")}


def test_every_kind_has_its_hookspec_and_every_registration_hookspec_a_kind():
    assert {kind.hook for kind in KINDS.values()} == _registration_specs()
    for kind in KINDS.values():
        doc = getattr(hookspecs, kind.hook).__doc__ or ""
        assert f"params={kind.params.__name__}" in doc, f"{kind.hook} documents another default base"
        assert f"p2pcore.api.{kind.contract.__name__}" in doc, f"{kind.hook} does not name its contract"
        assert BY_HOOK[kind.hook] is kind
    assert set(plugins.hook_names()) == _registration_specs() | {"p2p_add_commands"}


def test_the_registry_and_the_host_derive_from_the_table():
    assert registry.KINDS == NAMES == tuple(KINDS)
    assert {name: kind.hook for name, kind in KINDS.items()} == plugins.HOOK_FOR_KIND
    assert {name: kind.params for name, kind in KINDS.items()} == plugins.PARAMS_BASE
    assert set(registry.Registry()._by_qualified) == set(KINDS)


def test_each_kind_s_base_contract_and_reference_are_offered_by_the_api():
    for kind in KINDS.values():
        assert getattr(api, kind.params.__name__) is kind.params and issubclass(kind.params, Params)
        assert getattr(api, kind.contract.__name__) is kind.contract
        assert getattr(api, kind.ref_name) is kind.ref and kind.ref_name in api.__all__
        assert api.ComponentRef.coerce(kind.name, "x").kind == kind.name


def test_each_kind_s_contract_check_is_public_in_p2pcore_testing():
    import p2pcore.testing as testing

    for kind in KINDS.values():
        assert kind.check_name in testing.__all__ and contract_check(kind.name) is getattr(testing, kind.check_name)


def test_an_unknown_kind_suggests_the_closest():
    assert get_kind("metric").name == "metric"
    with pytest.raises(P2PError, match="unknown component kind 'callbak'") as err:
        get_kind("callbak")
    assert "did you mean 'callback'?" in err.value.hint


# -- the parameter base of each kind, enforced when a plugin loads ----------------------------------------

class PlainMetricParams(Params):
    """What the bug looked like: a metric without figures() and paired()."""


class PlainCriticParams(Params):
    ndf: int = 8


def _plugin(name: str, **hooks) -> types.SimpleNamespace:
    plugin = types.SimpleNamespace(__name__=name, __p2p_distribution__=f"p2p-{name}", __version__="0.1.0",
                                   P2P_API=">=1,<2")
    for hook, fn in hooks.items():
        setattr(plugin, hook, hookimpl(fn))
    return plugin


def _metric_plugin(params: type) -> types.SimpleNamespace:
    def register_metrics(register):
        register("sloppy", lambda p, c: None, params=params)
    return _plugin("sloppy", p2p_register_metrics=register_metrics)


def _critic_plugin(params: type) -> types.SimpleNamespace:
    def register_discriminators(register):
        register("critic", lambda p, c: None, params=params)
    return _plugin("critic", p2p_register_discriminators=register_discriminators)


@pytest.mark.parametrize(("make", "kind", "name", "params", "base"), [
    (_metric_plugin, "metric", "sloppy", PlainMetricParams, "MetricParams"),
    (_critic_plugin, "discriminator", "critic", PlainCriticParams, "DiscriminatorParams"),
])
def test_params_of_the_wrong_base_are_refused_at_load_naming_plugin_component_and_base(make, kind, name, params,
                                                                                     base):
    plugin = make(params)
    plugin_name = plugin.__name__
    host = load_host(extra_plugins=[(plugin_name, plugin)])
    record = next(r for r in host.records if r.name == plugin_name)
    assert (record.ok, record.status, record.components) == (False, "failed", ())
    assert record.error == (f"plugin {plugin_name!r} of p2p-{plugin_name} registers {kind} {name!r} with params "
                            f"{params.__name__}, which does not derive from p2pcore.api.{base}; the parameters of "
                            f"every {kind} must subclass p2pcore.api.{base}")
    assert "Traceback" not in record.error and "TypeError" not in record.error
    assert all(r.ok for r in host.records if r.name != plugin_name)  # the others load
    assert name not in host.registry.names(kind)
    with pytest.raises(P2PError) as err:  # a recipe naming it says it was not loaded, and why
        host.resolve(kind, name, key="eval.metrics.0")
    assert any(f"p2pcore.api.{base}" in line for line in err.value.details)
    with pytest.raises(P2PError, match=f"plugin '{plugin_name}' .* failed to load: .*must subclass "
                                       f"p2pcore.api.{base}"):
        load_host(strict=True, extra_plugins=[(plugin_name, plugin)])
    with pytest.raises(AssertionError, match=f"must subclass p2pcore.api.{base}"):
        host_with((plugin_name, plugin))


def test_the_right_base_loads_and_is_the_default():
    class Good(MetricParams):
        pass

    class Critic(DiscriminatorParams):
        ndf: int = 8

    def register_callbacks(register):
        register("quiet", lambda p, c: api.Callback())

    host = load_host(entry_points=False, extra_plugins=[
        ("m", _metric_plugin(Good)), ("d", _critic_plugin(Critic)),
        ("c", _plugin("c", p2p_register_callbacks=register_callbacks))])
    assert all(r.ok for r in host.records), [r.error for r in host.records]
    assert host.registry.get("callback", "quiet").params is api.CallbackParams  # the kind's base by default
    assert isinstance(host.build("callback", "quiet"), api.Callback)


def test_every_builtin_and_the_example_register_params_of_their_kind_s_base(host):
    loaded = [r for r in host.records if r.distribution in ("p2pcore", "p2p-example")]
    assert loaded and all(r.ok for r in loaded), [(r.name, r.error) for r in loaded if not r.ok]
    for spec in host.registry:
        assert issubclass(spec.params, KINDS[spec.kind].params), (spec.kind, spec.name)


SLOPPY = textwrap.dedent('''
    """A plugin registering a metric whose parameters are plain Params."""

    from p2pcore.api import Params, hookimpl

    P2P_API = ">=1,<2"


    class P(Params):
        pass


    @hookimpl
    def p2p_register_metrics(register):
        register("sloppy", lambda params, ctx: None, params=P)
    ''')


def test_p2p_plugins_shows_the_refusal_and_a_recipe_using_it_fails_cleanly(tmp_path):
    dist = tmp_path / "p2p_sloppy-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: p2p-sloppy\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[p2p.plugins]\nsloppy = p2p_sloppy_mod\n")
    (tmp_path / "p2p_sloppy_mod.py").write_text(SLOPPY)
    (tmp_path / "recipe.toml").write_text('name = "r"\ntask = "pix2pix"\n[data]\nname = "synthetic_thermal"\n'
                                          '[eval]\nmetrics = ["sloppy"]\n')
    env = {**os.environ, "COLUMNS": "250",
           "PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}

    def p2p(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, cwd=tmp_path,
                              env={**env, **extra}, timeout=120)

    message = ("plugin 'sloppy' of p2p-sloppy registers metric 'sloppy' with params P, which does not derive from "
               "p2pcore.api.MetricParams")
    done = p2p("plugins", "--json")
    assert done.returncode == 0, done.stderr
    record = next(r for r in json.loads(done.stdout) if r["name"] == "sloppy")
    assert record["status"] == "failed" and record["error"].startswith(message)
    done = p2p("plugins")
    assert done.returncode == 0 and "p2pcore.api.MetricParams" in " ".join(done.stdout.split())
    done = p2p("validate", "recipe.toml")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "AttributeError" not in done.stderr
    assert "sloppy" in done.stderr and "MetricParams" in " ".join(done.stderr.split()), done.stderr
    done = p2p("list", P2P_STRICT_PLUGINS="1")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "p2pcore.api.MetricParams" in " ".join(done.stderr.split()), done.stderr
