"""What the recipe checks learns from declarations rather than names: the size a dataset's items come in
(`DatasetParams.item_size`) and the kind of each model role (the task's `TaskSpec.roles`)."""

from __future__ import annotations

import pytest

from p2pcore import P2PError
from p2pcore.api import DatasetParams, ItemSize
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
