"""Write the built-in synthetic scenes to image files: inputs for `p2p translate` after a quickstart.

The quickstarts render their scenes on the fly, so a new user has no thermal image to translate. This
writes the scenes the quickstarts are scored on (the test split, seed 0, 64 px: the very images of their
sample grids and `eval/` figures):

    python -m p2p_datasets.scenes scenes/
    p2p translate runs/quickstart/checkpoints/latest.safetensors scenes/thermal/ out/colour/

`FOLDER/thermal/` holds 16-bit grey PNGs (the thermal images as the network sees them, without rounding to
8 bits), `FOLDER/colour/` 8-bit colour PNGs, both named `test_00000.png`, ... as the scenes are named in
the sample grids; with `--labels`, `FOLDER/labels/` holds the label scenes of `quickstart_hd` in the
Cityscapes release layout (``gtFine/test/synthetic/*_gtFine_labelIds.png`` with their instance maps, and
``leftImg8bit/test/synthetic/*_leftImg8bit.png``). Existing files are replaced: the scenes are always the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

from p2pcore.api import write_atomically

from .imagefiles import write_image
from .synthetic import SPLITS, SyntheticThermal


def write_thermal_scenes(folder: str | Path, *, split: str = "test", count: int = 32, size: int = 64,
                         seed: int = 0) -> list[Path]:
    """Scenes 0 .. count-1 of `split` as FOLDER/thermal/<name>.png (16 bits) and FOLDER/colour/<name>.png
    (8 bits), as the `synthetic_thermal` adapter gives and names them; returns the thermal files."""
    folder = Path(folder)
    (folder / "thermal").mkdir(parents=True, exist_ok=True)
    (folder / "colour").mkdir(parents=True, exist_ok=True)
    params = SimpleNamespace(size=size, seed=seed, train_count=count, test_count=count, paired=True, flip=False)
    scenes = SyntheticThermal(params).dataset(split, train=False)
    written = []
    for index in range(len(scenes)):
        item = scenes[index]
        name = f"{item['name']}.png"
        for side, subfolder, bits in (("a", "thermal", 16), ("b", "colour", 8)):
            write_atomically(folder / subfolder / name,
                             lambda path, image=item[side], bits=bits: write_image(image, path, bits=bits),
                             what=f"the {subfolder} scene")
        written.append(folder / "thermal" / name)
    return written


def write_label_scenes(folder: str | Path, *, split: str = "test", count: int = 32, size: int = 64,
                       seed: int = 0) -> list[Path]:
    """The `synthetic_labels` scenes in the Cityscapes release layout under FOLDER; returns the label files."""
    from .synthetic_labels import SyntheticLabels

    params = SimpleNamespace(size=size, seed=seed, train_count=count, test_count=count, instances=True, flip=False)
    return SyntheticLabels(params).write_files(split, folder, count)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m p2p_datasets.scenes", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write thermal/ and colour/ (and labels/)")
    parser.add_argument("--split", choices=sorted(SPLITS), default="test", help="the split (default: test, "
                        "the scenes the quickstarts are scored on)")
    parser.add_argument("--count", type=int, default=32, help="scenes to write (default 32, the quickstarts' "
                        "test_count)")
    parser.add_argument("--size", type=int, default=64, help="side in pixels (default 64, the quickstarts')")
    parser.add_argument("--seed", type=int, default=0, help="the recipes' data.seed (default 0)")
    parser.add_argument("--labels", action="store_true", help="also write quickstart_hd's label scenes to "
                        "FOLDER/labels/ (Cityscapes layout)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.size < 32:
        parser.error("--count must be at least 1 and --size at least 32")
    files = write_thermal_scenes(args.folder, split=args.split, count=args.count, size=args.size, seed=args.seed)
    print(f"wrote {len(files)} scenes to {args.folder / 'thermal'} and {args.folder / 'colour'}")
    if args.labels:
        labels = write_label_scenes(args.folder / "labels", split=args.split, count=args.count, size=args.size,
                                    seed=args.seed)
        print(f"wrote {len(labels)} label scenes to {labels[0].parent}")


if __name__ == "__main__":
    main()
