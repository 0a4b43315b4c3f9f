"""`p2p bench RECIPE`: training and translation speed, peak memory and the step's FLOP roofline of a recipe's
networks on its device; `--options` times each engine option off and on. Torch is imported inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from p2pcore.atomicfile import write_text_atomically
from p2pcore.commands import common
from p2pcore.commands.common import SetOption, console, plain, renamed
from p2pcore.errors import P2PError

if TYPE_CHECKING:
    from p2pcore.engine.bench.benchmark import BenchResult


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(recipe: Annotated[Path, typer.Argument(help="recipe TOML file")],
          steps: Annotated[int, typer.Option(min=1, help="timed training steps (and translations)")] = 10,
          warmup: Annotated[int, typer.Option(min=0, help="untimed steps first")] = 2,
          set_: SetOption = None,
          options: Annotated[bool, typer.Option("--options", help="also time each engine option (channels_last, "
                                                "compile, bf16 on CUDA) off and on, in alternating rounds")] = False,
          rounds: Annotated[int, typer.Option(min=1, help="alternating rounds per option with --options")] = 3,
          out: Annotated[Path | None, typer.Option(help="also write the figures to this JSON file")] = None,
          json_: Annotated[Path | None, typer.Option("--json", hidden=True)] = None) -> None:
    """Seconds per training step, images/s, peak memory and FLOPs against this device's measured matmul rate.

    Example:
    p2p bench recipes/quickstart.toml --steps 5 --out bench.json
    """
    from p2pcore.engine.bench.benchmark import measure

    if json_ is not None:  # --json elsewhere asks for JSON on the screen
        renamed("--json FILE", "--out FILE")
        out = out or json_

    if not recipe.is_file():
        raise P2PError("recipe not found", file=str(recipe),
                       hint="give a recipe TOML file, e.g. recipes/quickstart.toml")
    host = common.host()
    overrides = [*(set_ or []), "train.num_workers=0"]
    result = measure(recipe, host, overrides, steps=steps, warmup=warmup)
    if options:
        import torch

        from p2pcore.engine.bench.options import compare_options

        result.options = compare_options(recipe, host, overrides, torch.device(result.device), steps=steps,
                                         warmup=warmup, rounds=rounds)
    show(result)
    if out:
        write_text_atomically(out, json.dumps(result.to_json(), indent=2) + "\n", what="the figures")
        console.print(f"wrote {plain(out)}", highlight=False)


def show(result: BenchResult) -> None:
    """The figures as two tables: the step and its roofline, then the options."""
    h, w = result.image_size
    table = Table(title=f"{result.recipe}: {result.device}, {result.precision}, batch {result.batch_size} of "
                        f"{h} x {w}, torch {result.torch_version}, {result.threads} threads", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("training step (best / median)", f"{result.train_ms_best:.1f} / {result.train_ms_median:.1f} ms"),
        ("training images/s (median)", f"{result.train_images_per_s:.1f}"),
        (f"translation images/s ({result.direction}, eval protocol)", f"{result.infer_images_per_s:.1f}"),
        (f"peak memory ({result.memory_how})", f"{result.memory_bytes / 2 ** 20:.0f} MiB"),
        ("step FLOPs (forward + backward, both players)", f"{result.step_flops / 1e9:.2f} GFLOP"),
        ("achieved FLOP/s (median step)", f"{result.achieved_flops_per_s / 1e9:.1f} GFLOP/s"),
        (f"matmul limit ({result.matmul_size}^2 torch.mm, measured)", f"{result.matmul_flops_per_s / 1e9:.1f} GFLOP/s"),
        ("fraction of the matmul limit", f"{result.fraction_of_matmul:.2f}"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if not result.options:
        return
    table = Table("option", "off ms/step", "on ms/step", "speed-up", title="engine options (best of alternating "
                  "rounds)", title_justify="left")
    for o in result.options:
        if o.note:
            table.add_row(f"{o.key} = {o.value}", o.note, "", "")
        else:
            table.add_row(f"{o.key} = {o.value}", f"{o.off_ms:.1f}", f"{o.on_ms:.1f}", f"{o.speedup:.2f}x")
    console.print(table)
