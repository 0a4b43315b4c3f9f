"""Crafted checkpoints, each wrong in one way, made here from a tiny run: every one is refused with a
P2PError naming the file and the tensor or key, before the tensors are read where the header shows it,
by inspect, translate (opening a trained run) and resume alike; nothing a file says reaches fused Adam."""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import join_safetensors, split_safetensors

from p2pcore.checkpoint import files
from p2pcore.checkpoint.format import DTYPE_BYTES, MAX_BODY_BYTES, MAX_STRING_CHARS, read_header
from p2pcore.engine.build.trained import open_trained
from p2pcore.engine.train.trainer import Trainer
from p2pcore.errors import P2PError
from p2pcore.recipe import validate_recipe

RECIPE = {"data": {"name": "synthetic_thermal", "size": 32, "train_count": 4, "test_count": 1},
          "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8},
                    "discriminator": {"name": "patch", "ndf": 8, "n_layers": 2}},
          "loss": {"gan": {"name": "gan"}, "l1": {"name": "l1", "weight": 100.0}},
          "train": {"epochs": 2, "batch_size": 2, "num_workers": 0, "device": "cpu"}}
Tensors = dict[str, tuple[str, list[int], bytes]]


@pytest.fixture(scope="module")
def run(tmp_path_factory, host) -> Path:
    """One epoch of a tiny pix2pix run (2 steps): both players have Adam state."""
    out = tmp_path_factory.mktemp("checks") / "run"
    recipe = validate_recipe({**RECIPE, "train": {**RECIPE["train"], "epochs": 1}}, host, default_name="t")
    Trainer(recipe, host, out).fit()
    return out


def parts(path: Path) -> tuple[dict[str, str], Tensors]:
    header, body = split_safetensors(path.read_bytes())
    meta = header.pop("__metadata__")
    return meta, {n: (e["dtype"], e["shape"], body[e["data_offsets"][0]:e["data_offsets"][1]])
                  for n, e in header.items()}


def write(path: Path, meta: dict[str, str], tensors: Tensors, sparse: dict[str, tuple[str, list[int]]]) -> Path:
    header: dict = {"__metadata__": meta}
    offset = 0
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
    written = offset
    for name, (dtype, shape) in sparse.items():
        size = math.prod(shape) * DTYPE_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    data = join_safetensors(header, b"".join(blob for _, _, blob in tensors.values()))
    with path.open("wb") as f:
        f.write(data)
        if offset > written:
            f.truncate(len(data) + offset - written)  # sparse: declared, never written
    return path


def crafted(run: Path, tmp_path: Path, change: Callable[[dict, Tensors], object], **sparse) -> Path:
    meta, tensors = parts(run / "checkpoints" / "latest.safetensors")
    change(meta, tensors)
    return write(tmp_path / "crafted.safetensors", meta, tensors, sparse.get("sparse", {}))


def weight(tensors: Tensors, prefix: str = "net.generator.") -> str:
    return next(n for n, (d, s, _) in tensors.items() if n.startswith(prefix) and n.endswith("weight")
                and len(s) == 4 and s[0] != s[1])


def reshaped(entry: tuple[str, list[int], bytes], shape: list[int]) -> tuple[str, list[int], bytes]:
    dtype, _, blob = entry
    size = math.prod(shape) * DTYPE_BYTES[dtype]
    return dtype, shape, (blob * (size // max(len(blob), 1) + 1))[:size]


def group(meta: dict, player: str, **values) -> None:
    optim = json.loads(meta["optim"])
    optim[player]["param_groups"][0].update(values)
    meta["optim"] = json.dumps(optim)


def refused(call: Callable[[], object], *words: str) -> P2PError:
    with pytest.raises(P2PError) as info:
        call()
    text = str(info.value)
    assert "crafted.safetensors" in text and info.value.hint, text
    for word in words:
        assert word in text, text
    return info.value


def resume_state(run: Path, tmp_path: Path, ckpt: Path, host) -> Trainer:
    """A trainer of the run's recipe in a folder whose only checkpoint is `ckpt` (not started)."""
    folder = tmp_path / "resumed"
    (folder / "checkpoints").mkdir(parents=True)
    shutil.copyfile(ckpt, folder / "checkpoints" / "latest.safetensors")
    return Trainer(validate_recipe(RECIPE, host, default_name="t"), host, folder)


# -- what the header shows: refused by read_header, so by inspect and every reader --------------------------------

def _shrunk(meta, t):
    t["optim.generator.0.exp_avg"] = reshaped(t["optim.generator.0.exp_avg"], [1])


def _grown(meta, t):
    dtype, shape, _ = t["optim.generator.0.exp_avg"]
    t["optim.generator.0.exp_avg"] = reshaped(t["optim.generator.0.exp_avg"], [shape[0] * 4, *shape[1:]])


def stored_as(dtype: str) -> Callable[[dict, Tensors], None]:
    def change(meta, t):
        name = weight(t)
        t[name] = (dtype, t[name][1], bytes(math.prod(t[name][1]) * DTYPE_BYTES[dtype]))
    return change


HEADER_CASES = {
    "exp_avg grown": (_grown, "optim.generator.0.exp_avg"),
    "exp_avg shrunk": (_shrunk, "optim.generator.0"),
    "step of 5 elements": (lambda m, t: t.update({"optim.generator.0.step": reshaped(t["optim.generator.0.step"],
                                                                                     [5])}), "step"),
    "exp_avg missing": (lambda m, t: t.pop("optim.discriminator.1.exp_avg"), "has no exp_avg"),
    "step stored as I64": (lambda m, t: t.update({"optim.generator.0.step": ("I64", [], bytes(8))}), "float32"),
    "betas a string": (lambda m, t: group(m, "generator", betas="0.5,0.999"), "betas"),
    "betas 5 and 7": (lambda m, t: group(m, "generator", betas=[5, 7]), "betas"),
    "lr -1e6": (lambda m, t: group(m, "generator", lr=-1e6), "lr"),
    "lr NaN": (lambda m, t: group(m, "discriminator", lr=float("nan")), "lr"),
    "eps 0": (lambda m, t: group(m, "generator", eps=0.0), "eps"),
    "weight decay -1": (lambda m, t: group(m, "generator", weight_decay=-1.0), "weight_decay"),
    "scalar Adam state": (lambda m, t: m.update(optim=json.dumps({
        **json.loads(m["optim"]), "discriminator": {**json.loads(m["optim"])["discriminator"],
                                                    "scalars": {"0": {"step": 3}}}})), "scalar state"),
    "negative scaler scale": (lambda m, t: m.update(scalers=json.dumps({"generator": {
        "scale": -1.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 10, "_growth_tracker": 0}})),
        "scalers"),
    "best value a string": (lambda m, t: m.update(best=json.dumps({"metric": "eval/psnr", "value": "high"})),
                            "best"),
    "best value a list": (lambda m, t: m.update(best=json.dumps({"metric": "eval/psnr", "value": [1, 2]})), "best"),
    "batch 10^12": (lambda m, t: m.update(progress=json.dumps({**json.loads(m["progress"]), "batch": 10 ** 12})),
                    "progress"),
    "epoch 10^12": (lambda m, t: m.update(progress=json.dumps({**json.loads(m["progress"]), "epoch": 10 ** 12})),
                    "epochs done"),
    "5000-digit integer": (lambda m, t: m.update(step="9" * 5000), "digits"),
    "long recipe string": (lambda m, t: m.update(recipe=json.dumps({**json.loads(m["recipe"]),
                                                                    "name": "x" * (MAX_STRING_CHARS + 1)})),
                           "characters"),
    "2 MiB of task state": (lambda m, t: m.update(task_state=json.dumps({"x": ["y" * 1000] * 2100})), "MiB"),
    "unknown prefix": (lambda m, t: t.update({"junk.x": t["rng.torch"]}), "junk.x"),
    "average of another shape": (lambda m, t: t.update({
        "ema." + weight(t)[4:]: reshaped(t[weight(t)], [1, 1, 1, 1])}), "ema.generator"),
    **{f"generator weight as {d}": (stored_as(d), "stored as " + d) for d in ("I8", "U16", "U64", "BOOL", "F8_E4M3")},
}


@pytest.mark.parametrize("case", HEADER_CASES)
def test_what_the_header_shows_is_refused_by_every_reader(run, tmp_path, host, case):
    change, word = HEADER_CASES[case]
    path = crafted(run, tmp_path, change)
    refused(lambda: read_header(path), word)
    refused(lambda: open_trained(path, host))


def p2p(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "120"})


def test_inspect_refuses_on_one_screen_with_exit_2(run, tmp_path):
    path = crafted(run, tmp_path, lambda m, t: group(m, "generator", betas=[5, 7]))
    result = p2p("inspect", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    assert "crafted.safetensors" in output and "betas" in output
    assert len(output.splitlines()) < 25


def test_good_file_crafted_back_reads_and_resumes(run, tmp_path, host):
    """The crafting itself changes nothing: a file written back unchanged opens and resumes."""
    path = crafted(run, tmp_path, lambda m, t: None)
    assert open_trained(path, host).nets
    trainer = resume_state(run, tmp_path, path, host)
    trainer.checkpointing.resume()
    assert trainer.progress.step == 2


# -- what only the recipe shows: refused by translate and resume before any tensor is read ------------------------

def _swapped(meta, t):
    """Two parameters' Adam state exchanged: each still shaped like some weight, but not its own."""
    first, second = next((i, j) for i in range(30) for j in range(30) if t[f"optim.generator.{i}.exp_avg"][1] !=
                         t[f"optim.generator.{j}.exp_avg"][1])
    for key in ("exp_avg", "exp_avg_sq"):
        a, b = f"optim.generator.{first}.{key}", f"optim.generator.{second}.{key}"
        t[a], t[b] = t[b], t[a]


RECIPE_CASES = {
    "optimiser state swapped": (_swapped, "optim.generator."),
    "weight transposed": (lambda m, t: t.update({weight(t): reshaped(t[weight(t)], [
        t[weight(t)][1][1], t[weight(t)][1][0], *t[weight(t)][1][2:]])}), "generator"),
    "a role the task lacks": (lambda m, t: t.update({"net.ghost." + weight(t).split(".", 2)[2]: t[weight(t)]}),
                              "ghost"),
    "task state for pix2pix": (lambda m, t: t.update({"task.pool_a.0": t[weight(t)]}), "keeps no state"),
    "random state too short": (lambda m, t: t.update({"rng.torch": ("U8", [16], bytes(16))}), "rng.torch"),
    "param_groups short": (lambda m, t: group(m, "generator", params=[0, 1, 2]), "param_groups"),
}


@pytest.mark.parametrize("case", RECIPE_CASES)
def test_what_the_recipe_shows_is_refused_before_reading(run, tmp_path, host, monkeypatch, case):
    change, word = RECIPE_CASES[case]
    path = crafted(run, tmp_path, change)
    trainer = resume_state(run, tmp_path, path, host)
    monkeypatch.setattr(files, "safe_open", None)  # reading a tensor would fail: nothing must be read
    refused(lambda: open_trained(path, host), word)
    refused(lambda: trainer.state.read(path), word)


def test_resume_reports_the_refused_tensor_and_exits_2(run, tmp_path):
    path = crafted(run, tmp_path, _swapped)
    folder = tmp_path / "resumed"
    shutil.copytree(run, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    shutil.copyfile(path, folder / "checkpoints" / "latest.safetensors")
    result = p2p("run", "--resume", "--out", str(folder), "--quiet")
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    assert "optim.generator." in output


def test_sparse_files_declaring_huge_tensors_are_refused_from_the_header(run, tmp_path, host, monkeypatch):
    monkeypatch.setattr(files, "safe_open", None)
    one = crafted(run, tmp_path, lambda m, t: None, sparse={"net.generator.huge": ("F32", [16 << 30])})
    refused(lambda: read_header(one), "GiB")
    many = {f"net.generator.extra{i}": ("F32", [(3 << 30) // 4]) for i in range(MAX_BODY_BYTES // (3 << 30) + 1)}
    total = crafted(run, tmp_path, lambda m, t: None, sparse=many)
    refused(lambda: read_header(total), "in all")
    unknown = crafted(run, tmp_path, lambda m, t: None, sparse={"net.generator.extra": ("F32", [(3 << 30) // 4])})
    refused(lambda: open_trained(unknown, host), "net.generator.extra")


# -- what only the values show: refused once read, before anything is restored -----------------------------------

def _value(name_of: Callable[[Tensors], str], number: float) -> Callable[[dict, Tensors], None]:
    def change(meta, t):
        name = name_of(t)
        dtype, shape, blob = t[name]
        t[name] = (dtype, shape, struct.pack("<f", number) + blob[4:])
    return change


VALUE_CASES = {
    "negative step": (_value(lambda t: "optim.generator.0.step", -3.0), "whole number"),
    "fractional step": (_value(lambda t: "optim.generator.0.step", 2.5), "whole number"),
    "NaN moment": (_value(lambda t: "optim.generator.0.exp_avg", float("nan")), "not finite"),
    "negative second moment": (_value(lambda t: "optim.generator.0.exp_avg_sq", -1.0), "negative"),
    "NaN weight": (_value(weight, float("nan")), "not finite"),
}


@pytest.mark.parametrize("case", VALUE_CASES)
def test_values_are_refused_before_anything_is_restored(run, tmp_path, host, case):
    change, word = VALUE_CASES[case]
    path = crafted(run, tmp_path, change)
    refused(lambda: open_trained(path, host), word)
    trainer = resume_state(run, tmp_path, path, host)
    before = {k: v.clone() for k, v in trainer.nets["generator"].state_dict().items()}
    refused(lambda: trainer.state.restore(trainer.state.read(path), device=torch.device("cpu")), word)
    after = trainer.nets["generator"].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # refused whole: nothing was put back


def test_a_position_past_the_epoch_is_refused_at_resume(run, tmp_path, host):
    path = crafted(run, tmp_path, lambda m, t: m.update(progress=json.dumps({
        **json.loads(m["progress"]), "step": 1000, "batch": 500})))
    trainer = resume_state(run, tmp_path, path, host)
    refused(lambda: trainer.state.restore(trainer.state.read(path), device=torch.device("cpu")), "batch 500")


def test_optimiser_flags_stay_the_running_process_own(run, tmp_path, host):
    """Only the hyperparameters come from the file; maximize, amsgrad and fused are this process's."""
    path = crafted(run, tmp_path, lambda m, t: group(m, "generator", maximize=True, amsgrad=True, fused=False,
                                                     betas=[0.25, 0.75]))
    trainer = resume_state(run, tmp_path, path, host)
    own = dict(trainer.optimizers["generator"].param_groups[0])
    trainer.state.restore(trainer.state.read(path), device=torch.device("cpu"))
    restored = trainer.optimizers["generator"].param_groups[0]
    assert restored["betas"] == (0.25, 0.75)
    assert (restored["maximize"], restored["amsgrad"], restored["fused"]) == (own["maximize"], own["amsgrad"],
                                                                             own["fused"])
