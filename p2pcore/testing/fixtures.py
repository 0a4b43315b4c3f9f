"""The pytest fixtures of `p2pcore.testing`, loaded through its `pytest11` entry point."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from p2pcore.plugins import Host
from p2pcore.testing.hosts import Plugin, host_with

MARKER = "p2p_plugins"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(*plugins): modules (or importable module names) the p2p_host "
                                       "fixture registers besides the installed plugins")


@pytest.fixture(scope="session")
def _p2p_hosts() -> dict[tuple, Host]:
    return {}


@pytest.fixture
def p2p_host_with(_p2p_hosts: dict[tuple, Host]) -> Callable[..., Host]:
    """Make a host with the installed plugins and the given not-yet-installed ones (modules, module
    names or (name, module) pairs); hosts are shared across a session, per set of plugins."""

    def make(*plugins: Plugin) -> Host:
        key = tuple(p if isinstance(p, str | tuple) else p.__name__ for p in plugins)
        if key not in _p2p_hosts:
            _p2p_hosts[key] = host_with(*plugins)
        return _p2p_hosts[key]

    return make


@pytest.fixture
def p2p_host(request: pytest.FixtureRequest, p2p_host_with: Callable[..., Host]) -> Host:
    """The installed plugins, plus those named by a ``@pytest.mark.p2p_plugins(...)`` marker."""
    marker = request.node.get_closest_marker(MARKER)
    return p2p_host_with(*(marker.args if marker else ()))
