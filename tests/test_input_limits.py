"""Inputs that would exhaust memory or time: image bombs, rotated photos, oversized recipes, huge networks.

Each is refused from its header or its text, before anything large is allocated, with a one-screen
error (exit code 2 through the command line) that names the file, the limit and how to change it.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import thermal_folders_recipe
from PIL import Image, ImageOps

from p2pcore.errors import P2PError
from p2pcore.imageio import MAX_PIXELS_ENV, load_image, max_image_pixels, probe_image

ROOT = Path(__file__).resolve().parents[1]


def p2p(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "200"}, timeout=300)


# -- crafted files ------------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares width x height 8-bit grey pixels, with one row of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 8))
                     + _chunk(b"IEND", b""))
    return path


def jpeg_declaring(path: Path, width: int, height: int) -> Path:
    """A real 16 x 16 JPEG whose frame header is patched to declare width x height."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.find(b"\xff\xc0")
    data[frame + 5:frame + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


def npy_declaring(path: Path, shape: tuple[int, ...]) -> Path:
    """A .npy file whose header declares `shape` (uint8), with no data."""
    header = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    return path


def constant_png(path: Path, side: int, value: int = 128) -> Path:
    """A real side x side 8-bit grey PNG of one value, written without holding its pixels in memory."""
    rows = (b"\x00" + bytes([value]) * side) * 100
    packer = zlib.compressobj(1)
    data = b"".join(packer.compress(rows) for _ in range(side // 100)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


BOMBS = {
    "png-50000": lambda d: png_declaring(d / "bomb.png", 50000, 50000),
    "jpeg-60000": lambda d: jpeg_declaring(d / "bomb.jpg", 60000, 60000),
    "npy-100000": lambda d: npy_declaring(d / "bomb.npy", (100000, 100000)),
    "png-12000-real": lambda d: constant_png(d / "big.png", 12000),
}
DECLARED = {"png-50000": "50000 x 50000", "jpeg-60000": "60000 x 60000", "npy-100000": "100000 x 100000",
            "png-12000-real": "12000 x 12000"}


@pytest.fixture(autouse=True)
def default_limit(monkeypatch):
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)


# -- image bombs --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(BOMBS))
@pytest.mark.parametrize("reader", [probe_image, load_image], ids=["probe_image", "load_image"])
def test_image_bombs_are_refused_from_the_header(tmp_path, kind, reader):
    path = BOMBS[kind](tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning from Pillow either
        with pytest.raises(P2PError) as err:
            reader(path)
    error = err.value
    assert error.file == str(path)
    assert DECLARED[kind] in error.message and "100 megapixels" in error.message
    assert MAX_PIXELS_ENV in error.message and MAX_PIXELS_ENV in error.hint


def test_the_12000_px_png_is_small_on_disk_and_the_limit_is_100_megapixels(tmp_path):
    path = constant_png(tmp_path / "big.png", 12000)
    assert path.stat().st_size < 2_000_000
    assert max_image_pixels() == 100_000_000 == Image.MAX_IMAGE_PIXELS
    assert probe_image(constant_png(tmp_path / "ok.png", 10000)).width == 10000  # 100 megapixels exactly


def test_the_limit_is_read_from_the_environment_and_pillow_agrees(tmp_path, monkeypatch):
    path = constant_png(tmp_path / "grey.png", 300, value=7)
    monkeypatch.setenv(MAX_PIXELS_ENV, "50000")
    with pytest.raises(P2PError, match="300 x 300 pixels") as err:
        load_image(path)
    assert "0.05 megapixels" in err.value.message and f"{MAX_PIXELS_ENV}=90000" in err.value.hint
    assert Image.MAX_IMAGE_PIXELS == 50000
    monkeypatch.setenv(MAX_PIXELS_ENV, "90000")
    image = load_image(path)
    assert tuple(image.shape) == (1, 300, 300) and int(image.max()) == 7
    assert probe_image(path).height == 300 and Image.MAX_IMAGE_PIXELS == 90000
    monkeypatch.setenv(MAX_PIXELS_ENV, "many")
    with pytest.raises(P2PError, match=f"{MAX_PIXELS_ENV} must be a whole number"):
        probe_image(path)


def test_stacks_count_their_channels(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")
    np.save(tmp_path / "four.npy", np.zeros((4, 100, 100), np.uint8))
    assert probe_image(tmp_path / "four.npy").channels == 4
    np.save(tmp_path / "eight.npy", np.zeros((8, 100, 100), np.uint8))
    with pytest.raises(P2PError, match="8 channels"):
        load_image(tmp_path / "eight.npy")


def test_a_tiff_series_its_metadata_declares_is_not_allocated(tmp_path):
    """An OME-TIFF of one 16-bit RGB page whose OME-XML claims a million planes: only the stored page is read."""
    tifffile = pytest.importorskip("tifffile")
    pixels = (np.arange(16 * 16 * 3, dtype=np.uint16).reshape(16, 16, 3) * 80)
    ome = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
           '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="16" SizeY="16" '
           'SizeC="3" SizeZ="1000000" SizeT="1" Interleaved="true"><Channel ID="Channel:0:0" SamplesPerPixel="3"/>'
           '<TiffData IFD="0" PlaneCount="1000000"/></Pixels></Image></OME>')
    path = tmp_path / "claims.ome.tif"
    tifffile.imwrite(path, pixels, photometric="rgb", description=ome, metadata=None)
    assert path.stat().st_size < 10_000
    tracemalloc.start()
    try:
        image = load_image(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert image.shape == (3, 16, 16) and np.array_equal(image.permute(1, 2, 0).numpy().astype(np.int64), pixels)
    assert peak < 20_000_000, f"{peak} bytes for a 1.5 KB image"


def test_tiff_pages_of_different_sizes_are_refused_before_decoding(tmp_path):
    pages = [Image.new("L", (8, 8)), Image.new("L", (16, 8))]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(P2PError, match="differ in size"):
        load_image(tmp_path / "stack.tif")


def _bomb_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "ir").mkdir(parents=True)
    (root / "rgb").mkdir()
    for i in range(5):
        Image.new("L", (32, 24), 40 * i).save(root / "ir" / f"{i}.png")
        Image.new("RGB", (32, 24), (40 * i, 0, 0)).save(root / "rgb" / f"{i}.jpg")
    png_declaring(root / "ir" / "1.png", 50000, 50000)
    jpeg_declaring(root / "rgb" / "2.jpg", 60000, 60000)
    (root / "ir" / "3.png").unlink()
    npy_declaring(root / "ir" / "3.npy", (100000, 100000))
    constant_png(root / "ir" / "4.png", 12000)
    return thermal_folders_recipe(tmp_path / "recipe.toml", root)


@pytest.mark.parametrize("deep", [False, True], ids=["headers", "deep"])
def test_data_check_names_every_bomb_and_exits_2(tmp_path, deep):
    recipe = _bomb_dataset(tmp_path)
    done = p2p("data", "check", recipe, *(["--deep"] if deep else []))
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output and "DecompressionBomb" not in output
    for name, size in (("ir/1.png", "50000 x 50000"), ("rgb/2.jpg", "60000 x 60000"),
                       ("ir/3.npy", "100000 x 100000"), ("ir/4.png", "12000 x 12000")):
        assert name in done.stdout and size in done.stdout, output
    assert MAX_PIXELS_ENV in done.stdout


# -- EXIF orientation ---------------------------------------------------------------------------------

def _gradient(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)


def _save_with_orientation(array: np.ndarray, path: Path, orientation: int, **options) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, exif=exif, **options)
    return path


@pytest.mark.parametrize("torchvision_path", [True, False], ids=["torchvision", "pillow"])
def test_a_portrait_jpeg_with_orientation_6_is_read_upright(tmp_path, monkeypatch, torchvision_path):
    from p2pcore.imageio import decode

    if not torchvision_path:
        monkeypatch.setattr(decode, "_decode_with_torchvision", lambda path, image, channels: None)
    stored = _gradient()  # 64 wide, 48 high as stored; a portrait 48 x 64 once turned
    path = _save_with_orientation(stored, tmp_path / "portrait.jpg", 6, quality=95)
    image = load_image(path)
    assert tuple(image.shape) == (3, 64, 48)
    upright = np.rot90(stored, -1)  # orientation 6: the camera was turned 90 degrees clockwise
    assert np.abs(image.permute(1, 2, 0).numpy().astype(float) - upright).mean() < 3
    assert tuple(load_image(path, 1).shape) == (1, 64, 48)
    info = probe_image(path)
    assert (info.width, info.height) == (48, 64)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_exif_transpose(tmp_path, suffix, orientation):
    stored = _gradient(5, 7)
    options = {"lossless": True} if suffix == ".webp" else {}
    path = _save_with_orientation(stored, tmp_path / f"o{suffix}", orientation, **options)
    with Image.open(path) as opened:
        expected = np.asarray(ImageOps.exif_transpose(opened))
    image = load_image(path)
    assert image.dtype == torch.uint8
    assert np.array_equal(image.permute(1, 2, 0).numpy(), expected)
    info = probe_image(path)
    assert (info.height, info.width) == expected.shape[:2]


def test_tiff_stacks_and_16_bit_images_are_turned_too(tmp_path):
    stored = np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000
    exif = Image.Exif()
    exif[0x0112] = 8
    pages = [Image.fromarray(stored), Image.fromarray(stored + 1)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:], exif=exif)
    image = load_image(tmp_path / "stack.tif")
    expected = np.stack([np.rot90(stored, 1), np.rot90(stored + 1, 1)])
    assert image.dtype == torch.uint16 and np.array_equal(image.numpy(), expected)
    info = probe_image(tmp_path / "stack.tif")
    assert (info.width, info.height, info.channels) == (5, 7, 2)


# -- recipes and networks through the command line ------------------------------------------------

RECIPE = """
task = "pix2pix"
[data]
name = "synthetic_thermal"
size = 32
[model.generator]
name = "{generator}"
ngf = 8
[model.discriminator]
name = "patch"
ndf = 8
[loss]
l1 = {{ name = "l1", weight = 100.0 }}
"""


def _validate(recipe: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, str]:
    done = p2p("validate", recipe, *(part for text in overrides for part in ("--set", text)))
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    assert 0 < len(done.stderr.strip().splitlines()) <= 25, output
    return done, output


@pytest.mark.parametrize(("generator", "setting", "key", "bound"), [
    ("unet", "ngf=1e9", "model.generator.ngf", "1024"),
    ("unet", "depth=1000", "model.generator.depth", "10"),
    ("encoder_decoder", "depth=11", "model.generator.depth", "10"),
    ("resnet", "ngf=100000", "model.generator.ngf", "1024"),
    ("resnet", "n_blocks=1000000", "model.generator.n_blocks", "64"),
])
def test_validate_refuses_networks_too_large_to_build(tmp_path, generator, setting, key, bound):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(generator=generator))
    done, _ = _validate(recipe, f"model.generator.{setting}")
    assert key in done.stderr and f"less than or equal to {bound}" in done.stderr
    assert "hint" in done.stderr


def test_validate_refuses_oversized_resize(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(generator="unet").replace(
        'name = "synthetic_thermal"\nsize = 32',
        f'name = "paired_folders"\nroot = "{tmp_path.as_posix()}"\nload_size = 100000000'))
    done, _ = _validate(recipe)
    assert "data.load_size" in done.stderr and "8192" in done.stderr


def test_validate_refuses_hostile_recipe_files(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    done, _ = _validate(deep)
    assert str(deep) in done.stderr and "nested more than 32 deep" in done.stderr

    chain = [tmp_path / f"r{i}.toml" for i in range(1000)]
    for i, path in enumerate(chain[:-1]):
        path.write_text(f'extends = "r{i + 1}.toml"\nseed = {i}\n')
    chain[-1].write_text(RECIPE.format(generator="unet"))
    done, _ = _validate(chain[0])
    assert "extends" in done.stderr and "32" in done.stderr

    if Path("/dev/zero").exists():
        child = tmp_path / "zero.toml"
        child.write_text('extends = "/dev/zero"\n')
        done, _ = _validate(child)
        assert str(child) in done.stderr and "/dev/zero" in done.stderr and "extends" in done.stderr
