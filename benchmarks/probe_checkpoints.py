"""Crafted bad checkpoints through every command that reads one: how each ends.

Trains a tiny pix2pix run (32 px, 4 images, 2 steps), then writes variants of its checkpoint that are wrong
in one way each (tensor shapes and dtypes, missing tensors, optimiser hyperparameters and values, huge
strings and integers in the metadata, sparse files declaring huge tensors, truncated files) and runs each
through ``p2p inspect``, ``p2p translate``, ``p2p export``, ``p2p eval`` and ``p2p run --resume`` in a worker
process under ``ulimit -v 8000000`` (one per command, or with ``--isolated`` one per command and file; a
worker killed by a signal is charged with its file and replaced). Every outcome is counted: a clean refusal
(exit 2, no traceback), a traceback, a signal, or a silent success (exit 0 on a bad file). The good
checkpoint is run too, and must succeed everywhere. Usage::

    python benchmarks/probe_checkpoints.py [--work DIR] [--jobs 2] [--only NAME ...] [--commands inspect ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from p2pcore.checkpoint.format import DTYPE_BYTES

RECIPE = """[data]
name = "synthetic_thermal"
size = 32
train_count = 4
test_count = 1
[model.generator]
name = "unet"
depth = 5
ngf = 8
[model.discriminator]
name = "patch"
ndf = 8
n_layers = 2
[loss]
gan = { name = "gan" }
l1 = { name = "l1", weight = 100.0 }
[train]
epochs = 1
batch_size = 2
num_workers = 0
"""
MEMORY_KB = 8_000_000
GiB = 1024 ** 3


# -- a checkpoint as parts: tensors (dtype, shape, bytes) and metadata strings -----------------------------------

@dataclass
class Raw:
    tensors: dict[str, tuple[str, list[int], bytes]]
    metadata: dict[str, str]
    sparse: dict[str, tuple[str, list[int]]]  # tensors declared but not written: the file is extended sparsely

    @classmethod
    def read(cls, path: Path) -> Raw:
        data = path.read_bytes()
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + length])
        body = data[8 + length:]
        metadata = header.pop("__metadata__")
        tensors = {name: (e["dtype"], e["shape"], body[e["data_offsets"][0]:e["data_offsets"][1]])
                   for name, e in header.items()}
        return cls(tensors, metadata, {})

    def copy(self) -> Raw:
        return Raw(dict(self.tensors), dict(self.metadata), dict(self.sparse))

    def meta(self, key: str) -> object:
        return json.loads(self.metadata[key])

    def set_meta(self, key: str, value: object) -> None:
        self.metadata[key] = json.dumps(value)

    def write(self, path: Path) -> None:
        header: dict[str, object] = {"__metadata__": self.metadata}
        offset = 0
        for name, (dtype, shape, blob) in self.tensors.items():
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
            offset += len(blob)
        body_end = offset
        for name, (dtype, shape) in self.sparse.items():
            size = DTYPE_BYTES[dtype]
            for n in shape:
                size *= n
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        with path.open("wb") as f:
            f.write(struct.pack("<Q", len(text)) + text)
            for _, _, blob in self.tensors.values():
                f.write(blob)
            if offset > body_end:
                f.truncate(8 + len(text) + offset)  # a sparse file: the declared bytes cost no disk


# -- the cases -----------------------------------------------------------------------------------------------

def first(raw: Raw, prefix: str, suffix: str = "") -> str:
    return next(n for n, (d, s, _) in raw.tensors.items() if n.startswith(prefix) and n.endswith(suffix)
                and d == "F32" and len(s) >= 1 and s[0] > 1)


def reshape(name_of: Callable[[Raw], str], shape: Callable[[list[int]], list[int]]) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        name = name_of(raw)
        dtype, old, blob = raw.tensors[name]
        new = shape(old)
        count = 1
        for n in new:
            count *= n
        size = count * DTYPE_BYTES[dtype]
        raw.tensors[name] = (dtype, new, (blob * (size // max(len(blob), 1) + 1))[:size])
    return change


def retype(name_of: Callable[[Raw], str], dtype: str) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        name = name_of(raw)
        _, shape, blob = raw.tensors[name]
        count = len(blob) // 4
        raw.tensors[name] = (dtype, shape, bytes(count * DTYPE_BYTES[dtype]))
    return change


def drop(name_of: Callable[[Raw], str]) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        del raw.tensors[name_of(raw)]
    return change


def group(player: str, **values: object) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        optim = raw.meta("optim")
        optim[player]["param_groups"][0].update(values)
        raw.set_meta("optim", optim)
    return change


def meta_text(key: str, text: str) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        raw.metadata[key] = text
    return change


def meta_edit(key: str, edit: Callable[[object], object]) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        raw.set_meta(key, edit(raw.meta(key)))
    return change


def values(name_of: Callable[[Raw], str], number: float) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        name = name_of(raw)
        dtype, shape, blob = raw.tensors[name]
        raw.tensors[name] = (dtype, shape, struct.pack("<f", number) + blob[4:])
    return change


def sparse(name: str, dtype: str, shape: list[int]) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        raw.sparse[name] = (dtype, shape)
    return change


def many_sparse(count: int, gib: int) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        for i in range(count):
            raw.sparse[f"net.generator.extra{i}"] = ("F32", [gib * GiB // 4])
    return change


def recipe_string(chars: int) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        recipe = raw.meta("recipe")
        recipe["description"] = "x" * chars
        raw.set_meta("recipe", recipe)
    return change


def ema_copy(broken: bool) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        for name, value in list(raw.tensors.items()):
            if name.startswith("net.generator."):
                raw.tensors["ema." + name[4:]] = value
        if broken:
            reshape(lambda r: first(r, "ema.generator.", "weight"), lambda s: [s[0] - 1, *s[1:]])(raw)
    return change


G_WEIGHT = lambda r: first(r, "net.generator.", "weight")  # noqa: E731
D_WEIGHT = lambda r: first(r, "net.discriminator.", "weight")  # noqa: E731
AVG = lambda r: first(r, "optim.generator.", "exp_avg")  # noqa: E731
AVG_SQ = lambda r: first(r, "optim.generator.", "exp_avg_sq")  # noqa: E731
STEP = lambda r: "optim.generator.0.step"  # noqa: E731
SHRINK = lambda s: [s[0] - 1, *s[1:]]  # noqa: E731

CASES: dict[str, Callable[[Raw], None]] = {
    # shapes
    "optim_exp_avg_grown": reshape(AVG, lambda s: [s[0] * 4, *s[1:]]),
    "optim_exp_avg_shrunk": reshape(AVG, SHRINK),
    "optim_two_shrunk": lambda r: (reshape(AVG, SHRINK)(r), reshape(AVG_SQ, SHRINK)(r)),
    "optim_step_5_elements": reshape(STEP, lambda s: [5]),
    "optim_exp_avg_missing": drop(AVG),
    "optim_state_of_unlisted_param": lambda r: r.tensors.update(
        {f"optim.generator.999.{k}": v for k, v in ((k.rsplit(".", 1)[1], r.tensors[k]) for k in
                                                   ("optim.generator.0.exp_avg", "optim.generator.0.exp_avg_sq",
                                                    "optim.generator.0.step"))}),
    "net_weight_transposed": reshape(G_WEIGHT, lambda s: [s[1], s[0], *s[2:]]),
    "net_weight_missing": drop(G_WEIGHT),
    "net_unknown_role": lambda r: r.tensors.update({"net.ghost.weight": r.tensors[G_WEIGHT(r)]}),
    "unknown_prefix": lambda r: r.tensors.update({"junk.weight": r.tensors[G_WEIGHT(r)]}),
    "ema_shape_differs": ema_copy(broken=True),
    "task_state_tensor": lambda r: r.tensors.update({"task.pool_a.0": r.tensors[G_WEIGHT(r)]}),
    "rng_torch_short": reshape(lambda r: "rng.torch", lambda s: [s[0] // 2]),
    # dtypes
    **{f"generator_as_{d}": retype(G_WEIGHT, d) for d in ("I8", "U16", "U64", "BOOL", "F8_E4M3")},
    "discriminator_as_I8": retype(D_WEIGHT, "I8"),
    "exp_avg_as_F16": retype(AVG, "F16"),
    "step_as_I64": retype(STEP, "I64"),
    # hyperparameters
    "betas_string": group("generator", betas="0.5,0.999"),
    "betas_5_7": group("generator", betas=[5, 7]),
    "lr_negative": group("generator", lr=-1e6),
    "lr_nan": group("generator", lr=float("nan")),
    "eps_zero": group("discriminator", eps=0.0),
    "weight_decay_negative": group("discriminator", weight_decay=-1.0),
    "param_groups_short": group("generator", params=[0, 1, 2]),
    "optim_scalar_state": meta_edit("optim", lambda o: {**o, "generator": {**o["generator"],
                                                                          "scalars": {"0": {"step": 3}}}}),
    "scaler_negative": meta_edit("scalers", lambda s: {**s, "generator": {
        "scale": -1.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 0}}),
    # values
    "step_negative": values(STEP, -3.0),
    "step_fraction": values(STEP, 2.5),
    "exp_avg_nan": values(AVG, float("nan")),
    "exp_avg_sq_negative": values(AVG_SQ, -1.0),
    "weight_nan": values(G_WEIGHT, float("nan")),
    # metadata sizes and values
    "recipe_string_60MB": recipe_string(60_000_000),
    "recipe_string_10MB": recipe_string(10_000_000),
    "recipe_string_100KB": recipe_string(100_000),
    "task_state_string_5MB": meta_text("task_state", json.dumps({"x": "y" * 5_000_000})),
    "int_5000_digits_step": meta_text("step", "9" * 5000),
    "int_5000_digits_progress": meta_text("progress", '{"step": 2, "epoch": 1, "batch": ' + "9" * 5000 +
              ', "bad_steps": 0, "skipped_files": 0, "skipped_steps": 0}'),
    "best_value_string": meta_edit("best", lambda b: {"metric": "eval/psnr", "value": "high", "epoch": 1, "step": 2}),
    "best_value_list": meta_edit("best", lambda b: {"metric": "eval/psnr", "value": [1, 2], "epoch": 1, "step": 2}),
    "progress_batch_1e12": meta_edit("progress", lambda p: {**p, "batch": 10 ** 12}),
    "unknown_metadata_key": meta_text("surprise", "1"),
    # sparse files declaring huge tensors
    "sparse_64GB_tensor": sparse("net.generator.huge", "F32", [16 * GiB]),
    "sparse_512GB_tensor": sparse("net.generator.huge", "F32", [128 * GiB]),
    "sparse_20x3GB_tensors": many_sparse(20, 3),
    "sparse_3GB_unknown_tensor": many_sparse(1, 3),
}
TRUNCATIONS = {"truncated_100_bytes": -100, "truncated_to_header": None, "truncated_4_bytes": 4}
COMMANDS = ("inspect", "translate", "export", "eval", "resume")


def command(name: str, ckpt: Path, case_dir: Path, base: Path) -> list[str]:
    p2p = [sys.executable, "-m", "p2pcore"]
    if name == "inspect":
        return [*p2p, "inspect", str(ckpt)]
    if name == "translate":
        return [*p2p, "translate", str(ckpt), str(base / "inputs"), str(case_dir / "translated")]
    if name == "export":
        return [*p2p, "export", str(ckpt), str(case_dir / "g.pt")]
    if name == "eval":
        return [*p2p, "eval", str(ckpt), "--metric", "psnr", "--out", str(case_dir / "eval")]
    return [*p2p, "run", "--resume", "--out", str(case_dir / "run"), "--quiet"]


def outcome(returncode: int, output: str) -> str:
    if returncode < 0 or returncode > 128:
        return "signal"
    if "Traceback (most recent call last)" in output:
        return "traceback"
    if returncode == 0:
        return "exit 0"
    return "exit 2" if returncode == 2 else f"exit {returncode}"


def prepare(name: str, ckpt: Path, case_dir: Path, base: Path) -> None:
    shutil.rmtree(case_dir, ignore_errors=True)
    case_dir.mkdir(parents=True)
    if name == "resume":  # a run folder whose only checkpoint is the crafted one
        run = case_dir / "run"
        shutil.copytree(base / "run", run, ignore=shutil.ignore_patterns("*.safetensors", "eval", "samples"))
        (run / "checkpoints").mkdir(exist_ok=True)
        os.link(ckpt, run / "checkpoints" / "latest.safetensors")  # never a copy: a sparse file would fill the disk


def run_isolated(case: str, name: str, ckpt: Path, case_dir: Path, base: Path) -> tuple[str, str, str, float, str]:
    """One command on one file in a process of its own."""
    prepare(name, ckpt, case_dir, base)
    args = " ".join(f"'{a}'" for a in command(name, ckpt, case_dir, base))
    start = time.monotonic()
    proc = subprocess.run(["bash", "-c", f"ulimit -v {MEMORY_KB}; exec {args}"], capture_output=True, text=True,
                          timeout=600, env={**_env(), "COLUMNS": "120"})
    output = proc.stdout + proc.stderr
    return case, name, outcome(proc.returncode, output), time.monotonic() - start, _last(output)


def run_batched(name: str, jobs: list[tuple[str, Path, Path]], base: Path) -> list[tuple[str, str, str, float, str]]:
    """One command on many files in a worker process (the interpreter and torch are loaded once): a worker that
    dies by a signal is charged with the file it was on, and a new one goes on from the next."""
    results: list[tuple[str, str, str, float, str]] = []
    todo = list(jobs)
    while todo:
        for _, ckpt, case_dir in todo:
            prepare(name, ckpt, case_dir, base)
        listing = base.parent / f"worker_{name}.json"
        listing.write_text(json.dumps([[case, str(ckpt), str(case_dir)] for case, ckpt, case_dir in todo]))
        proc = subprocess.run(["bash", "-c", f"ulimit -v {MEMORY_KB}; exec '{sys.executable}' '{__file__}' "
                               f"--worker {name} '{base}' '{listing}'"], capture_output=True, text=True,
                              timeout=3000, env={**_env(), "COLUMNS": "120"})
        lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        done = {line["case"] for line in lines if "outcome" in line}
        results += [(line["case"], name, line["outcome"], line["seconds"], line["last"]) for line in lines
                    if "outcome" in line]
        rest = [job for job in todo if job[0] not in done]
        if rest and proc.returncode != 0:  # the worker died on the first file it did not finish
            results.append((rest[0][0], name, outcome(proc.returncode, proc.stderr), 0.0, _last(proc.stderr)))
            rest = rest[1:]
        todo = rest
    return results


def worker(name: str, base: Path, listing: Path) -> None:
    """Run `name` on each listed file in this process, as `p2p` would (errors rendered, exit codes), printing
    one JSON line per file."""
    import contextlib
    import io
    import traceback

    from p2pcore.cli import app
    from p2pcore.commands import common
    from p2pcore.commands.common import render_error
    from p2pcore.errors import P2PError

    common.host().manager.hook.p2p_add_commands(app=app)
    for case, ckpt, case_dir in json.loads(listing.read_text()):
        args = command(name, Path(ckpt), Path(case_dir), base)[3:]
        text = io.StringIO()
        start = time.monotonic()
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            try:
                app(args=args, prog_name="p2p")
                code = 0
            except P2PError as error:
                render_error(error)
                code = 2
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
            except BaseException:  # noqa: BLE001 - what the probe counts
                traceback.print_exc(file=text)
                code = 1
        output = text.getvalue()
        print(json.dumps({"case": case, "outcome": outcome(code, output), "seconds": time.monotonic() - start,
                          "last": _last(output)}), flush=True)


def _last(output: str) -> str:
    return next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "")[:110]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


def make_base(work: Path) -> Path:
    """A tiny trained run (1 epoch), its recipe raised to 2 epochs so a resume has steps to take, and inputs."""
    base = work / "base"
    if (base / "run" / "checkpoints" / "latest.safetensors").exists():
        return base
    base.mkdir(parents=True, exist_ok=True)
    (base / "tiny.toml").write_text(RECIPE)
    subprocess.run([sys.executable, "-m", "p2pcore", "run", str(base / "tiny.toml"), "--out", str(base / "run"),
                    "--quiet"], check=True, capture_output=True)
    recipe = base / "run" / "recipe.toml"
    recipe.write_text(recipe.read_text().replace("epochs = 1\n", "epochs = 2\n"))
    inputs = base / "inputs"
    inputs.mkdir()
    import numpy as np
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((32, 32)) * 255).astype("uint8")).save(inputs / "x.png")
    return base


def craft(base: Path, work: Path, only: list[str] | None) -> dict[str, Path]:
    source = base / "run" / "checkpoints" / "latest.safetensors"
    good = Raw.read(source)
    files: dict[str, Path] = {}
    for case, change in {"good (control)": None, **CASES}.items():
        if only and case not in only and case != "good (control)":
            continue
        raw = good.copy()
        if change is not None:
            change(raw)
        path = work / "cases" / _slug(case) / "ckpt.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        raw.write(path)
        files[case] = path
    data = source.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    for case, cut in TRUNCATIONS.items():
        if only and case not in only:
            continue
        path = work / "cases" / case / "ckpt.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[:8 + length] if cut is None else data[:cut])
        files[case] = path
    return files


def _slug(case: str) -> str:
    return case.split(" ")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="a folder for the run and the crafted files (default: a temporary "
                                                   "one, removed after)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="case names")
    parser.add_argument("--commands", nargs="*", default=list(COMMANDS), choices=COMMANDS)
    parser.add_argument("--json", type=Path, help="write every outcome here")
    parser.add_argument("--isolated", action="store_true", help="a process per command and file (slow: torch is "
                                                                 "loaded each time); by default a worker process "
                                                                 "per command goes through the files")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]), Path(args.worker[2]))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="probe_checkpoints."))
    try:
        base = make_base(work)
        files = craft(base, work, args.only)
        with ThreadPoolExecutor(args.jobs) as pool:
            if args.isolated:
                jobs = [(case, name, path, path.parent / name) for case, path in files.items()
                        for name in args.commands]
                results = list(pool.map(lambda job: run_isolated(*job, base), jobs))
            else:
                batches = pool.map(lambda name: run_batched(name, [(case, path, path.parent / name) for case, path
                                                                   in files.items()], base), args.commands)
                results = [result for batch in batches for result in batch]
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report(results, args.commands)
    if args.json:
        args.json.write_text(json.dumps([dict(zip(("case", "command", "outcome", "seconds", "last_line"), r,
                                                  strict=True)) for r in results], indent=1))


def report(results: list[tuple[str, str, str, float, str]], commands: list[str]) -> None:
    kinds = ["exit 2", "traceback", "signal", "exit 0", "other"]
    bad = [r for r in results if r[0] != "good (control)"]
    counts = {name: Counter(r[2] if r[2] in kinds else "other" for r in bad if r[1] == name) for name in commands}
    print(f"{len(bad) // max(len(commands), 1)} crafted checkpoints x {len(commands)} commands "
          f"(ulimit -v {MEMORY_KB})\n")
    print(f"| command | {' | '.join(kinds)} |")
    print(f"|---|{'---|' * len(kinds)}")
    for name in commands:
        print(f"| {name} | {' | '.join(str(counts[name][k]) for k in kinds)} |")
    total = Counter(r[2] if r[2] in kinds else "other" for r in bad)
    print(f"| all | {' | '.join(str(total[k]) for k in kinds)} |")
    control = [r for r in results if r[0] == "good (control)"]
    print("\ncontrol (the good checkpoint): " + ", ".join(f"{r[1]} {r[2]}" for r in control))
    odd = [r for r in bad if r[2] != "exit 2"]
    if odd:
        print("\nnot a clean refusal:")
        for case, name, kind, seconds, last in odd:
            print(f"  {case:32} {name:9} {kind:9} {seconds:5.1f}s  {last}")
    slow = sorted(bad, key=lambda r: -r[3])[:3]
    print("\nslowest: " + "; ".join(f"{c} {n} {s:.1f}s" for c, n, _, s, _ in slow))


if __name__ == "__main__":
    main()
