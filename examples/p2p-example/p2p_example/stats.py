"""What `p2p example-stats` computes: a recipe's [data] table (following `extends`), then per-channel
statistics of the first items of a split, accumulated in float64 so long splits do not drift."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from p2pcore.api import P2PError, load_host

MAX_EXTENDS = 16


def data_table(recipe: Path) -> Any:
    """The recipe's `data` value, looked up along its `extends` chain (the nearest recipe that has one)."""
    path = recipe
    for _ in range(MAX_EXTENDS):
        if not path.is_file():
            raise P2PError(f"no recipe at {path}", file=str(path), hint="give the path of a recipe TOML file")
        try:
            content = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise P2PError(f"not a TOML recipe: {exc}", file=str(path)) from None
        if "data" in content:
            return content["data"]
        if not isinstance(content.get("extends"), str):
            raise P2PError("the recipe names no dataset", file=str(recipe), key="data",
                           hint='add a [data] table, e.g. name = "synthetic_thermal"')
        path = path.parent / content["extends"]
    raise P2PError(f"`extends` links more than {MAX_EXTENDS} recipes", file=str(recipe), key="extends")


def channel_stats(table: Any, *, split: str, limit: int) -> dict[str, Any]:
    """Per image key and channel: mean, std, min and max over the first `limit` items of `split`."""
    import torch

    host = load_host()
    adapter = host.build("dataset", table, key="data")
    keys = ["a", "b", *(getattr(adapter, "channels", None) or {})]
    data = adapter.dataset(split, train=False)
    sums: dict[str, list[torch.Tensor]] = {}
    count = min(limit, len(data))
    for index in range(count):
        item = data[index]
        for key in (k for k in keys if isinstance(item.get(k), torch.Tensor)):
            x = item[key].to(torch.float64).flatten(1)
            found = [x.sum(1), (x * x).sum(1), x.min(1).values, x.max(1).values, torch.full_like(x[:, 0], x.shape[1])]
            old = sums.get(key)
            sums[key] = found if old is None else [old[0] + found[0], old[1] + found[1], old[2].minimum(found[2]),
                                                   old[3].maximum(found[3]), old[4] + found[4]]
    images = {}
    for key, (total, squares, low, high, n) in sums.items():
        mean = total / n
        std = (squares / n - mean * mean).clamp(min=0).sqrt()
        images[key] = [{"mean": float(m), "std": float(s), "min": float(lo), "max": float(hi)}
                       for m, s, lo, hi in zip(mean, std, low, high, strict=True)]
    name = table if isinstance(table, str) else table.get("name", "?") if isinstance(table, dict) else "?"
    return {"dataset": name, "split": split, "items": count, "images": images}
