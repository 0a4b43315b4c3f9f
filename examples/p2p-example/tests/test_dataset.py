"""The `csv_pairs` adapter: its contract, and what its `check` reports (what `p2p data check` prints)."""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys

import p2p_example
import pytest

from p2pcore.api import P2PError
from p2pcore.testing import check_dataset, check_params_round_trip

pytestmark = pytest.mark.p2p_plugins(("example", p2p_example))

JITTER = {"load_size": 34, "crop_size": 32}


def adapter(host, listing, **params):
    return host.build("dataset", {"name": "csv_pairs", "file": str(listing), **JITTER, **params})


# Test items are whole images: resized to crop_size by `resize_and_crop`, at their own size (36 px) by `crop`.
@pytest.mark.parametrize(("params", "test_side"),
                         [({}, 32), ({"a_channels": 1, "preprocess": "crop", "flip": False}, 36)])
def test_csv_pairs_contract(p2p_host, pairs_csv, params, test_side):
    found = check_dataset(p2p_host, "csv_pairs", file=str(pairs_csv), **{**JITTER, **params})
    assert len(found.dataset("train", train=True)) == 4 and len(found.dataset("test", train=False)) == 2
    assert tuple(found.dataset("train", train=True)[0]["a"].shape[-2:]) == (32, 32)
    assert tuple(found.dataset("test", train=False)[0]["a"].shape[-2:]) == (test_side, test_side)


@pytest.mark.parametrize("deep", [False, True])
def test_check_is_ok_on_a_good_listing(p2p_host, pairs_csv, deep):
    report = adapter(p2p_host, pairs_csv).check("train", deep=deep)
    assert report.ok, report.problems
    assert report.pairs == 4 and report.facts["sizes"] == "36x36"


def test_check_names_missing_unreadable_and_misaligned_files(p2p_host, pairs_csv):
    import torch

    from p2pcore.api import write_image

    root = pairs_csv.parent
    (root / "a" / "0.png").unlink()
    (root / "b" / "1.png").write_bytes(b"not an image")
    write_image(torch.zeros(3, 20, 36), root / "b" / "2.png")
    report = adapter(p2p_host, pairs_csv).check("train")
    assert not report.ok and len(report.problems) == 3
    missing, unreadable, misaligned = report.problems
    assert "line 2" in missing and "0.png does not exist" in missing
    assert "line 3" in unreadable and "1.png" in unreadable
    assert "line 4" in misaligned and "36x20" in misaligned


def test_bad_listings_say_what_to_fix(p2p_host, tmp_path):
    listing = tmp_path / "pairs.csv"
    with pytest.raises(P2PError, match="does not exist") as missing:
        adapter(p2p_host, listing).dataset("train", train=True)
    assert missing.value.key == "data.file" and "a,b" in missing.value.hint
    listing.write_text("input,target\nx.png,y.png\n", encoding="utf-8")
    with pytest.raises(P2PError, match="no column a or b"):
        adapter(p2p_host, listing).dataset("train", train=True)
    listing.write_text("a,b\nx.png,\n", encoding="utf-8")
    with pytest.raises(P2PError, match="line 2: the b cell is empty"):
        adapter(p2p_host, listing).dataset("train", train=True)
    listing.write_text("a,b\nx.png,y.png\n", encoding="utf-8")
    report = adapter(p2p_host, listing).check("test")
    assert report.problems == ["the listing has no rows of split 'test'"]


def test_params_survive_a_recipe_file(p2p_host):
    check_params_round_trip(p2p_host, "dataset", "csv_pairs", file="data/pairs.csv", a_channels=1,
                            preprocess="none")


@pytest.mark.skipif(not any(d.metadata["Name"] == "p2p-example" for d in md.distributions()),
                    reason="`p2p data check` finds this adapter once the package is installed (pip install -e .)")
def test_p2p_data_check_prints_the_report(pairs_csv, tmp_path):
    (pairs_csv.parent / "b" / "3.png").unlink()
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'task = "pix2pix"\n[data]\nname = "csv_pairs"\nfile = "{pairs_csv.as_posix()}"\n'
                      '[model.generator]\nname = "unet"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "p2pcore", "data", "check", str(recipe), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert (report["adapter"], report["pairs"], report["ok"]) == ("csv_pairs", 4, False)
    assert len(report["problems"]) == 1 and report["problems"][0].startswith("line 5: ")
    assert report["problems"][0].endswith("3.png does not exist")
