"""`p2p cluster`: style clusters of a pix2pixhd checkpoint's instance encoder (imports no torch until run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def cluster(
    checkpoint: Annotated[Path, typer.Argument(help="a pix2pixhd checkpoint trained with an encoder")],
    data: Annotated[Path, typer.Argument(help="the dataset to encode: its folder (read as data.root of the "
                                        "checkpoint's dataset), or a recipe whose data table to read")],
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="clusters per semantic class")] = 10,
    out: Annotated[Path | None, typer.Option("--out", help="centres file (default: features_clustered_"
                                             "<k>.safetensors beside the checkpoint)")] = None,
    split: Annotated[str, typer.Option(help="the split to encode")] = "train",
    min_area: Annotated[float, typer.Option("--min-area", min=0.0, max=1.0,
                                            help="smallest share of its image an instance must cover")] = 1 / 64,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N")] = "auto",
    seed: Annotated[int, typer.Option(help="seeds the K-means restarts")] = 0,
) -> None:
    """K-means per semantic class over the encoded instance features of a dataset (pix2pixHD's styles).

    Example:
    p2p cluster runs/quickstart_hd/checkpoints/latest.safetensors recipes/quickstart_hd.toml --k 10
    """
    from rich.console import Console

    from p2p_tasks.clustering import cluster as run

    written, counts = run(checkpoint, data, out, k=k, split=split, min_area=min_area, device=device, seed=seed)
    Console().print(f"[green]clustered[/green] {sum(counts.values())} instances of {len(counts)} classes into "
                    f"at most {k} styles each -> {written}")
