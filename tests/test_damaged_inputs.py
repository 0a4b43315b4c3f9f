"""Damaged and crafted checkpoints and recipes, generated: every field of a checkpoint's header
replaced by a value of each other JSON type, files truncated at random offsets, header bytes
flipped, and fuzzed recipes. Run through inspect, translate, run --resume and validate in a
separate process: never a traceback, bounded memory, and exit 2 wherever the damage matters."""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
from conftest import join_safetensors, split_safetensors
from PIL import Image

from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe

HERE = Path(__file__).resolve().parent
VALUES = {"string": "x", "integer": 7, "negative": -5, "float": 2.5, "boolean": True, "null": None, "array": [],
          "object": {}}
NEEDED = {"format", "format_version", "recipe", "step", "progress", "optim", "rng"}  # what resume cannot do without


@pytest.fixture(scope="module")
def damage(tmp_path_factory, host) -> dict:
    root = tmp_path_factory.mktemp("damage")
    recipe = {"data": {"name": "synthetic_thermal", "size": 32, "train_count": 4, "test_count": 1},
              "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8},
                        "discriminator": {"name": "patch", "ndf": 8, "n_layers": 2}},
              "loss": {"gan": {"name": "gan"}, "l1": {"name": "l1", "weight": 100.0}},
              "train": {"epochs": 1, "batch_size": 2, "num_workers": 0, "device": "cpu"}}
    run = root / "template"
    Trainer(validate_recipe(recipe, host, default_name="t"), host, run).fit()
    Image.new("L", (24, 20), 128).save(run / "input.png")
    blob = (run / "checkpoints" / "latest.safetensors").read_bytes()
    header, body = split_safetensors(blob)
    cases = root / "cases"
    cases.mkdir()
    rng = random.Random(7)
    expected_2: set[str] = set()
    meta = header["__metadata__"]
    for key, raw in meta.items():
        current = raw if key in ("format", "format_version") else json.loads(raw)
        for kind, value in VALUES.items():
            if type(value) is type(current) or (value is None and current is None):
                continue
            changed = dict(header)
            changed["__metadata__"] = {**meta, key: value if key in ("format", "format_version") and
                                       isinstance(value, str) else json.dumps(value)}
            name = f"field_{key}_{kind}.safetensors"
            (cases / name).write_bytes(join_safetensors(changed, body))
            if key in NEEDED:
                expected_2.add(name)
    progress = json.loads(meta["progress"])
    for field in progress:
        for kind in ("string", "negative", "float"):
            changed = dict(header)
            changed["__metadata__"] = {**meta, "progress": json.dumps({**progress, field: VALUES[kind]})}
            (cases / f"progress_{field}_{kind}.safetensors").write_bytes(join_safetensors(changed, body))
            expected_2.add(f"progress_{field}_{kind}.safetensors")
    crafted = {
        "unknown_progress_key": {"progress": json.dumps({**progress, "extra": 1})},
        "rng_too_short": {"rng": json.dumps({**json.loads(meta["rng"]), "python": [3, [1, 2], None]})},
        "no_optim": {"optim": json.dumps({})},
        "deep_json": {"recipe": "[" * 100_000 + "]" * 100_000},
        "format_99": {"format_version": "99"},
        "huge_ngf": {"recipe": json.dumps({**json.loads(meta["recipe"]), "model": {
            **json.loads(meta["recipe"])["model"], "generator": {"name": "unet", "depth": 10, "ngf": 1024}}})},
    }
    for name, change in crafted.items():
        changed = dict(header)
        changed["__metadata__"] = {**meta, **change}
        (cases / f"crafted_{name}.safetensors").write_bytes(join_safetensors(changed, body))
        if name != "huge_ngf":  # a resume builds from the run's own recipe, which fits the tensors
            expected_2.add(f"crafted_{name}.safetensors")
    first = next(k for k in header if k != "__metadata__")
    for name, entry in {"negative_shape": {"shape": [-1, 4]}, "huge_shape": {"shape": [1 << 30, 1 << 30]},
                        "dtype": {"dtype": "Q99"}}.items():
        changed = {**header, first: {**header[first], **entry}}
        (cases / f"tensor_{name}.safetensors").write_bytes(join_safetensors(changed, body))
        expected_2.add(f"tensor_{name}.safetensors")
    for i in range(10):
        cut = rng.randrange(1, len(blob) - 1)
        (cases / f"truncated_{i}.safetensors").write_bytes(blob[:cut])
        expected_2.add(f"truncated_{i}.safetensors")
    (length,) = struct.unpack("<Q", blob[:8])
    for i in range(12):
        flipped = bytearray(blob)
        flipped[rng.randrange(8, 8 + length)] ^= 1 << rng.randrange(8)
        (cases / f"flipped_{i}.safetensors").write_bytes(bytes(flipped))
    os.symlink(cases / "loop_b.safetensors", cases / "loop_a.safetensors")
    os.symlink(cases / "loop_a.safetensors", cases / "loop_b.safetensors")
    os.mkfifo(cases / "fifo.safetensors")
    expected_2 |= {"loop_a.safetensors", "loop_b.safetensors", "fifo.safetensors"}
    fuzz_recipes(cases, recipe, rng)
    proc = subprocess.run([sys.executable, str(HERE / "damage_worker.py"), str(cases), str(run)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {"results": [x for x in lines if "case" in x], "peak": lines[-1]["peak_rss_mib"],
            "expected_2": expected_2}


def fuzz_recipes(cases: Path, recipe: dict, rng: random.Random) -> None:
    """Valid recipes with one value replaced by a value of another type, or a key deleted."""
    paths = [("data", "size"), ("data", "name"), ("model", "generator", "ngf"), ("model", "generator", "depth"),
             ("model", "generator", "norm"), ("model", "discriminator", "n_layers"), ("loss", "l1", "weight"),
             ("loss", "gan", "mode"), ("train", "epochs"), ("train", "batch_size"), ("train", "device"),
             ("model", "generator"), ("loss",), ("data",)]
    for i, path in enumerate(paths):
        for kind, value in VALUES.items():
            if value is None:
                continue
            changed = json.loads(json.dumps(recipe))
            node = changed
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
            (cases / f"recipe_{i}_{kind}.toml").write_text(tomli_w.dumps(changed))
    for i in range(20):
        text = tomli_w.dumps(recipe)
        j = rng.randrange(len(text))
        (cases / f"recipe_bytes_{i}.toml").write_bytes(text[:j].encode() + bytes([rng.randrange(256)])
                                                       + text[j + 1:].encode())


def test_no_damaged_checkpoint_or_recipe_ends_in_a_traceback(damage):
    crashes = [(r["case"], cmd, o.get("trace", o["kind"])) for r in damage["results"]
               for cmd, o in r.items() if cmd != "case" and o["kind"] not in ("exit", "p2p")]
    assert not crashes, crashes[:3]
    codes = {o["code"] for r in damage["results"] for cmd, o in r.items() if cmd != "case"}
    assert codes <= {0, 2}


def test_damage_that_matters_is_exit_2(damage):
    by_case = {r["case"]: r for r in damage["results"]}
    assert len([c for c in by_case if c.endswith(".safetensors")]) > 100
    for case in damage["expected_2"]:
        result = by_case[case]
        assert result["resume"]["code"] == 2, (case, result)
        if not case.startswith(("field_optim", "field_rng", "field_progress", "progress_", "crafted_no_optim",
                                "crafted_rng", "crafted_unknown_progress")):
            assert result["translate"]["code"] == 2, (case, result)  # translate needs no training state
    truncated = [r for c, r in by_case.items() if c.startswith("truncated_")]
    assert truncated and all(r["inspect"]["code"] == 2 for r in truncated)
    assert "does not match its tensors" in by_case["crafted_huge_ngf.safetensors"]["translate"]["message"]


def test_memory_stays_bounded(damage):
    assert damage["peak"] < 3000, damage["peak"]  # MiB for the whole worker, huge shapes included
