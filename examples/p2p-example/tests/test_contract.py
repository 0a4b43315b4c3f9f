"""p2p's contract checks on this package's components: run `pytest` here once p2pcore is installed.

The `p2p_host` fixture comes with p2pcore (its pytest plugin); the marker registers this package's
module even where it is not installed (`PYTHONPATH=. pytest`)."""

from __future__ import annotations

import p2p_example
import pytest

from p2pcore.testing import check_entry_module_light, check_generator, check_loss, check_norm, check_params_round_trip

pytestmark = pytest.mark.p2p_plugins(("example", p2p_example))


@pytest.mark.parametrize("groups", [1, 4])
def test_group_norm_contract(p2p_host, groups):
    check_norm(p2p_host, "group", groups=groups)


def test_group_norm_inside_a_builtin_generator(p2p_host):
    check_generator(p2p_host, "unet", depth=5, ngf=8, norm={"name": "group", "groups": 4})


@pytest.mark.parametrize("tensor", ["fake_b", "real_b"])
def test_total_variation_contract(p2p_host, tensor):
    check_loss(p2p_host, "tv", tensor=tensor)


@pytest.mark.parametrize(("kind", "name", "params"), [("norm", "group", {"groups": 2, "eps": 1e-3}),
                                                      ("loss", "tv", {"tensor": "fake_a"})])
def test_params_survive_a_recipe_file(p2p_host, kind, name, params):
    check_params_round_trip(p2p_host, kind, name, **params)


def test_entry_module_does_not_import_torch():
    check_entry_module_light("p2p_example")
