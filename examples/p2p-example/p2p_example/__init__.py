"""An example p2p plugin, shaped as a third party would publish one, showing every extension point:

- norm `group` and loss term `tv` (norm.py, loss.py);
- generator `se_resnet`, built from a squeeze-and-excitation residual block (generator.py, se_network.py);
- discriminator `noisy`, a wrapper adding instance noise to any other discriminator (discriminator.py);
- dataset `csv_pairs`, pairs of image files listed in a CSV, with `check` for `p2p data check` (dataset.py);
- task `colorize`, which derives a grey input from any dataset's colour images on the fly (task.py);
- task `colorize_probe`, colorize with a network of its own (a probe) reading a generator's feature tap
  (probe_task.py), the generator `se_resnet` offering taps;
- command `p2p example-stats RECIPE`, per-channel statistics of a recipe's dataset (stats_command.py).

It imports only `p2pcore.api` from p2p. This module and the parameter modules it imports never import
torch: builders import the torch modules when a recipe asks for a component, so `p2p list` stays fast.
"""

from __future__ import annotations

from typing import Any

from p2pcore.api import hookimpl

from .dataset import CSVPairsParams, build_csv_pairs
from .discriminator import NoisyParams, build_noisy, noisy_facts
from .generator import SEResNetParams, build_se_resnet, se_resnet_facts
from .loss import TVParams, build_tv
from .norm import GroupParams, build_group
from .probe_task import ColorizeProbeParams, build_colorize_probe
from .task import ColorizeParams, build_colorize

__version__ = "0.1.0"
P2P_API = ">=1,<2"  # the p2p plugin API versions this package supports (p2pcore.api.API_VERSION)


@hookimpl
def p2p_register_norms(register: Any) -> None:
    register("group", build_group, params=GroupParams)


@hookimpl
def p2p_register_losses(register: Any) -> None:
    register("tv", build_tv, params=TVParams)


@hookimpl
def p2p_register_generators(register: Any) -> None:
    register("se_resnet", build_se_resnet, params=SEResNetParams, facts=se_resnet_facts)


@hookimpl
def p2p_register_discriminators(register: Any) -> None:
    register("noisy", build_noisy, params=NoisyParams, facts=noisy_facts)


@hookimpl
def p2p_register_datasets(register: Any) -> None:
    register("csv_pairs", build_csv_pairs, params=CSVPairsParams)


@hookimpl
def p2p_register_tasks(register: Any) -> None:
    register("colorize", build_colorize, params=ColorizeParams)
    register("colorize_probe", build_colorize_probe, params=ColorizeProbeParams)


@hookimpl
def p2p_add_commands(app: Any) -> None:
    from .stats_command import example_stats

    app.command("example-stats")(example_stats)
