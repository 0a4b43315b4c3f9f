"""`assert_refused`: a test that a recipe is refused by validation, at the TOML key a user must fix."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import load_recipe, validate_recipe


def assert_refused(host: Host, recipe: Mapping[str, Any] | str | Path, *, key: str | None = None,
                   match: str | None = None, overrides: Iterable[str] = ()) -> P2PError:
    """Assert that `p2p validate` refuses `recipe` (a dict, or a TOML file read with `extends` and
    `overrides` as ``--set`` gives them) and return the error.

    `key` is the dotted TOML key the error must name (``task.nce_layers``); `match` a regular expression
    searched in the message and hint. A recipe that validates, or an error of another kind (a traceback
    for the user), fails the test with what happened instead."""
    try:
        if isinstance(recipe, Mapping):
            if overrides:
                raise ValueError("overrides apply to a recipe file; merge changes into a dict recipe instead")
            validate_recipe(recipe, host)
        else:
            load_recipe(recipe, host, overrides)
    except P2PError as error:
        if key is not None and error.key != key:
            raise AssertionError(f"the recipe was refused at key {error.key!r}, not {key!r}: {error.message}") \
                from error
        text = "\n".join(part for part in (error.message, error.hint or "", *error.details) if part)
        if match is not None and not re.search(match, text):
            raise AssertionError(f"the refusal does not match {match!r}: {text}") from error
        return error
    raise AssertionError("the recipe validates, but was expected to be refused"
                         + (f" at key {key!r}" if key else ""))
