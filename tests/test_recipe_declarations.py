"""What the recipe checks learns from declarations rather than names: the size a dataset's items come in
(`DatasetParams.item_size`) and the kind of each model role (the task's `TaskSpec.roles`); and the
`[callbacks.<label>]` tables, component references of kind "callback"."""

from __future__ import annotations

import types

import pytest

from p2pcore import P2PError
from p2pcore.api import DatasetParams, Field, ItemSize, hookimpl
from p2pcore.api.callbacks import Callback, CallbackParams
from p2pcore.plugins import load_host
from p2pcore.recipe import validate_recipe

UNET8 = {"generator": {"name": "unet", "depth": 8}}


def test_a_crop_declared_by_the_dataset_is_checked_against_the_generator(host):
    data = {"name": "paired_folders", "root": "nowhere", "preprocess": "crop", "load_size": 64, "crop_size": 64}
    with pytest.raises(P2PError, match="multiples of 256, but data.crop_size is 64") as caught:
        validate_recipe({"data": data, "model": UNET8}, host)
    assert caught.value.key == "model.generator"
    validate_recipe({"data": {**data, "crop_size": 256, "load_size": 286}, "model": UNET8}, host)


def test_items_of_varying_size_declare_none_and_are_not_checked(host):
    data = {"name": "paired_folders", "root": "nowhere", "preprocess": "scale_width", "crop_size": 64}
    validate_recipe({"data": data, "model": UNET8}, host)  # padded to the multiple at run time


def test_the_sizes_the_built_in_datasets_declare(host):
    def params(table):
        return host.resolve("dataset", table, key="data").params

    assert params({"name": "synthetic_thermal", "size": 48}).item_size() == ItemSize(48, "size")
    assert params({"name": "paired_folders", "root": "r"}).item_size() == ItemSize(256, "crop_size")
    assert params({"name": "single", "root": "r"}).item_size() is None  # native size by default
    assert DatasetParams().item_size() is None  # a dataset that declares nothing is not checked


def test_a_model_role_is_built_as_the_kind_its_task_declares(host):
    recipe = validate_recipe({"data": {"name": "synthetic_thermal", "size": 32},
                              "model": {"generator": {"name": "unet", "depth": 5},
                                        "discriminator": {"name": "patch"}}}, host)
    assert {role: ref.kind for role, ref in recipe.model.items()} == {"generator": "generator",
                                                                       "discriminator": "discriminator"}
    with pytest.raises(P2PError, match="has no model role 'generator_x'") as caught:
        validate_recipe({"data": {"name": "synthetic_thermal"}, "model": {"generator_x": {"name": "unet"}}}, host)
    assert caught.value.key == "model.generator_x"


BASE = {"data": {"name": "synthetic_thermal", "size": 32}, "model": {"generator": {"name": "unet", "depth": 5}}}


class EveryParams(CallbackParams):
    every: int = Field(10, ge=1, description="steps between lines")


@pytest.fixture(scope="module")
def callback_host():
    plugin = types.SimpleNamespace(__name__="lines_plugin", p2p_register_callbacks=hookimpl(
        lambda register: register("lines", lambda p, c: Callback(), params=EveryParams)))
    return load_host(extra_plugins=[("lines", plugin)])


def test_a_recipe_has_no_callbacks_unless_it_names_some(host):
    recipe = validate_recipe(BASE, host)
    assert recipe.callbacks == {} and "callbacks" not in recipe.to_toml_dict()


def test_callbacks_are_labelled_component_tables_resolved_and_recorded(callback_host):
    recipe = validate_recipe({**BASE, "callbacks": {"slow": {"name": "lines", "every": 50}, "fast": "lines"}},
                             callback_host)
    assert {label: (ref.kind, ref.name, ref.params.every) for label, ref in recipe.callbacks.items()} == {
        "slow": ("callback", "lines", 50), "fast": ("callback", "lines", 10)}
    assert recipe.to_toml_dict()["callbacks"] == {"slow": {"name": "lines", "every": 50},
                                                  "fast": {"name": "lines", "every": 10}}
    again = validate_recipe(recipe.to_toml_dict(), callback_host)  # the recorded recipe reads back the same
    assert again.callbacks == recipe.callbacks


@pytest.mark.parametrize(("table", "key", "message"), [
    ({"log": {"name": "no_such_logger"}}, "callbacks.log.name", "unknown callback 'no_such_logger'"),
    ({"log": {"name": "lines", "every": 0}}, "callbacks.log.every", "greater than or equal to 1"),
    ({"log": {"name": "lines", "evry": 5}}, "callbacks.log", "evry"),
    ({"log": {"every": 5}}, "callbacks.log", "needs a `name`"),
])
def test_a_bad_callback_table_is_an_error_at_its_key(callback_host, table, key, message):
    with pytest.raises(P2PError, match=message) as caught:
        validate_recipe({**BASE, "callbacks": table}, callback_host)
    assert caught.value.key.startswith(key)


def test_translating_needs_no_callback_plugin(host):
    recipe = validate_recipe({**BASE, "callbacks": {"log": {"name": "not_installed_here"}}}, host, inference=True)
    assert recipe.callbacks == {}
