"""The plugin API as a contract: the versions a plugin declares, the hooks it may implement, and every kind's
contract offered by `p2pcore.api` (and used from there by the built-ins)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from p2pcore import P2PError, api, hookspecs, load_host
from p2pcore.api import hookimpl
from p2pcore.plugins import HOOK_FOR_KIND
from p2pcore.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"


def _plugin(name: str, declared: str | None, **hooks) -> types.SimpleNamespace:
    plugin = types.SimpleNamespace(__name__=name, __p2p_distribution__=f"p2p-{name}", __version__="2.0.0")
    if declared is not None:
        plugin.P2P_API = declared
    for hook, fn in hooks.items():
        setattr(plugin, hook, hookimpl(fn))
    return plugin


def _registers(name: str, called: list[str]):
    def hook(register):
        called.append(name)
        register(name, lambda params, ctx: name)
    return hook


def _record(host, name: str):
    return next(r for r in host.records if r.name == name)


# -- versions -------------------------------------------------------------------------------------------

def test_an_incompatible_plugin_is_listed_with_its_range_and_not_loaded():
    called: list[str] = []
    future = _plugin("future", ">=2,<3", p2p_register_norms=_registers("future_norm", called))
    host = load_host(entry_points=False, extra_plugins=[("future", future)])
    record = _record(host, "future")
    assert (record.ok, record.status, record.api) == (False, "incompatible", ">=2,<3")
    assert ">=2,<3" in record.error and f"offers plugin API {api.API_VERSION}" in record.error
    assert called == [] and not host.manager.is_registered(future)
    with pytest.raises(P2PError) as err:
        host.resolve("norm", "future_norm", key="model.generator.norm")
    assert any("p2p-future 2.0.0" in line and "incompatible" in line for line in err.value.details)
    with pytest.raises(P2PError, match="is incompatible: needs plugin API >=2,<3") as err:
        load_host(strict=True, entry_points=False, extra_plugins=[("future", future)])
    assert "p2p-future" in err.value.hint


def test_a_checkpoint_needing_an_incompatible_plugin_names_it():
    future = _plugin("future", ">=2,<3", p2p_register_norms=_registers("future_norm", []))
    host = load_host(entry_points=False, extra_plugins=[("future", future)])
    entry = types.SimpleNamespace(kind="norm", name="future_norm", qualified_name="p2p-future:future_norm",
                                  distribution="p2p-future", version="2.0.0")
    with pytest.raises(P2PError, match="installed but was not loaded") as err:
        host.check_installed([entry], file="run.safetensors", kinds=["norm"])
    assert err.value.file == "run.safetensors" and "incompatible: needs plugin API >=2,<3" in err.value.details[0]


def test_a_supporting_range_loads_a_missing_one_warns_and_a_malformed_one_fails():
    called: list[str] = []
    host = load_host(entry_points=False, extra_plugins=[
        ("now", _plugin("now", f"=={api.API_VERSION.split('.')[0]}.*", p2p_register_norms=_registers("n1", called))),
        ("bare", _plugin("bare", None, p2p_register_norms=_registers("n2", called))),
        ("typo", _plugin("typo", "one or two", p2p_register_norms=_registers("n3", called))),
    ])
    now, bare, typo = (_record(host, n) for n in ("now", "bare", "typo"))
    assert now.status == "ok" and now.warning is None and now.components == ("norm:n1",)
    assert bare.status == "ok" and "P2P_API" in bare.warning and bare.components == ("norm:n2",)
    assert typo.status == "failed" and "not a version specifier" in typo.error
    assert called == ["n1", "n2"]


def test_builtins_and_the_example_declare_ranges_that_include_the_api(host):
    declared = [r for r in host.records if r.distribution in ("p2pcore", "p2p-example")]
    assert len(declared) >= 9
    for record in declared:
        assert record.status == "ok" and record.api and record.warning is None, record


def test_an_installed_incompatible_plugin_is_never_imported(tmp_path):
    """Its range is read from its source: importing it would fail on a name this API lacks."""
    dist = tmp_path / "p2p_future-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: p2p-future\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[p2p.plugins]\nfuture = p2p_future_mod\n")
    (tmp_path / "p2p_future_mod.py").write_text(
        'from p2pcore.api import SomethingOnlyApi2Has\n\nP2P_API = ">=2,<3"\n')
    env = {**os.environ, "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}

    def p2p(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, cwd=ROOT,
                              env={**env, **extra})

    done = p2p("plugins", "--json")
    assert done.returncode == 0, done.stderr
    record = next(r for r in json.loads(done.stdout) if r["name"] == "future")
    assert (record["status"], record["api"], record["distribution"]) == ("incompatible", ">=2,<3", "p2p-future")
    assert "SomethingOnlyApi2Has" not in record["error"]
    done = p2p("plugins")
    assert "incompatible: needs plugin API >=2,<3" in done.stdout and f"plugin API {api.API_VERSION}" in done.stdout
    done = p2p("show", "norm", "future_norm")
    assert done.returncode == 2 and "p2p-future 0.3 (incompatible" in done.stderr and "Traceback" not in done.stderr
    done = p2p("list", P2P_STRICT_PLUGINS="1")
    assert done.returncode == 2 and "p2p-future" in done.stderr and "Traceback" not in done.stderr


# -- strict hooks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("attr", "marked", "hook", "guess"), [
    ("p2p_register_metric", False, "p2p_register_metric", "p2p_register_metrics"),   # unmarked, misspelt
    ("p2p_register_generator", True, "p2p_register_generator", "p2p_register_generators"),
    ("register_norms", True, "register_norms", "p2p_register_norms"),                # marked, prefix forgotten
])
def test_an_unknown_hook_fails_its_plugin_naming_it(attr, marked, hook, guess):
    plugin = types.SimpleNamespace(__name__="typo", **{attr: hookimpl(lambda register: None) if marked
                                                       else (lambda register: None)})
    host = load_host(extra_plugins=[("typo", plugin)])
    record = _record(host, "typo")
    assert record.status == "failed" and f"unknown hook {hook!r}" in record.error
    assert f"did you mean {guess!r}" in record.error
    assert all(r.ok for r in host.records if r.name != "typo")
    with pytest.raises(P2PError, match=f"'typo'.*unknown hook {hook!r}"):
        load_host(strict=True, extra_plugins=[("typo", plugin)])


def test_a_hookimpl_may_name_its_hook_with_specname():
    def add_norms(specname: str):
        @hookimpl(specname=specname)
        def add_norms(register):
            register("renamed", lambda params, ctx: "renamed")
        return add_norms

    good = types.SimpleNamespace(add_norms=add_norms("p2p_register_norms"))
    bad = types.SimpleNamespace(add_norms=add_norms("p2p_register_norm"))
    host = load_host(entry_points=False, extra_plugins=[("good", good), ("bad", bad)])
    assert _record(host, "good").components == ("norm:renamed",)
    assert "unknown hook 'p2p_register_norm' (function 'add_norms')" in _record(host, "bad").error


# -- hook documentation ---------------------------------------------------------------------------------

SPECS = sorted(name for name in dir(hookspecs) if name.startswith("p2p_"))


def test_every_kind_has_a_hookspec():
    for kind in KINDS:
        spec = getattr(hookspecs, HOOK_FOR_KIND[kind], None)
        assert spec is not None and hasattr(spec, "p2p_spec"), f"kind {kind!r} has no hookspec"


@pytest.mark.parametrize("name", SPECS)
def test_every_hookspec_documents_its_parameters_result_and_an_example(name):
    doc = getattr(hookspecs, name).__doc__ or ""
    params = list(getattr(hookspecs, name).__code__.co_varnames[:getattr(hookspecs, name).__code__.co_argcount])
    for param in params:
        assert f":param {param}:" in doc, f"{name}: document `{param}`"
    assert "Example::" in doc, f"{name}: give an example"
    example = doc.split("Example::", 1)[1]
    assert "@hookimpl" in example and f"def {name}(" in example, f"{name}: the example implements the hook"
    if name.startswith("p2p_register_"):
        assert "register(name, build, *, params=" in doc and "``build(params, ctx)`` returns" in doc
        assert "register(" in example


# -- contracts in p2pcore.api ---------------------------------------------------------------------------

CONTRACTS = ["API_VERSION", "Register", "DiscriminatorParams", "Generator", "Discriminator", "DatasetAdapter",
             "DataReport", "BATCH_KEYS", "Preprocess", "Interpolation", "make_jitter", "jitter", "prepare_image",
             "finish_image"]


def test_the_contracts_are_in_the_api_and_importing_it_stays_light():
    assert set(CONTRACTS) <= set(api.__all__)
    probe = ("import sys\nfrom p2pcore.api import " + ", ".join(c for c in CONTRACTS if c not in
                                                                   ("make_jitter", "jitter", "prepare_image",
                                                                    "finish_image"))
             + "\nassert 'torch' not in sys.modules, 'torch imported'\n"
             "from p2pcore.api import make_jitter\nassert 'torch' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-1000:]


def test_builtin_discriminators_and_generators_meet_their_protocols(host):
    for spec in host.registry.specs("discriminator"):
        if spec.builtin:
            assert issubclass(spec.params, api.DiscriminatorParams), spec.name
    net = host.build("discriminator", {"name": "patch", "ndf": 4}, in_channels=4)
    assert isinstance(net, api.Discriminator)
    gen = host.build("generator", {"name": "unet", "depth": 3, "ngf": 4}, in_channels=1, out_channels=3)
    assert isinstance(gen, api.Generator) and not isinstance(object(), api.Generator)


def test_builtin_adapters_meet_the_dataset_contract(host):
    adapter = host.build("dataset", {"name": "synthetic_thermal", "size": 32, "train_count": 2, "test_count": 1})
    assert isinstance(adapter, api.DatasetAdapter)
    report = adapter.check("train", deep=False)
    assert isinstance(report, api.DataReport) and report.ok and report.pairs == 2
    item = adapter.dataset("train", train=True)[0]
    assert {"a", "b", "name"} <= set(item) <= set(api.BATCH_KEYS) | {"name_b"}
    assert item["a"].shape == (adapter.a_channels, 32, 32) and item["a"].abs().max() <= 1


def test_the_jitter_helpers_crop_and_flip_an_item_alike():
    import torch

    pipeline = api.make_jitter("resize_and_crop", load_size=10, crop_size=8, flip=True, train=True)
    image = torch.arange(2 * 6 * 6, dtype=torch.uint8).reshape(2, 6, 6)
    a, b = api.jitter(pipeline, [api.prepare_image(image, api.Normalization()), api.prepare_image(image.clone(),
                                                                                                   api.Normalization())])
    assert a.shape == (2, 8, 8) and torch.equal(a, b)
    assert api.finish_image(a).dtype == torch.float32 and api.finish_image(a).abs().max() <= 1
    assert api.make_jitter("none", load_size=1, crop_size=1, flip=False, train=True) is None
    with pytest.raises(ValueError, match="preprocess must be one of"):
        api.make_jitter("resize", load_size=10, crop_size=8, flip=False, train=False)


def test_builtins_take_the_moved_contracts_from_the_api():
    """No built-in defines its own copy of a contract the api offers."""
    moved = {"DiscriminatorParams", "DataReport", "Preprocess", "Interpolation", "make_jitter", "make_transform",
             "jitter", "prepare", "finish"}
    for module in PLUGINS.rglob("*.py"):
        tree = ast.parse(module.read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
        defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        assert not defined & moved, f"{module} defines {sorted(defined & moved)}"


# -- what plugin commands get from the api ----------------------------------------------------------------

def test_the_import_commands_are_a_plugin_added_through_the_hook():
    from p2pcore import commands

    assert not any("interop" in module for module in commands.COMMAND_MODULES)
    record = next(r for r in load_host().records if r.module == "p2p_interop")
    assert record.ok and record.api == ">=1,<2" and record.distribution == "p2pcore"
    done = subprocess.run([sys.executable, "-m", "p2pcore", "import", "--help"], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0 and "junyanz" in done.stdout and "pix2pixhd" in done.stdout, done.stderr[-1000:]


def test_write_weights_writes_a_checkpoint_load_trained_rebuilds_and_refuses_a_bad_recipe(tmp_path):
    import torch

    from p2pcore.checkpoint.format import read_header

    host = api.load_host()
    spec = host.resolve("generator", {"name": "unet", "depth": 2, "ngf": 4}).as_table()
    net = host.build("generator", spec, in_channels=3, out_channels=3)
    recipe = {"name": "w", "task": "pix2pix", "data": {"name": "single", "channels": 3, "out_channels": 3},
              "model": {"generator": spec}}
    api.write_weights(tmp_path / "w.safetensors", recipe, {"generator": net}, source="test:w", host=host)
    header = read_header(tmp_path / "w.safetensors")
    assert header.meta.source == "test:w" and header.meta.optim is None and header.meta.recipe == recipe
    assert [c.kind for c in header.meta.components] == ["task", "dataset", "generator"]
    assert set(header.tensors) == {f"net.generator.{k}" for k in net.state_dict()}
    loaded = api.load_trained(tmp_path / "w.safetensors", roles=("generator",), builder=host).nets["generator"]
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in net.state_dict().items())

    bad = {**recipe, "model": {"generator": {**spec, "depth": 0}}}
    with pytest.raises(P2PError) as refused:
        api.write_weights(tmp_path / "bad.safetensors", bad, {"generator": net}, source="test:bad", host=host)
    assert (refused.value.key or "").startswith("model.generator") and not (tmp_path / "bad.safetensors").exists()
    with pytest.raises(ValueError, match="model roles"):
        api.write_weights(tmp_path / "x.safetensors", recipe, {"other": net}, source="test:x", host=host)


def test_every_kind_has_a_reference_type_in_the_api():
    from p2pcore import api
    from p2pcore.registry import KINDS

    for kind in KINDS:
        ref = getattr(api, f"{kind.capitalize()}Ref")
        assert f"{kind.capitalize()}Ref" in api.__all__
        assert api.ComponentRef.coerce(kind, "x").kind == kind and ref is not None
