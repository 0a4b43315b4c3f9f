"""Shared fixtures: the plugin host and the location of the shared real data (optional)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pcore import Host, load_host

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def host() -> Host:
    return load_host()


def needs_shared(*parts: str) -> pytest.MarkDecorator:
    """Skip a test cleanly when ../shared (real data, reference fixtures) is not beside the repo."""
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present")
