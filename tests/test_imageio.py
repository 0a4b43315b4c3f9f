"""Image files <-> tensors: every supported layout loads without loss, and damage is reported by file."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from p2pcore import api
from p2pcore.errors import P2PError
from p2pcore.imageio import Normalization, load_image, match_channels, probe_image, read_image, to_unit, write_image

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")


def ramp16(h: int = 13, w: int = 17, c: int = 1) -> np.ndarray:
    """Distinct 16-bit values, including 0 and 65535, whose low byte matters."""
    values = (np.arange(h * w * c, dtype=np.int64) * 4099 + 1) % 65536
    values[0], values[-1] = 0, 65535
    return values.astype(np.uint16).reshape(h, w, c)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("suffix", [".png", ".tif", ".npy"])
def test_16_bit_round_trip_is_exact(tmp_path, channels, suffix):
    stored = ramp16(c=channels)
    image = torch.from_numpy(stored.astype(np.float32)).permute(2, 0, 1) * (2 / 65535) - 1
    path = tmp_path / f"x{suffix}"
    write_image(image, path, bits=16)
    info = probe_image(path)
    assert (info.width, info.height, info.channels, info.bits) == (17, 13, channels, 16)
    raw = load_image(path)
    assert raw.dtype == torch.uint16
    assert np.array_equal(raw.permute(1, 2, 0).numpy(), stored)
    again = tmp_path / f"again{suffix}"
    write_image(read_image(path, channels), again, bits=16)
    assert np.array_equal(load_image(again).permute(1, 2, 0).numpy(), stored)


def test_16_bit_files_written_by_pillow_keep_precision(tmp_path):
    stored = ramp16()[..., 0]
    for suffix in (".png", ".tif"):
        Image.fromarray(stored).save(tmp_path / f"p{suffix}")
        x = read_image(tmp_path / f"p{suffix}", 1)
        assert x.dtype == torch.float32 and x.shape == (1, 13, 17)
        back = ((x[0].double() + 1) * 65535 / 2).round().numpy().astype(np.uint16)
        assert np.array_equal(back, stored)


def test_16_bit_rgb_png_is_not_truncated_to_8_bits(tmp_path):
    stored = ramp16(c=3)
    write_image(torch.from_numpy(stored.astype(np.float32)).permute(2, 0, 1) * (2 / 65535) - 1,
                tmp_path / "rgb16.png", bits=16)
    assert Image.open(tmp_path / "rgb16.png").size == (17, 13)  # a valid PNG for other readers too
    raw = load_image(tmp_path / "rgb16.png", 3)
    assert raw.dtype == torch.uint16 and int(raw.to(torch.int32).max()) == 65535
    assert np.array_equal(raw.permute(1, 2, 0).numpy(), stored)


def test_multi_page_tiff_and_npy_stacks_have_n_channels(tmp_path):
    stack = ramp16(c=6)
    pages = [Image.fromarray(stack[..., i]) for i in range(6)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    assert probe_image(tmp_path / "stack.tif").channels == 6
    assert np.array_equal(load_image(tmp_path / "stack.tif").permute(1, 2, 0).numpy(), stack)
    np.save(tmp_path / "chw.npy", np.moveaxis(stack, -1, 0))
    np.save(tmp_path / "hwc.npy", stack)
    for name in ("chw.npy", "hwc.npy"):
        info = probe_image(tmp_path / name)
        assert (info.width, info.height, info.channels) == (17, 13, 6)
        assert np.array_equal(load_image(tmp_path / name).permute(1, 2, 0).numpy(), stack)
    floats = np.linspace(0, 1, 13 * 17 * 2, dtype=np.float32).reshape(13, 17, 2)
    np.save(tmp_path / "f.npy", floats)
    assert probe_image(tmp_path / "f.npy").sample == "float"
    assert torch.allclose(read_image(tmp_path / "f.npy", 2), torch.from_numpy(floats).permute(2, 0, 1) * 2 - 1)


def test_8_bit_layouts_and_channel_conversion(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((9, 11, 1), 7, np.uint8)], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.bmp")
    assert torch.equal(load_image(tmp_path / "rgb.png"), torch.from_numpy(rgb).permute(2, 0, 1))
    assert torch.equal(load_image(tmp_path / "rgba.png", 3), torch.from_numpy(rgb).permute(2, 0, 1))
    assert torch.equal(load_image(tmp_path / "rgb.bmp", 3), torch.from_numpy(rgb).permute(2, 0, 1))
    grey3 = load_image(tmp_path / "grey.png", 3)
    assert grey3.shape == (3, 9, 11) and torch.equal(grey3[0], grey3[2])
    luma = load_image(tmp_path / "rgb.png", 1)
    pil_luma = np.asarray(Image.fromarray(rgb).convert("L"))
    assert luma.dtype == torch.uint8 and np.abs(luma[0].numpy().astype(int) - pil_luma).max() <= 1
    x = read_image(tmp_path / "rgb.png", 3)
    assert x.min() >= -1 and x.max() <= 1 and x.dtype == torch.float32
    assert api.read_image(str(tmp_path / "grey.png"), 1).shape == (1, 9, 11)


def test_palette_png_gives_colours_not_indices(tmp_path):
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    image = Image.fromarray(indices, mode="L").convert("P")
    image.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 0] + [0] * 759)
    image.save(tmp_path / "pal.png")
    assert probe_image(tmp_path / "pal.png").channels == 3
    raw = load_image(tmp_path / "pal.png")
    assert raw.shape == (3, 2, 2) and raw[:, 0, 1].tolist() == [200, 100, 50]


def test_jpeg_grey_and_rgb(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.jpg")
    Image.fromarray(rgb[..., 1]).save(tmp_path / "g.jpg")
    assert probe_image(tmp_path / "g.jpg").channels == 1
    assert load_image(tmp_path / "g.jpg", 3).shape == (3, 16, 24)
    assert load_image(tmp_path / "c.jpg", 1).shape == (1, 16, 24)


def _damaged(tmp_path, suffix: str, keep: float) -> str:
    rgb = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG" if suffix == ".png" else "JPEG")
    data = buffer.getvalue()
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(data[: int(len(data) * keep)])
    return str(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_files_are_caught_by_the_header_probe(tmp_path, suffix):
    path = _damaged(tmp_path, suffix, 0.6)
    for reader in (probe_image, load_image):
        with pytest.raises(P2PError) as err:
            reader(path)
        assert err.value.file == path and "corrupt" in (err.value.hint or "")


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(P2PError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(P2PError, match="not found"):
        probe_image(tmp_path / "nope.png")
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image at all")
    for reader in (probe_image, load_image):
        with pytest.raises(P2PError, match="cannot read"):
            reader(tmp_path / "junk.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(P2PError):
        probe_image(tmp_path / "empty.png")


def test_normalisation_rules():
    raw = torch.tensor([[[1000, 2000], [3000, 65535]]], dtype=torch.uint16)
    full = to_unit(raw)
    assert full[0, 1, 1] == 1 and torch.allclose(full[0, 0, 0], torch.tensor(1000 * 2 / 65535 - 1))
    fixed = to_unit(raw, Normalization("fixed", min=1000, max=3000))
    assert fixed.flatten().tolist() == [-1.0, 0.0, 1.0, 1.0]
    pct = to_unit(raw, Normalization("percentile", low=0, high=100))
    assert pct.min() == -1 and torch.isclose(pct.max(), torch.tensor(1.0))
    assert to_unit(torch.full((1, 2, 2), 7, dtype=torch.uint16), Normalization("percentile")).abs().max() == 0
    with pytest.raises(ValueError):
        Normalization("fixed", min=3, max=1)


def test_match_channels_refuses_what_it_cannot_convert():
    with pytest.raises(P2PError, match="5 channels, expected 3"):
        match_channels(torch.zeros(5, 2, 2, dtype=torch.uint8), 3, "stack.npy")
    assert match_channels(torch.zeros(4, 2, 2), 1).shape == (1, 2, 2)


def test_write_refuses_what_a_format_cannot_hold(tmp_path):
    image = torch.zeros(3, 4, 4)
    with pytest.raises(P2PError, match="16-bit"):
        write_image(image, tmp_path / "x.jpg", bits=16)
    with pytest.raises(P2PError, match="unknown image format"):
        write_image(image, tmp_path / "x.xyz")
    with pytest.raises(P2PError, match="cannot hold 5 channels"):
        write_image(torch.zeros(5, 4, 4), tmp_path / "x.png")
    write_image(torch.zeros(5, 4, 4), tmp_path / "x.tif")
    assert load_image(tmp_path / "x.tif").shape == (5, 4, 4)
    write_image(torch.zeros(1, 4, 4), tmp_path / "grey.jpg")
    assert Image.open(tmp_path / "grey.jpg").mode == "L"
    api.write_image(torch.zeros(1, 4, 4), str(tmp_path / "api.png"))
    assert Image.open(tmp_path / "api.png").mode == "L"


def test_damaged_png_data_is_an_error_not_a_crash(tmp_path):
    """Header and tail intact, image data damaged: found only by decoding, which must not kill the process."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    for name, array in {"gray8.png": np.zeros((32, 32), np.uint8) + 7,
                        "rgb16.png": np.full((32, 32, 3), 4000, np.uint16)}.items():
        path = tmp_path / name
        if array.dtype == np.uint16:
            import torch

            from p2pcore.imageio import write_image  # 16-bit colour PNGs need p2p's own writer

            write_image(torch.from_numpy(array.astype(np.float32) / 32767.5 - 1).permute(2, 0, 1), path, bits=16)
        else:
            Image.fromarray(array).save(path)
        data = bytearray(path.read_bytes())
        start = data.index(b"IDAT") + 12
        data[start:start + 16] = b"\xff" * 16
        path.write_bytes(bytes(data))
        probe = ("from p2pcore import P2PError\nfrom p2pcore.imageio import load_image\n"
                 f"try:\n    load_image({str(path)!r})\nexcept P2PError as e:\n    print('refused', e.file)\n")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        assert done.returncode == 0, f"{name}: process died with {done.returncode}"
        assert f"refused {path}" in done.stdout
