"""`p2p data check`: scan the dataset a recipe names, without training.

Torch is imported inside the command (building an adapter may import it), so `p2p --help` stays fast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from p2pcore.atomicfile import write_text_atomically
from p2pcore.commands import common
from p2pcore.commands.common import JsonOption, SetOption, console, plain

data_app = typer.Typer(no_args_is_help=True, help="Inspect the dataset a recipe names.\n\n"
                                                  "Example:\np2p data check recipes/quickstart.toml")

SHOWN_PROBLEMS = 20
SHOWN_WARNINGS = 8


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def _report_dict(report: Any) -> dict[str, Any]:
    return {"adapter": getattr(report, "adapter", ""), "split": getattr(report, "split", ""),
            "root": getattr(report, "root", ""), "pairs": report.pairs, "ok": report.ok,
            "problems": list(report.problems), "warnings": list(report.warnings),
            "facts": dict(getattr(report, "facts", {}))}


def _print_report(report: Any, recipe: Path, deep: bool) -> None:
    status = "[green]ok[/green]" if report.ok else f"[red]{len(report.problems)} problem(s)[/red]"
    table = Table(title=f"{plain(str(recipe))}: data check ({'full decode' if deep else 'headers'})",
                  show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    info = _report_dict(report)
    rows = [("adapter", info["adapter"]), ("split", info["split"]), ("root", info["root"]),
            ("pairs", str(info["pairs"])), *info["facts"].items()]
    for key, value in rows:
        if value != "":
            table.add_row(plain(str(key)), plain(str(value)))
    table.add_row("status", status)
    console.print(table)
    for title, lines, shown, style in (("problems", report.problems, SHOWN_PROBLEMS, "red"),
                                       ("warnings", report.warnings, SHOWN_WARNINGS, "yellow")):
        if not lines:
            continue
        console.print(f"[{style}]{title}[/{style}]:")
        for line in lines[:shown]:
            console.print(f"  - {plain(line)}")
        if len(lines) > shown:
            console.print(f"  ... and {len(lines) - shown} more ({title} listed with --json)")
    if not report.ok:
        console.print("[cyan]hint[/cyan]: fix or remove the files named above"
                      + ("" if deep else "; --deep also decodes every image"))


@data_app.command("check")
def check(recipe: Annotated[Path, typer.Argument(help="recipe TOML file")],
          split: Annotated[str, typer.Option(help="train or test")] = "train",
          deep: Annotated[bool, typer.Option("--deep", help="decode every image, not only the headers")] = False,
          set_: SetOption = None,
          as_json: JsonOption = False) -> None:
    """Count pairs and list unmatched, unreadable, mismatched or unexpected files; exit 2 on problems.

    Example:
    p2p data check recipes/quickstart.toml --deep
    """
    host = common.host()
    parsed = common.load_recipe(recipe, set_, host)
    adapter = host.build("dataset", parsed.data, key="data")
    scan = getattr(adapter, "check", None)
    if scan is None:
        typer.echo(f"dataset {parsed.data.name!r} offers no check")
        return
    report = scan(split, deep=deep)
    if as_json:
        typer.echo(json.dumps(_report_dict(report), indent=2))
    else:
        _print_report(report, recipe, deep)
    if not report.ok:
        raise typer.Exit(2)


# -- p2p data register ---------------------------------------------------------------------------------------

ALIGN_HEADER = "[data.align]"


def _raw_pairs(adapter: Any, split: str, name: str) -> tuple[Any, list[str]]:
    """The split's pairs at native size without any alignment, from an adapter that offers them."""
    from p2pcore.errors import P2PError

    raw = getattr(adapter, "raw_pairs", None)
    if raw is None:
        raise P2PError(f"dataset {name!r} cannot be registered: it offers no raw pairs of two cameras",
                       key="data.name", hint="registration applies to paired adapters of two cameras "
                                             "(paired_folders, kaist)")
    pairs, names = raw(split)
    if not len(pairs):
        raise P2PError(f"the {split} split holds no pairs", key="data.root",
                       hint="run `p2p data check RECIPE` to see what the adapter finds")
    return pairs, list(names)


def _align_lines(text: str) -> tuple[int, int] | None:
    """The line range [start, end) of the file's `[data.align]` table and its sub-tables when they follow each
    other (the comment and blank lines before the next table kept out), or None."""
    lines = text.splitlines(keepends=True)
    heads = [(number, match.group(1).replace(" ", "")) for number, line in enumerate(lines)
             if (match := re.match(r"\s*\[([^\[\]]+)\]", line))]
    inside = [i for i, (_, name) in enumerate(heads) if name == "data.align" or name.startswith("data.align.")]
    if not inside or inside != list(range(inside[0], inside[-1] + 1)):
        return None
    start = heads[inside[0]][0]
    stop = heads[inside[-1] + 1][0] if inside[-1] + 1 < len(heads) else len(lines)
    while stop > start + 1 and (not lines[stop - 1].strip() or lines[stop - 1].lstrip().startswith("#")):
        stop -= 1
    while start > 0 and lines[start - 1].lstrip().startswith("#"):  # the block's own comment
        start -= 1
    return start, stop


def _has_align(text: str) -> bool:
    import tomllib

    data = tomllib.loads(text)
    return isinstance(data.get("data"), dict) and "align" in data["data"]


def _refuse_existing(recipe: Path) -> None:
    from p2pcore.errors import P2PError

    raise P2PError("the recipe already has an align block", file=str(recipe), key="data.align",
                   hint="pass --overwrite to replace it, or drop --write to only print the new one")


def _write_block(recipe: Path, block: str, overwrite: bool) -> None:
    """The `[data.align]` block written into the recipe file, the rest of the file kept; atomically."""
    import tomllib

    from p2pcore.errors import P2PError

    text = recipe.read_text(encoding="utf-8")
    existing = _has_align(text)
    if existing and not overwrite:
        _refuse_existing(recipe)
    if existing:
        where = _align_lines(text)
        if where is None:
            raise P2PError("the recipe's align block is not a [data.align] table (an inline table or dotted "
                           "keys), so it cannot be replaced in place", file=str(recipe), key="data.align",
                           hint="delete it from the file by hand and run the command again")
        lines = text.splitlines(keepends=True)
        text = "".join(lines[:where[0]]) + block + "".join(lines[where[1]:])
    else:
        text = text + ("" if text.endswith("\n") or not text else "\n") + "\n" + block
    tomllib.loads(text)  # what is written must parse
    write_text_atomically(recipe, text, what="the recipe", hint="the recipe is unchanged")


def _toml_value(value: Any) -> str:
    """One value of the block on one line (tomli_w spreads every nested array over many lines)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} in the align block")


def _block_text(table: dict[str, Any]) -> str:
    """The `[data.align]` block as TOML text, with a comment that says where it came from."""
    import tomllib

    lines = ["# the camera pair's registration, written by `p2p data register`: a is warped onto b's grid",
             "# and both are cropped to the common field of view before the resize and crop", ALIGN_HEADER]
    lines += [f"{key} = {_toml_value(value)}" for key, value in table.items() if key != "residual"]
    if table.get("residual"):
        lines += ["", "[data.align.residual]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in table["residual"].items()]
    text = "\n".join(lines) + "\n"
    if tomllib.loads(text)["data"]["align"] != table:  # a figure that TOML would change
        raise RuntimeError("the align block does not read back as written")
    return text


ModelOption = Annotated[str, typer.Option("--model", help="homography, affine, similarity or translation")]


@data_app.command("register")
def register_pairs(recipe: Annotated[Path, typer.Argument(help="recipe TOML file")],
                   set_: SetOption = None,
                   points: Annotated[Path | None, typer.Option(
                       "--points", help="a text file of point pairs, one a line: xa ya xb yb (pixels of a, "
                                        "then of b); without it the estimate uses the images")] = None,
                   model: ModelOption = "homography",
                   pairs: Annotated[int, typer.Option("--pairs", min=1, help="pairs the image estimate uses at "
                                                      "most, spread over the split")] = 32,
                   split: Annotated[str, typer.Option(help="the split whose pairs are used")] = "train",
                   write: Annotated[bool, typer.Option("--write", help="write the block into the recipe "
                                                       "file")] = False,
                   overwrite: Annotated[bool, typer.Option("--overwrite", help="with --write: replace an "
                                                           "existing align block")] = False) -> None:
    """Estimate the transform that maps each a image (thermal) onto its b image (colour) of a camera rig,
    print its residual and the [data.align] block, and with --write put the block into the recipe.

    Example:
    p2p data register recipes/thermal2rgb.toml --write
    """
    import torch

    from p2pcore.alignment import estimate_alignment, estimate_from_points, read_points

    host = common.host()
    parsed = common.load_recipe(recipe, set_, host)
    if write and not overwrite and _has_align(recipe.read_text(encoding="utf-8")):
        _refuse_existing(recipe)  # before the work, not after it
    adapter = host.build("dataset", parsed.data, key="data")
    raw, names = _raw_pairs(adapter, split, parsed.data.name)
    if points is not None:
        a, b = raw[0]
        points_a, points_b = read_points(points)
        alignment = estimate_from_points(points_a, points_b, size_a=(a.shape[-1], a.shape[-2]),
                                         size_b=(b.shape[-1], b.shape[-2]), model=model, file=str(points))
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # many small operations: one thread is fastest
        try:
            alignment = estimate_alignment(raw, model=model, names=names, max_pairs=pairs)
        finally:
            torch.set_num_threads(threads)
    table = alignment.to_table()
    console.print(f"[bold]{plain(str(recipe))}[/bold]: registration of a onto b from "
                  + (f"{len(points_a)} point pairs" if points is not None else
                     f"{alignment.residual.get('pairs', 0)} of {len(raw)} {split} pairs"))
    for line in alignment.describe():
        console.print(f"  {plain(line)}")
    block = _block_text(table)
    console.print(plain(block, lines=True), end="")
    if write:
        _write_block(recipe, block, overwrite=overwrite)
        console.print(f"[green]wrote[/green] {plain(ALIGN_HEADER)} into {plain(str(recipe))}")
    else:
        console.print("[cyan]hint[/cyan]: --write puts the block into the recipe")

