"""Bad input through the real command line: every command, every kind of mistake.

The promise: a malformed recipe, a missing or corrupt image, a mismatched pair, a truncated checkpoint,
an unknown component or a wrong argument gets a one-screen error on stderr that names the file (and
the key where there is one) and says what to do, exit code 2, no traceback, and no lost work.

Each case builds its inputs in its own folder and runs `python -m p2pcore ...`. The commands run
concurrently (most of their time is importing torch), and only the cases selected for the session
are run. `p2p data check` prints its report, problems included, on stdout, as documented; its
recipe errors go to stderr like every other command's. A case given `defect=` is an xfail(strict)
naming how the command breaks the promise.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "COLUMNS": "120"}
SCREEN = 25  # lines an error may take
TIMEOUT = 180

TINY = """\
task = "pix2pix"
seed = 0

[data]
{data}

[model.generator]
name = "unet"
depth = 5
ngf = 8
norm = "batch"
dropout = 0.5

[model.discriminator]
name = "patch"
receptive_field = 34
ndf = 8
norm = "batch"

[loss]
gan = {{ name = "gan", mode = "vanilla", weight = 1.0 }}
l1 = {{ name = "l1", weight = 100.0 }}

[optim]
lr = 2e-4
betas = [0.5, 0.999]

[train]
epochs = 1
batch_size = 4
sample_count = 4
"""

FIRST_LINE = TINY.split("\n", 1)[0]  # a key put before it comes first in the recipe
SYNTHETIC = 'name = "synthetic_thermal"\nsize = 32\ntrain_count = 8\ntest_count = 4'

# A reference (junyanz) unet_256 generator with ngf 8, under the reference's key names.
REFERENCE_SCRIPT = textwrap.dedent("""
    import sys
    import torch
    from p2pcore import load_host
    from p2p_interop.junyanz import unet_layers

    net = load_host().build("generator", {"name": "unet", "depth": 8, "ngf": 8, "norm": "batch"},
                            in_channels=3, out_channels=3)
    where = dict(unet_layers(8))
    state = {}
    for key, value in net.state_dict().items():
        module, _, leaf = key.rpartition(".")
        state[f"{where[module]}.{leaf}"] = value
    torch.save(state, sys.argv[1])
""")


def p2p(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=TIMEOUT)


def recipe(path: Path, data: str = SYNTHETIC, text: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TINY.format(data=data) if text is None else text)
    return path


def edited(old: str, new: str) -> str:
    """The tiny recipe on synthetic data with every `old` in its text made `new`."""
    return TINY.format(data=SYNTHETIC).replace(old, new)


def paired_recipe(path: Path, root: Path) -> Path:
    data = (f'name = "paired_folders"\nroot = "{root.as_posix()}"\na = {{ dir = "ir", channels = 1 }}\n'
            'b = { dir = "rgb", channels = 3 }\nload_size = 32\ncrop_size = 32')
    return recipe(path, data)


def pairs(root: Path, count: int = 8) -> Path:
    """root/ir/N.png (grey) and root/rgb/N.jpg (colour), 32 x 32, matched by name."""
    (root / "ir").mkdir(parents=True)
    (root / "rgb").mkdir()
    for i in range(count):
        rgb = np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(rgb[..., 0]).save(root / "ir" / f"{i}.png")
        Image.fromarray(rgb).save(root / "rgb" / f"{i}.jpg")
    return root


def grey(path: Path, size: tuple[int, int] = (32, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, 128, dtype=np.uint8)).save(path)
    return path


def halve(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_call(d: Path, rec: Path, *names: object) -> Call:
    """`p2p run` of recipe `rec` into d/out: its error names the recipe and `names`."""
    return Call(["run", rec, "--out", d / "out", "--quiet"], [rec, *names])


def run_on_damaged_pairs(d: Path, damage: Callable[[Path], object], *names: object) -> Call:
    """`p2p run` on the image pairs under d/data once `damage(root)` has spoilt them: the error names the
    recipe and `names`."""
    root = pairs(d / "data")
    damage(root)
    return run_call(d, paired_recipe(d / "r.toml", root), *names)


# -- shared inputs: a trained checkpoint and a reference .pth ------------------------------------------

class World:
    """Inputs several cases share, built once in the background while the other cases run."""

    def __init__(self, base: Path, builders: ThreadPoolExecutor) -> None:
        self.base = base
        self._trained: Future | None = None
        self._reference: Future | None = None
        self._builders = builders

    def start(self, needs: set[str]) -> None:
        if "trained" in needs:
            self._trained = self._builders.submit(self._train)
        if "reference" in needs:
            self._reference = self._builders.submit(self._build_reference)

    def _train(self) -> Path:
        run_dir = self.base / "trained"
        done = p2p("run", recipe(self.base / "tiny.toml"), "--out", run_dir, "--quiet")
        assert done.returncode == 0, done.stdout + done.stderr
        return run_dir

    def _build_reference(self) -> Path:
        path = self.base / "reference" / "latest_net_G.pth"
        path.parent.mkdir()
        subprocess.run([sys.executable, "-c", REFERENCE_SCRIPT, str(path)], check=True, cwd=ROOT, env=ENV,
                       capture_output=True, timeout=TIMEOUT)
        return path

    @property
    def run_dir(self) -> Path:
        assert self._trained is not None, "declare needs={'trained'}"
        return self._trained.result()

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "latest.safetensors"

    @property
    def reference(self) -> Path:
        assert self._reference is not None, "declare needs={'reference'}"
        return self._reference.result()


# -- cases ---------------------------------------------------------------------------------------------

@dataclass
class Call:
    args: list[object]
    names: list[object] = field(default_factory=list)      # text the error must show (files, keys)
    after: Callable[[subprocess.CompletedProcess], None] | None = None  # checks once the command ran


@dataclass(frozen=True)
class Extra:
    """A further demand on a case's output, checked on the same run of its command."""

    id: str
    check: Callable[[subprocess.CompletedProcess], None]
    defect: str = ""


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path, World], Call]
    needs: frozenset[str] = frozenset()
    defect: str = ""
    stream: str = "stderr"   # where the error (or the report of `data check`) is printed
    code: int = 2
    extras: tuple[Extra, ...] = ()


CASES: list[Case] = []


def case(id: str, *, needs: tuple[str, ...] = (), defect: str = "", stream: str = "stderr", code: int = 2,
         extras: tuple[Extra, ...] = ()):
    def register(build: Callable[[Path, World], Call]) -> Callable[[Path, World], Call]:
        CASES.append(Case(id, build, frozenset(needs), defect, stream, code, extras))
        return build
    return register


def in_plain_words(done: subprocess.CompletedProcess) -> None:
    assert "<_io." not in done.stderr + done.stdout, done.stderr


def counts_sixty_problems(done: subprocess.CompletedProcess) -> None:
    assert re.search(r"\b60 problem", done.stderr), done.stderr


# recipes: validate ------------------------------------------------------------------------------------

VALIDATE_EDITS = [  # (case, text of the tiny recipe, what the bad recipe has instead, what the error names)
    ("validate-toml-syntax-error", "[model.generator]", "[model.generator", ["line "]),
    ("validate-unknown-top-level-key", FIRST_LINE, "epochz = 3\n" + FIRST_LINE, ["epochz"]),
    ("validate-unknown-component", 'name = "unet"', 'name = "unett"', ["model.generator.name", "unet"]),
    ("validate-misspelt-parameter", "ngf = 8", "ngff = 8", ["model.generator.ngff", "ngf"]),
    ("validate-wrong-value-type", "epochs = 1", 'epochs = "one"', ["train.epochs"]),
    ("validate-extends-missing-file", FIRST_LINE, 'extends = "missing_base.toml"\n' + FIRST_LINE,
     ["extends", "missing_base.toml"]),
]


def validate_edited(id: str, old: str, new: str, names: list[object]) -> None:
    """The case `p2p validate` of the tiny recipe with `old` made `new`: the error names the file and `names`."""

    @case(id)
    def _(d: Path, w: World) -> Call:
        bad = recipe(d / "bad.toml", text=edited(old, new))
        return Call(["validate", bad], [bad, *names])


for edit in VALIDATE_EDITS:
    validate_edited(*edit)


@case("validate-error-inside-extended-file")
def _(d: Path, w: World) -> Call:
    base = recipe(d / "base.toml", text=edited("ngf = 8", "ngff = 8"))
    child = recipe(d / "child.toml", text='extends = "base.toml"\n[train]\nepochs = 2\n')
    return Call(["validate", child], [base, "model.generator.ngff"])


@case("validate-set-without-equals")
def _(d: Path, w: World) -> Call:
    good = recipe(d / "good.toml")
    return Call(["validate", good, "--set", "train.epochs"], ["--set", "train.epochs"])


@case("validate-missing-recipe")
def _(d: Path, w: World) -> Call:
    return Call(["validate", d / "nowhere.toml"], [d / "nowhere.toml"])


@case("validate-recipe-not-utf8")
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    bad = d / "latin1.toml"
    bad.write_bytes(edited("seed = 0", "# caf\xe9\nseed = 0").encode("latin-1"))
    return Call(["validate", bad], [bad])


@case("validate-recipe-is-a-folder")
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    return Call(["validate", d], [d])


# run -------------------------------------------------------------------------------------------------

@case("run-toml-syntax-error")
def _(d: Path, w: World) -> Call:
    return run_call(d, recipe(d / "bad.toml", text=edited("[train]", "[train")))


@case("run-set-unknown-key")
def _(d: Path, w: World) -> Call:
    good = recipe(d / "good.toml")
    return Call(["run", good, "--set", "train.epoch=3", "--out", d / "out", "--quiet"], [good, "train.epoch"])


@case("run-data-root-missing")
def _(d: Path, w: World) -> Call:
    return run_call(d, paired_recipe(d / "r.toml", d / "no_such_data"), d / "no_such_data")


@case("run-unmatched-file")
def _(d: Path, w: World) -> Call:
    return run_on_damaged_pairs(d, lambda root: grey(root / "ir" / "extra.png"), "ir/extra.png")


@case("run-truncated-image")
def _(d: Path, w: World) -> Call:
    return run_on_damaged_pairs(d, lambda root: halve(root / "rgb" / "3.jpg"), "rgb/3.jpg")


@case("run-zero-byte-image", extras=(Extra("reason-in-plain-words", in_plain_words),))
def _(d: Path, w: World) -> Call:
    return run_on_damaged_pairs(d, lambda root: (root / "ir" / "3.png").write_bytes(b""), "ir/3.png")


@case("run-pair-size-mismatch")
def _(d: Path, w: World) -> Call:
    def smaller_target(root: Path) -> None:
        Image.fromarray(np.zeros((24, 32, 3), dtype=np.uint8)).save(root / "rgb" / "3.jpg")

    return run_on_damaged_pairs(d, smaller_target, "ir/3.png", "rgb/3.jpg")


@case("run-wrong-channel-count")
def _(d: Path, w: World) -> Call:
    def five_channels(root: Path) -> None:
        (root / "rgb" / "3.jpg").unlink()
        np.save(root / "rgb" / "3.npy", np.zeros((32, 32, 5), dtype=np.uint8))   # 5 channels, recipe says 3

    return run_on_damaged_pairs(d, five_channels, "rgb/3.npy", "5 channels")


@case("run-many-unmatched-files", extras=(Extra("counted", counts_sixty_problems),))
def _(d: Path, w: World) -> Call:
    def sixty_unmatched(root: Path) -> None:
        for i in range(60):
            grey(root / "ir" / f"x{i:02d}.png")

    return run_on_damaged_pairs(d, sixty_unmatched, "ir/x00.png")


@case("run-same-out-without-resume", needs=("trained",))
def _(d: Path, w: World) -> Call:
    out = d / "run"
    shutil.copytree(w.run_dir, out, symlinks=True)
    before = digests(out)
    assert any(name.startswith("checkpoints/") for name in before)

    def untouched(done: subprocess.CompletedProcess) -> None:
        assert digests(out) == before, "the first run's files changed"

    return Call(["run", recipe(d / "tiny.toml"), "--out", out, "--quiet"], [out, "--resume"], untouched)


@case("run-resume-without-a-run")
def _(d: Path, w: World) -> Call:
    return Call(["run", recipe(d / "tiny.toml"), "--out", d / "empty", "--resume", "--quiet"], [d / "empty"])


@case("run-out-is-a-file")
def _(d: Path, w: World) -> Call:
    rec = recipe(d / "tiny.toml")
    target = d / "notes.txt"
    target.write_text("not a folder\n")
    return Call(["run", rec, "--out", target, "--quiet"], [target])


@case("run-unknown-option")
def _(d: Path, w: World) -> Call:
    return Call(["run", recipe(d / "tiny.toml"), "--bogus"], ["--bogus"])


# data check --------------------------------------------------------------------------------------------

@case("data-check-unknown-dataset")
def _(d: Path, w: World) -> Call:
    rec = paired_recipe(d / "r.toml", pairs(d / "data"))
    rec.write_text(rec.read_text().replace('"paired_folders"', '"paired_folder"'))
    return Call(["data", "check", rec], [rec, "data.name", "paired_folders"])


@case("data-check-root-missing", stream="stdout")
def _(d: Path, w: World) -> Call:
    return Call(["data", "check", paired_recipe(d / "r.toml", d / "no_such_data")], [d / "no_such_data"])


@case("data-check-truncated-image-deep", stream="stdout")
def _(d: Path, w: World) -> Call:
    root = pairs(d / "data")
    halve(root / "ir" / "5.png")
    return Call(["data", "check", paired_recipe(d / "r.toml", root), "--deep"], ["ir/5.png"])


@case("data-check-pair-size-mismatch", stream="stdout")
def _(d: Path, w: World) -> Call:
    root = pairs(d / "data")
    grey(root / "ir" / "4.png", size=(32, 40))
    return Call(["data", "check", paired_recipe(d / "r.toml", root)], ["ir/4.png", "rgb/4.jpg"])


# translate ---------------------------------------------------------------------------------------------

@case("translate-missing-checkpoint")
def _(d: Path, w: World) -> Call:
    return Call(["translate", d / "gone.safetensors", grey(d / "in.png"), d / "out.png"], [d / "gone.safetensors"])


@case("translate-truncated-checkpoint", needs=("trained",))
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    cut = d / "cut.safetensors"
    cut.write_bytes(w.checkpoint.read_bytes()[:1_000_000])
    return Call(["translate", cut, grey(d / "in.png"), d / "out.png"], [cut])


@case("translate-image-given-as-checkpoint")
def _(d: Path, w: World) -> Call:
    image = grey(d / "in.png")
    return Call(["translate", image, image, d / "out.png"], [image])


@case("translate-missing-input", needs=("trained",))
def _(d: Path, w: World) -> Call:
    return Call(["translate", w.checkpoint, d / "nothing.png", d / "out.png"], [d / "nothing.png"])


@case("translate-folder-without-images", needs=("trained",))
def _(d: Path, w: World) -> Call:
    folder = d / "in"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("no images here\n")
    return Call(["translate", w.checkpoint, folder, d / "out"], [folder])


@case("translate-output-file-for-input-folder", needs=("trained",))
def _(d: Path, w: World) -> Call:
    grey(d / "in" / "a.png")
    target = grey(d / "out.png")
    return Call(["translate", w.checkpoint, d / "in", target], [target])


@case("translate-into-its-input-folder", needs=("trained",))
def _(d: Path, w: World) -> Call:
    folder = d / "images"
    grey(folder / "a.png")
    grey(folder / "b.png", size=(32, 64))
    before = digests(folder)

    def inputs_kept(done: subprocess.CompletedProcess) -> None:
        assert digests(folder) == before, "input images were overwritten"

    return Call(["translate", w.checkpoint, folder, folder], [folder], inputs_kept)


@case("translate-unknown-output-format", needs=("trained",))
def _(d: Path, w: World) -> Call:
    grey(d / "a.png")
    return Call(["translate", w.checkpoint, d / "a.png", d / "out.xyz"], [d / "out.xyz", ".png"])


@case("translate-zero-byte-image", needs=("trained",))
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    empty = d / "empty.png"
    empty.write_bytes(b"")
    return Call(["translate", w.checkpoint, empty, d / "out.png"], [empty])


@case("translate-wrong-channel-count", needs=("trained",))
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    stack = d / "stack.npy"
    np.save(stack, np.zeros((32, 32, 5), dtype=np.uint8))   # the checkpoint reads 1 channel
    return Call(["translate", w.checkpoint, stack, d / "out.png"], [stack, "5 channels"])


@case("translate-unknown-device", needs=("trained",))
def _(d: Path, w: World) -> Call:
    return Call(["translate", w.checkpoint, grey(d / "in.png"), d / "out.png", "--device", "gpu"],
                ["--device", "gpu"])


@case("translate-missing-argument")
def _(d: Path, w: World) -> Call:
    return Call(["translate", grey(d / "in.png")], ["input"])


# inspect -----------------------------------------------------------------------------------------------

@case("inspect-missing-checkpoint")
def _(d: Path, w: World) -> Call:
    return Call(["inspect", d / "gone.safetensors"], [d / "gone.safetensors"])


@case("inspect-truncated-checkpoint", needs=("trained",))
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    cut = d / "cut.safetensors"
    cut.write_bytes(w.checkpoint.read_bytes()[:1_000_000])
    return Call(["inspect", cut, "--json"], [cut])


@case("inspect-not-a-checkpoint")
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    text = d / "latest.safetensors"
    text.write_text("hello\n")
    return Call(["inspect", text], [text])


@case("inspect-foreign-safetensors")
def _(d: Path, w: World) -> Call:
    from safetensors.numpy import save_file

    d.mkdir(parents=True)
    foreign = d / "model.safetensors"
    save_file({"weight": np.zeros(3, dtype=np.float32)}, str(foreign))
    return Call(["inspect", foreign], [foreign])


@case("inspect-folder")
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    return Call(["inspect", d], [d])


# export ------------------------------------------------------------------------------------------------

@case("export-truncated-checkpoint", needs=("trained",))
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    cut = d / "cut.safetensors"
    cut.write_bytes(w.checkpoint.read_bytes()[:1_000_000])
    return Call(["export", cut, d / "g.onnx"], [cut])


@case("export-unknown-format", needs=("trained",))
def _(d: Path, w: World) -> Call:
    return Call(["export", w.checkpoint, d / "g.tflite", "--format", "tflite"], ["--format", "tflite"])


@case("export-output-is-a-folder", needs=("trained",))
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    return Call(["export", w.checkpoint, d], [d])


# import junyanz -----------------------------------------------------------------------------------------

@case("import-junyanz-missing-pth")
def _(d: Path, w: World) -> Call:
    return Call(["import", "junyanz", d / "latest_net_G.pth", d / "g.safetensors", "--netG", "unet_256"],
                [d / "latest_net_G.pth"])


@case("import-junyanz-shapes-do-not-fit-flags", needs=("reference",))
def _(d: Path, w: World) -> Call:
    # trained with --ngf 8; imported with the default --ngf 64
    out = d / "g.safetensors"

    def nothing_written(done: subprocess.CompletedProcess) -> None:
        assert not out.exists(), "a checkpoint was written although the import was refused"

    return Call(["import", "junyanz", w.reference, out, "--netG", "unet_256", "--norm", "batch"],
                [w.reference, "model.model.0.weight", "--ngf 8"], nothing_written)


@case("import-junyanz-not-a-state-dict")
def _(d: Path, w: World) -> Call:
    d.mkdir(parents=True)
    junk = d / "latest_net_G.pth"
    junk.write_text("not a pickle\n")
    return Call(["import", "junyanz", junk, d / "g.safetensors", "--netG", "unet_256"], [junk])


@case("import-junyanz-unknown-netG", needs=("reference",))
def _(d: Path, w: World) -> Call:
    return Call(["import", "junyanz", w.reference, d / "g.safetensors", "--netG", "unet_512"],
                ["--netG", "unet_512", "unet_256"])


@case("import-junyanz-missing-netG")
def _(d: Path, w: World) -> Call:
    return Call(["import", "junyanz", d / "latest_net_G.pth", d / "g.safetensors"], ["--netG"])


# show, list, schema --------------------------------------------------------------------------------------

@case("show-unknown-component")
def _(d: Path, w: World) -> Call:
    return Call(["show", "generator", "unett"], ["unett", "unet"])


@case("show-unknown-kind")
def _(d: Path, w: World) -> Call:
    return Call(["show", "genrator", "unet"], ["genrator", "generator"])


@case("show-missing-argument")
def _(d: Path, w: World) -> Call:
    return Call(["show", "norm"], ["name"])


@case("list-unknown-kind")
def _(d: Path, w: World) -> Call:
    return Call(["list", "discrimnator"], ["discrimnator", "discriminator"])


@case("schema-output-is-a-folder")
def _(d: Path, w: World) -> Call:
    (d / "a_folder").mkdir(parents=True)
    return Call(["schema", "-o", d / "a_folder"], [d / "a_folder"])


@case("schema-unknown-option")
def _(d: Path, w: World) -> Call:
    return Call(["schema", "--bogus"], ["--bogus"])


# -- running them --------------------------------------------------------------------------------------

@dataclass
class Outcome:
    call: Call
    done: subprocess.CompletedProcess | None = None
    error: Exception | None = None   # a failure while building the inputs or running


def _selected(request: pytest.FixtureRequest) -> list[Case]:
    here = Path(__file__).resolve()
    ids = {item.callspec.params["case"].id for item in request.session.items
           if Path(item.path).resolve() == here and "case" in getattr(getattr(item, "callspec", None), "params", {})}
    return [c for c in CASES if c.id in ids]


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    base = tmp_path_factory.mktemp("bad_input")
    selected = sorted(_selected(request), key=lambda c: bool(c.needs))  # those that wait on nothing first
    results: dict[str, Outcome] = {}

    def attempt(c: Case) -> Outcome:
        try:
            call = c.build(base / c.id, world)
        except Exception as exc:  # reported by the case's test
            return Outcome(Call([]), error=exc)
        outcome = Outcome(call)
        try:
            outcome.done = p2p(*call.args)
        except Exception as exc:
            outcome.error = exc
        return outcome

    workers = max(2, min(4, os.cpu_count() or 2))
    with ThreadPoolExecutor(2) as builders, ThreadPoolExecutor(workers) as pool:
        world = World(base, builders)
        world.start(set().union(*(c.needs for c in selected)))
        futures = {c.id: pool.submit(attempt, c) for c in selected}
        for key, future in futures.items():
            results[key] = future.result()
    return results


def _finished(case: Case, outcomes: dict[str, Outcome]) -> tuple[subprocess.CompletedProcess, str]:
    outcome = outcomes[case.id]
    if outcome.error is not None:
        raise outcome.error
    done = outcome.done
    assert done is not None
    context = (f"\n$ p2p {' '.join(map(str, outcome.call.args))}\n--- exit {done.returncode}\n"
               f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")
    return done, context


def _xfail(defect: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.xfail(strict=True, reason=defect)] if defect else []


HINT = re.compile(r"^\s*hint: \S|Try '.*--help' for help", re.MULTILINE)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_xfail(c.defect)) for c in CASES])
def test_bad_input_gets_a_one_screen_error(case: Case, outcomes: dict[str, Outcome]) -> None:
    done, context = _finished(case, outcomes)
    call = outcomes[case.id].call
    if call.after is not None:   # no lost work first: it matters most
        call.after(done)
    shown = done.stdout if case.stream == "stdout" else done.stderr
    assert "Traceback" not in done.stderr + done.stdout, context
    assert done.returncode == case.code, context
    for text in map(str, call.names):
        assert text in shown, f"{text!r} is not named" + context
    assert HINT.search(shown), "no hint" + context
    lines = shown.strip().splitlines()
    assert 0 < len(lines) <= SCREEN, f"{len(lines)} lines" + context


@pytest.mark.parametrize(("case", "extra"), [
    pytest.param(c, e, id=f"{c.id}-{e.id}", marks=_xfail(e.defect)) for c in CASES for e in c.extras
])
def test_bad_input_error_details(case: Case, extra: Extra, outcomes: dict[str, Outcome]) -> None:
    done, _ = _finished(case, outcomes)
    extra.check(done)
