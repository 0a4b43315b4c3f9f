"""The `p2p` command. Torch is imported only inside the commands that train or run networks."""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from p2pcore.errors import P2PError
from p2pcore.registry import KINDS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Image-to-image translation with conditional adversarial networks.")
console = Console()
errors = Console(stderr=True, soft_wrap=True)

COMMAND_MODULES: tuple[str, ...] = ("data", "evaluate", "study", "scaffold", "docs", "bench")

SetOption = Annotated[list[str] | None, typer.Option("--set", help="override a recipe key: key.path=value")]


@functools.cache
def _host() -> Any:
    from p2pcore.plugins import load_host

    return load_host(strict=os.environ.get("P2P_STRICT_PLUGINS", "") not in ("", "0"))


def _recipe(path: Path, overrides: list[str] | None, host: Any) -> Any:
    from p2pcore.recipe import load_recipe

    return load_recipe(path, host, overrides or ())


@app.command()
def run(recipe: Annotated[Path | None, typer.Argument(help="recipe TOML file (with --resume: optional, "
                                                       "the run's own recipe is used)")] = None,
        set_: SetOption = None,
        out: Annotated[Path | None, typer.Option(help="run directory (default runs/<recipe name>)")] = None,
        resume: Annotated[bool, typer.Option(help="continue the run in --out from its latest checkpoint")] = False,
        quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
        nproc: Annotated[int, typer.Option(min=1, help="processes on this machine (one per GPU), started by "
                                                       "PyTorch's launcher for data-parallel training")] = 1) -> None:
    """Train a model as a recipe describes, or continue a run with --resume."""
    import contextlib
    import shlex

    from p2pcore.engine.build.placement import launched_rank
    from p2pcore.progress import train_with_progress
    from p2pcore.rundir import check_run_dir, exclusive, safe_name

    if nproc > 1:
        args = [str(recipe)] if recipe else []
        args += [f"--set={item}" for item in set_ or []] + (["--out", str(out)] if out else [])
        raise typer.Exit(_launch(nproc, args + ["--resume"] * resume + ["--quiet"] * quiet))
    main_process = launched_rank() == 0
    host = _host()
    if recipe is None and not (resume and out):
        raise P2PError("give a recipe, or --resume --out RUN_DIR to continue a run", key="RECIPE",
                       hint="p2p run recipes/quickstart.toml")
    if resume:
        parsed, out_dir = _resumed_recipe(recipe, set_, out, host)
    else:
        parsed = _recipe(recipe, set_, host)
        out_dir = out or Path("runs") / safe_name(parsed.name or recipe.stem)
        if main_process:
            check_run_dir(out_dir, resume=False)
    source = str(recipe or out_dir / "recipe.toml")
    try:
        with exclusive(out_dir) if main_process else contextlib.nullcontext():
            result = train_with_progress(parsed, host, out_dir, resume=resume, quiet=quiet or not main_process,
                                         console=console)
    except P2PError as error:
        raise error.with_location(file=source) from None
    except KeyboardInterrupt:
        if not main_process:
            raise typer.Exit(130) from None
        if (out_dir / "checkpoints" / "latest.safetensors").exists():
            errors.print(f"interrupted: the latest checkpoint is in {out_dir / 'checkpoints'}; continue with "
                         f"p2p run --resume --out {shlex.quote(str(out_dir))}")
        else:
            errors.print("interrupted before the first checkpoint was written: nothing to resume; run the same "
                         "command again to start over")
        raise typer.Exit(130) from None
    summary = ", ".join(f"{k} {v:.4f}" for k, v in sorted(result.metrics.items()))
    if not main_process:
        return
    console.print(f"[green]done[/green]: {result.steps} steps, {result.epochs} epochs -> {out_dir}"
                  + (f" ({escape(summary)})" if summary else ""))


def _launch(nproc: int, run_args: list[str]) -> int:
    """Hand `p2p run` over to PyTorch's launcher with `nproc` processes on this machine; its exit code."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(["--standalone", f"--nproc-per-node={nproc}", "-m", "p2pcore", "run", *run_args])
    except ChildFailedError as failure:  # each process has printed its own error
        return max((f.exitcode for f in failure.failures.values()), default=1) or 1
    return 0


def _resumed_recipe(recipe: Path | None, overrides: list[str] | None, out: Path | None,
                    host: Any) -> tuple[Any, Path]:
    """The run's own recipe; a recipe or --set given as well may change only what can change mid-run."""
    from p2pcore.rundir import check_run_dir, resume_changes, safe_name

    if out is None:
        first = _recipe(recipe, None, host)
        out = Path("runs") / safe_name(first.name or recipe.stem)
    check_run_dir(out, resume=True)
    recorded = _recipe(out / "recipe.toml", None, host)
    if recipe is None and not overrides:
        return recorded, out
    given = _recipe(recipe or out / "recipe.toml", overrides, host)
    resume_changes(recorded.to_toml_dict(), given.to_toml_dict())
    return given.model_copy(update={"name": recorded.name}), out


@app.command()
def translate(checkpoint: Annotated[Path, typer.Argument(help="a p2p checkpoint (.safetensors)")],
              input: Annotated[Path, typer.Argument(help="an image file or a folder of images")],
              output: Annotated[Path, typer.Argument(help="output file, or folder (same file names)")],
              eval_: Annotated[bool, typer.Option("--eval", help="dropout off and batch-norm running "
                                                  "statistics, instead of the paper's test protocol")] = False,
              device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N")] = "auto",
              seed: Annotated[int, typer.Option(help="seed for dropout under the paper protocol")] = 0,
              direction: Annotated[str | None, typer.Option(help="a direction the task offers: a2b (default), "
                                                            "b2a for CycleGAN")] = None,
              style: Annotated[str | None, typer.Option(help="for tasks with styles (pix2pixhd): random or "
                                                        "cluster:K")] = None,
              styles: Annotated[Path | None, typer.Option(help="the styles file (`p2p cluster` writes one)")] = None,
              overwrite: Annotated[bool, typer.Option(help="replace output files that exist")] = False,
              fail_fast: Annotated[bool, typer.Option(help="stop at the first image that fails")] = False,
              batch_size: Annotated[int, typer.Option(min=1, help="images of one size (or tiles of one image) per "
                                                      "forward pass, where sharing a pass cannot change an "
                                                      "output: never with batch-statistics norm layers (batch "
                                                      "norm under the paper protocol) or random draws (dropout "
                                                      "under the paper protocol, a random style); there each "
                                                      "image has its own pass, seeded alike, so outputs are the "
                                                      "same for any batch size")] = 8,
              tile: Annotated[int | None, typer.Option(help="translate images larger than SIZE x SIZE as "
                                                 "overlapping tiles blended together: memory bounded by "
                                                 "the tile; SIZE a multiple of the generator's size "
                                                 "multiple", metavar="SIZE")] = None,
              overlap: Annotated[int | None, typer.Option(help="with --tile: at least PX pixels shared by "
                                                          "neighbouring tiles, less than SIZE/2 (default "
                                                          "SIZE/8)", metavar="PX")] = None,
              workers: Annotated[int | None, typer.Option(min=1, help="threads reading and writing files "
                                                          "while the networks run (default: up to 4)")] = None
              ) -> None:
    """Translate images with a checkpoint's networks, at each image's own size."""
    from p2pcore.engine.infer.pipeline import translate_files
    from p2pcore.engine.infer.translate import Translator, plan
    from p2pcore.progress import file_progress

    translator = Translator(checkpoint, _host(), device=device, protocol="eval" if eval_ else "paper", seed=seed,
                            direction=direction, style=style, styles=str(styles) if styles else None,
                            batch_size=batch_size, tile=tile, overlap=overlap)
    jobs = list(plan(input, output, translator.formats, overwrite=overwrite))  # the adapter says what it reads
    with file_progress(console, len(jobs), disable=len(jobs) < 2) as advance:
        outcome = translate_files(translator, jobs, fail_fast=fail_fast, workers=workers, on_progress=advance,
                                  on_error=render_error)
    failed, done = outcome.failed, outcome.written
    console.print(f"[green]translated[/green] {done} image(s) in {outcome.seconds:.1f} s ({outcome.rate:.1f} "
                  f"files/s) -> {output} ({translator.direction}, {translator.protocol} protocol"
                  f"{', weight average' if translator.averaged else ''}, {translator.device}, "
                  f"{translator.batching()})")
    if failed:
        raise P2PError(f"{len(failed)} of {len(jobs)} image(s) failed; the other {done} were written",
                       details=[f"{e.file}: {e.message}" for e in failed], hint="fix or remove the files listed")


@app.command()
def inspect(checkpoint: Annotated[Path, typer.Argument(help="a p2p checkpoint (.safetensors)")],
            as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """What a checkpoint holds: recipe, components and versions, step, epoch, parameter counts."""
    from p2pcore.inspect import summarize

    info = summarize(checkpoint)
    if as_json:
        console.print_json(json.dumps(info))
        return
    console.print(f"[bold]{checkpoint}[/bold]: step {info['step']}, epoch {info['epoch']}, "
                  f"p2p {info['p2p_version']}" + (f", from {info['source']}" if info.get("source") else ""))
    table = Table("kind", "name", "plugin", "version")
    for c in info["components"]:
        table.add_row(c["kind"], c["name"], c["distribution"], c["version"])
    console.print(table)
    table = Table("network", "parameters")
    for role, count in info["parameters"].items():
        table.add_row(role, f"{count:,}")
    console.print(table)
    console.print(f"resume state: {'yes' if info['resumable'] else 'no (weights only)'}")
    import tomli_w

    console.print(escape(tomli_w.dumps(info["recipe"])), highlight=False)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory (runs/<name>, or p2p run's --out)")]) -> None:
    """Write RUN_DIR/report.html: curves, sample grids by epoch, metrics, recipe and component versions."""
    from p2pcore.report import write_report

    console.print(f"wrote {escape(str(write_report(run_dir)))}", highlight=False)


@app.command()
def export(checkpoint: Annotated[Path, typer.Argument(help="a p2p checkpoint (.safetensors)")],
           output: Annotated[Path, typer.Argument(help="file to write (.onnx or .pt)")],
           format_: Annotated[str, typer.Option("--format", help="onnx or torchscript")] = "onnx",
           direction: Annotated[str | None, typer.Option(help="a direction the task offers (default: its "
                                                         "first, a2b)")] = None) -> None:
    """Export a translation direction for inference (dropout off, running statistics), dynamic H and W."""
    if format_ not in ("onnx", "torchscript"):
        raise P2PError(f"unknown export format {format_!r}", key="--format", hint="use onnx or torchscript")
    from p2pcore.engine.infer.export import export as run_export

    info = run_export(checkpoint, output, _host(), format_, direction)  # type: ignore[arg-type]
    console.print(f"[green]exported[/green] {output} ({format_}, {info['direction']}; input N x "
                  f"{info['in_channels']} x H x W, "
                  f"H and W multiples of {info['size_multiple']})")


@app.command()
def plugins(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Installed plugins, their versions and what they registered (or why they failed)."""
    host = _host()
    if as_json:
        console.print_json(json.dumps([vars(r) | {"components": list(r.components)} for r in host.records]))
        return
    from p2pcore.compat import offered

    table = Table("plugin", "distribution", "version", "status", "components", caption=offered())
    for r in host.records:
        style = {"ok": "green", "incompatible": "yellow"}.get(r.status, "red")
        note = escape(r.error) if r.error else f"[yellow]warning[/yellow]: {escape(r.warning)}" if r.warning else ""
        status = f"[{style}]{r.status}[/{style}]" + (f": {note}" if note else "")
        table.add_row(r.name, r.distribution, r.version, status, escape(", ".join(r.components)))
    console.print(table)


@app.command("list")
def list_(kind: Annotated[str | None, typer.Argument(help=", ".join(KINDS))] = None,
          pattern: Annotated[str | None, typer.Argument(help="wildcard on names, e.g. '*unet*'")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Registered components."""
    host = _host()
    specs = host.registry.search(kind, pattern)
    ambiguous = {(s.kind, s.name) for s in specs
                 if sum(o.name == s.name for o in host.registry.specs(s.kind)) > 1}
    rows = [{"kind": s.kind, "name": s.qualified_name if (s.kind, s.name) in ambiguous else s.name,
             "aliases": list(s.aliases), "plugin": s.distribution,
             "version": s.version, "summary": s.summary} for s in specs]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        console.print(f"no {kind or 'component'} matches {pattern!r}" if pattern else f"no {kind} is registered")
        return
    table = Table("kind", "name", "plugin", "summary")
    for row in rows:
        alias = f" ({', '.join(row['aliases'])})" if row["aliases"] else ""
        table.add_row(row["kind"], row["name"] + alias, f"{row['plugin']} {row['version']}", escape(row["summary"]))
    console.print(table)


@app.command()
def show(kind: Annotated[str, typer.Argument(help=", ".join(KINDS))],
         name: Annotated[str, typer.Argument(help="component name")]) -> None:
    """A component's parameters: types, defaults and descriptions."""
    from p2pcore.schema import describe_params

    spec = _host().registry.get(kind, name)
    console.print(f"[bold]{spec.kind} {spec.name}[/bold] from {spec.distribution} {spec.version}"
                  + (f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""))
    if spec.summary:
        console.print(escape(spec.summary))
    if spec.kind == "task":
        _show_task(spec.params().declare())
    rows = describe_params(spec.params)
    if not rows:
        console.print("no parameters")
        return
    table = Table("parameter", "type", "default", "description")
    for row in rows:
        table.add_row(*(escape(row[k]) for k in ("name", "type", "default", "description")))
    console.print(table)
    for fact, value in spec.describe_defaults().items():
        console.print(f"{fact}: {escape(str(value))}")


def _show_task(declared: Any) -> None:
    """What a recipe wires to a task: its roles, players, tensors and directions (defaults)."""
    table = Table("role (a model table)", "kind", "required", "player", "description")
    player_of = {r: name for name, player in declared.players.items() for r in player.roles}
    for role, r in declared.roles.items():
        table.add_row(role, r.kind, "yes" if r.required else "no", player_of.get(role, ""), escape(r.summary))
    console.print(table)
    console.print("tensors for loss terms: " + ", ".join(
        f"{name}" + (f" (needs {', '.join(needs)})" if needs else "") for name, needs in declared.tensors.items()),
        highlight=False)
    console.print("directions: " + ", ".join(f"{name} ({d.input} -> {d.output})" for name, d in
                                              declared.directions.items()), highlight=False)


@app.command()
def validate(recipe: Annotated[Path, typer.Argument(help="recipe TOML file")], set_: SetOption = None) -> None:
    """Check a recipe against the installed components without training."""
    host = _host()
    parsed = _recipe(recipe, set_, host)
    model = ", ".join(f"{role}={ref.name}" for role, ref in parsed.model.items())
    losses = ", ".join(f"{label}={spec.name}x{spec.weight:g}" for label, spec in parsed.loss.items())
    console.print(f"[green]ok[/green]: {recipe} (task {parsed.task.name}, data {parsed.data.name}, {model}; "
                  f"{losses})")


@app.command()
def schema(output: Annotated[Path | None, typer.Option("-o", "--output", help="write to a file")] = None) -> None:
    """JSON Schema of recipes, with the installed components' parameters, for editors."""
    from p2pcore.schema import recipe_schema

    text = json.dumps(recipe_schema(_host()), indent=2)
    if output:
        if output.is_dir():
            raise P2PError("the output is a folder", file=str(output), hint="give a file path, e.g. recipe.schema.json")
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text + "\n")
        except OSError as exc:
            raise P2PError(f"cannot write the schema: {exc.strerror}", file=str(output),
                           hint="choose a writable folder") from None
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text + "\n")


def _add_plugin_commands() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(f"p2pcore.commands.{module}").register(app)


def render_error(error: P2PError) -> None:
    errors.print(f"[bold red]error[/bold red]: {escape(error.message)}")
    if error.file:
        errors.print(f"  file: {escape(error.file)}")
    if error.key:
        errors.print(f"  key:  {escape(error.key)}")
    for line in error.details[:20]:
        errors.print(f"  - {escape(line)}")
    if error.hint:
        errors.print(f"  [cyan]hint[/cyan]: {escape(error.hint)}")


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """User-facing warnings (a skipped corrupt file, a resume from an older checkpoint) as one plain line."""
    errors.print(f"[yellow]warning[/yellow]: {escape(str(message))}")


def main() -> None:
    import warnings

    warnings.showwarning = _show_warning
    try:
        _add_plugin_commands()
        _host().manager.hook.p2p_add_commands(app=app)
        app()
    except P2PError as error:
        render_error(error)
        raise SystemExit(2) from None
