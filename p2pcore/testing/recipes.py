"""`tiny_recipe`: the smallest valid training recipe, so a plugin's test changes only what it is about."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

TINY: dict[str, Any] = {
    "name": "tiny",
    "task": "pix2pix",
    "seed": 0,
    "data": {"name": "synthetic_thermal", "size": 32, "train_count": 4, "test_count": 2},
    "model": {
        "generator": {"name": "unet", "depth": 5, "ngf": 8},
        "discriminator": {"name": "patch", "n_layers": 2, "ndf": 8},
    },
    "loss": {"gan": {"name": "gan", "weight": 1.0}, "l1": {"name": "l1", "weight": 100.0}},
    "train": {"epochs": 1, "batch_size": 2, "num_workers": 0, "device": "cpu", "log_every": 1, "sample_count": 2,
              "checkpoint_minutes": 0.0},
}


def tiny_recipe(**changes: Any) -> dict[str, Any]:
    """A recipe dict for a 32 px synthetic pix2pix run with ngf 8, with `changes` merged in.

    Tables merge key by key, so ``tiny_recipe(train={"max_steps": 1})`` keeps the other train settings;
    a table naming another component replaces the old one whole (its parameters would not fit), and
    None removes a key: ``tiny_recipe(model={"discriminator": None}, loss={"gan": None})``."""
    return merged(TINY, changes)


def merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied as `tiny_recipe` describes; neither argument is modified."""
    out = copy.deepcopy(dict(base))
    for key, value in changes.items():
        old = out.get(key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(old, Mapping) and value.get("name", old.get("name")) == \
                old.get("name"):
            out[key] = merged(old, value)
        elif isinstance(value, Mapping) and isinstance(old, str) and value.get("name", old) == old:
            out[key] = merged({"name": old}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out
