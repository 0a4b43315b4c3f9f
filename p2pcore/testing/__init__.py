"""Tools for testing p2p plugins: pytest fixtures and contract checks, one per component kind.

Registered with pytest through the ``pytest11`` entry point, so the fixtures ``p2p_host`` (with the
``p2p_plugins`` marker) and ``p2p_host_with`` are there in any test once p2pcore is installed. The
checks are plain functions raising AssertionError with what is wrong; `check_component(host, kind, name)`
runs the check the table of kinds names for `kind`; `assert_refused(host, recipe, key=...)` asserts that
validation refuses a recipe at a TOML key. Importing this module does not import torch; the checks import
it when they run.
"""

from p2pcore.testing.callbacks import check_callback
from p2pcore.testing.data import check_dataset
from p2pcore.testing.fixtures import _p2p_hosts, p2p_host, p2p_host_with, pytest_configure  # noqa: F401
from p2pcore.testing.hosts import host_with
from p2pcore.testing.kinds import check_component, contract_check
from p2pcore.testing.losses import check_loss
from p2pcore.testing.metrics import check_metric
from p2pcore.testing.networks import check_discriminator, check_generator, check_norm
from p2pcore.testing.params import check_entry_module_light, check_params_round_trip
from p2pcore.testing.recipes import tiny_recipe
from p2pcore.testing.refusals import assert_refused
from p2pcore.testing.schedules import check_schedule
from p2pcore.testing.segmenters import check_segmenter
from p2pcore.testing.tasks import check_task

__all__ = [
    "assert_refused", "check_callback", "check_component", "check_dataset", "check_discriminator",
    "check_entry_module_light", "check_generator", "check_loss", "check_metric", "check_norm",
    "check_params_round_trip", "check_schedule", "check_segmenter", "check_task", "contract_check", "host_with",
    "p2p_host", "p2p_host_with", "pytest_configure", "tiny_recipe",
]
