"""`p2p example-stats RECIPE`: per-channel statistics of the dataset a recipe names. The command is defined
here without torch (`p2p --help` runs every plugin's `p2p_add_commands`); stats.py does the counting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def example_stats(
    recipe: Annotated[Path, typer.Argument(help="a recipe TOML file; its [data] table is read")],
    split: Annotated[str, typer.Option(help="train or test")] = "test",
    limit: Annotated[int, typer.Option(min=1, help="items read at most")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Mean, standard deviation, minimum and maximum of each channel of a dataset's images, in [-1, 1]."""
    from .stats import channel_stats, data_table

    table = data_table(recipe)
    stats = channel_stats(table, split=split, limit=limit)
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    typer.echo(f"{recipe}: {stats['items']} {split} item(s) of {stats['dataset']}")
    for key, channels in stats["images"].items():
        for index, c in enumerate(channels):
            typer.echo(f"  {key}[{index}]  mean {c['mean']:+.3f}  std {c['std']:.3f}  "
                       f"min {c['min']:+.3f}  max {c['max']:+.3f}")
