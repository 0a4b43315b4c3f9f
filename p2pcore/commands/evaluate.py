"""`p2p eval`: a checkpoint's metrics over a dataset split, as a JSON file, a Markdown table and a printed table.

The metrics are the checkpoint's recipe's `[eval]` unless `--metric` names others; torch is imported inside.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from p2pcore.atomicfile import check_folder_writable, write_text_atomically
from p2pcore.commands import common
from p2pcore.commands.common import OverlapOption, TileOption, console, plain, protocol_of
from p2pcore.errors import P2PError
from p2pcore.rundir import RunDir


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)


def parse_metric(text: str) -> Any:
    """`psnr`, or a TOML inline table with `name` and parameters: `{ name = "fcn_score", segmenter = ... }`."""
    text = text.strip()
    if not text.startswith("{"):
        return text
    try:
        return tomllib.loads(f"metric = {text}")["metric"]
    except tomllib.TOMLDecodeError as exc:
        raise P2PError(f"--metric {text!r} is not a TOML inline table: {exc}", key="--metric",
                       hint='write a name (psnr) or a table: --metric \'{ name = "fcn_score", segmenter = '
                            '{ name = "espnet", weights = "espnet.pth" } }\'') from None


def evaluate(checkpoint: Annotated[Path | None, typer.Argument(help="a p2p checkpoint (.safetensors); not with "
                                                                   "--pred")] = None,
             data: Annotated[Path | None, typer.Option(help="the dataset's root folder, if not the recipe's")] = None,
             split: Annotated[str | None, typer.Option(help="the split evaluated (default: the recipe's "
                                                       "[eval] split, else test)")] = None,
             metric: Annotated[list[str] | None, typer.Option(help="a metric instead of the recipe's [eval] ones: a "
                                                              "name or a TOML inline table; repeatable")] = None,
             direction: Annotated[list[str] | None, typer.Option(help="a direction to evaluate (default: all); "
                                                                 "repeatable")] = None,
             max_items: Annotated[int | None, typer.Option(min=0, help="the first N items only (0: all)")] = None,
             batch_size: Annotated[int | None, typer.Option(min=1, help="images per forward pass")] = None,
             protocol: common.ProtocolOption = "paper",
             device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N")] = "auto",
             seed: Annotated[int, typer.Option(help="seed for dropout under the paper protocol")] = 0,
             out: Annotated[Path | None, typer.Option(help="where the .json and .md go (default: the run's eval/ "
                                                      "folder)")] = None,
             load_size: common.LoadSizeOption = None,
             scale_width: common.ScaleWidthOption = None,
             keep_model_size: common.KeepModelSizeOption = False,
             tile: TileOption = None,
             overlap: OverlapOption = None,
             pred: Annotated[Path | None, typer.Option(help="a folder of outputs made elsewhere, scored against "
                                                       "--real instead of a checkpoint's")] = None,
             real: Annotated[Path | None, typer.Option(help="with --pred: the real images, matched by file "
                                                       "stem")] = None,
             input_: Annotated[Path | None, typer.Option("--input", help="with --pred: what was translated, for "
                                                         "metrics that read it (the FCN-score's label maps)")] = None,
             eval_: Annotated[bool, typer.Option("--eval-protocol", hidden=True)] = False) -> None:
    """Score a checkpoint with metrics over a dataset split; writes a JSON file and a Markdown table.

    The split's items come as the recipe's data preprocessing gives test items (the whole image); --load-size or
    --scale-width give the generator each item at that size, its output resized back to the item's size to be
    scored (bicubic for images, nearest for label maps), or the real image resized to the model's with
    --keep-model-size. --tile translates items larger than a tile as overlapping tiles, as p2p translate does,
    so a large image is scored in memory bounded by the tile.

    With --pred and --real instead of a checkpoint, two folders are scored: outputs made elsewhere against the
    real images with the same file stems, with metrics that need no checkpoint (sizes must match; files
    without a partner are listed). The figures go to --out when given.

    Example:
    p2p eval runs/quickstart/checkpoints/latest.safetensors --metric psnr --metric ssim
    p2p eval --pred results/fake_B --real results/real_B --metric psnr --metric ssim
    """
    if pred is not None or real is not None:
        if tile is not None or overlap is not None:
            raise P2PError("--tile tiles a checkpoint's translations; --pred scores images made already",
                           key="--tile", hint="drop --tile and --overlap: the folders' images are not translated")
        _evaluate_folders(checkpoint, pred, real, input_, metric or [], device, out)
        return
    if checkpoint is None:
        raise P2PError("give a checkpoint, or two folders with --pred and --real", key="CHECKPOINT",
                       hint="p2p eval runs/quickstart/checkpoints/latest.safetensors --metric psnr")
    from p2pcore.engine.evaluate.scoring import evaluate_checkpoint

    overrides: dict[str, Any] = {}
    if split is not None:
        overrides["split"] = split
    if metric:
        overrides["metrics"] = [parse_metric(m) for m in metric]
    if direction:
        overrides["directions"] = direction
    if max_items is not None:
        overrides["max_items"] = max_items
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    target = out or _default_folder(checkpoint)
    _check_out(target, given=out is not None)
    result = evaluate_checkpoint(checkpoint, common.host(), overrides, data={"root": str(data)} if data else None,
                                 device=device, seed=seed, mode=protocol_of(protocol, eval_, "--eval-protocol"),
                                 load_size=load_size, scale_width=scale_width, keep_model_size=keep_model_size,
                                 tile=tile, overlap=overlap)
    _report(result, target, f"{checkpoint.stem}_{result.split}",
            f"{checkpoint.name}: {result.split} split",
            f"{plain(checkpoint.name)}: {result.items} items of {plain(result.split)} ({result.seconds:.1f} s)")


def _evaluate_folders(checkpoint: Path | None, pred: Path | None, real: Path | None, given: Path | None,
                      metrics: list[str], device: str, out: Path | None) -> None:
    """`p2p eval --pred DIR --real DIR`: no checkpoint, the two folders matched by file stem."""
    if checkpoint is not None:
        raise P2PError("a checkpoint and --pred: score one or the other", key="--pred",
                       hint="drop the checkpoint to score folders, or --pred/--real to score the checkpoint")
    if pred is None or real is None:
        raise P2PError("--pred and --real go together", key="--real" if real is None else "--pred",
                       hint="p2p eval --pred results/fake_B --real results/real_B --metric psnr")
    if out is not None:
        _check_out(out, given=True)
    from p2pcore.engine.evaluate.folders import evaluate_folders

    folders = {"--pred": pred, "--real": real, **({"--input": given} if given else {})}
    result, matched = evaluate_folders(folders, [parse_metric(m) for m in metrics], common.host(), device=device)
    for option, files in matched.unmatched.items():
        if files:
            shown = ", ".join(plain(f.name) for f in files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10
                                                                    else "")
            console.print(f"not scored: {len(files)} file(s) of {option} without a partner: {shown}")
    _report(result, out, f"{pred.name}_vs_{real.name}", f"{pred} against {real}",
            f"{plain(str(pred))} against {plain(str(real))}: {result.items} pairs ({result.seconds:.1f} s)")


def _report(result: Any, target: Path | None, stem: str, heading: str, title: str) -> None:
    """The figures printed under `title`, and written as `<stem>.json` and `<stem>.md` (under `heading`) in
    `target` when there is one."""
    from p2pcore.engine.evaluate.scoring import markdown, table

    shown = Table(title=title, title_justify="left")
    for column in ("figure", "value", "better"):
        shown.add_column(column, justify="right" if column == "value" else "left")
    for row in table(result):
        shown.add_row(*map(plain, row))
    console.print(shown)
    if target is not None:
        result.write(target / f"{stem}.json")
        write_text_atomically(target / f"{stem}.md", markdown(result, heading), what="the evaluation's table",
                              hint=f"{stem}.json is written")
        console.print(f"wrote {plain(str(target / stem))}.json and .md")


def _check_out(target: Path, *, given: bool) -> None:
    """The folder the figures go to must take files: checked before scoring, so no scoring is done in vain."""
    check_folder_writable(target, what="the evaluation", hint="give --out a writable folder" if given else
                          "give --out a writable folder for the figures")


def _default_folder(checkpoint: Path) -> Path:
    """`RUN/eval` for a checkpoint in `RUN/checkpoints`, else the checkpoint's own folder."""
    run = RunDir.of_checkpoint(checkpoint)
    return run.evaluations if run else checkpoint.resolve().parent
