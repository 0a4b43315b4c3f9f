"""`p2pcore.load`: a checkpoint's translation as a Python object, for scripts and notebooks.

    import p2pcore
    model = p2pcore.load("run/checkpoints/latest.safetensors", device="auto")
    photo = model.translate(Image.open("thermal.png"))       # a PIL image in, a PIL image out
    array = model.translate(np.load("frame.npy"))            # a NumPy array in, one of its dtype out
    model.translate_folder("thermal/", "photos/")            # files, as `p2p translate` writes them

The checkpoint is opened as `p2p translate` opens it (its weight average where it keeps one), with the same
choices: direction, test-time protocol, device, precision, test-time size, batching and tiles.

A PIL image or a NumPy array (H x W or H x W x C; uint8, uint16, int32 or float in [0, 1]) goes through the
checkpoint's dataset adapter as a file does: written losslessly where the adapter reads it (``.npy``, else
``.png``), read by its `read_input`, translated, written by its `write_output` and read back, so the values
are those `p2p translate` writes (its normalisation, its output bits, a label map decoded to colours). They
come back in the input's type and convention: the same dtype (full range for integers, [0, 1] for floats),
H x W when the input was H x W and the output has one channel, else H x W x C'; a PIL image in the mode of
its channels (16-bit and float grey stay 16-bit and float). Label-map inputs (pix2pixHD's ``label``) are
arrays of ids: H x W, or H x W x 2 with the instance ids.

A float tensor is taken as the networks see images: C x H x W or N x C x H x W in [-1, 1] (label maps: ids),
translated without files, returned as a float tensor in [-1, 1] on the input's device; an integer tensor
(C x H x W) goes through files as an array does and comes back as a tensor of its dtype. The output has the
input's size unless the model's size is kept (`keep_model_size` with a test-time size).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from p2pcore.errors import P2PError
from p2pcore.formats import IMAGE_SUFFIXES

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from p2pcore.engine.infer.pipeline import Outcome
    from p2pcore.engine.infer.translate import Translator as Engine

__all__ = ["Translator", "load"]

_LOSSLESS_OUTPUTS = (".npy", ".png", ".tif", ".tiff")


def load(checkpoint: str | Path, *, direction: str | None = None, protocol: str = "paper", device: str = "auto",
         precision: str = "fp32", seed: int = 0, load_size: int | None = None, scale_width: int | None = None,
         keep_model_size: bool = False, batch_size: int = 8, tile: int | None = None, overlap: int | None = None,
         style: str | None = None, styles: str | Path | None = None, host: Any = None) -> Translator:
    """A checkpoint's direction (the task's first unless named) ready to translate, as `p2p translate` runs it:
    `protocol` ``paper`` (dropout and batch statistics, the default) or ``eval``; `device` ``auto``, ``cpu``,
    ``cuda:N``; `precision` ``fp32``, ``bf16`` (CPU and CUDA) or ``fp16`` (CUDA); `load_size` (N x N) or
    `scale_width` (aspect kept) as the test-time size, else the checkpoint's recipe's ``[translate]``; outputs
    back at each input's size unless `keep_model_size`. Bad input is a :class:`p2pcore.P2PError`."""
    from p2pcore.engine.infer.translate import Translator as Engine
    from p2pcore.plugins import load_host

    if protocol not in ("paper", "eval"):
        raise P2PError(f"unknown protocol {protocol!r}", key="protocol", hint="use paper or eval")
    engine = Engine(checkpoint, host if host is not None else load_host(), device=device,
                    protocol=protocol,  # type: ignore[arg-type]
                    seed=seed, direction=direction, style=style, styles=str(styles) if styles else None,
                    batch_size=batch_size, tile=tile, overlap=overlap, load_size=load_size,
                    scale_width=scale_width, keep_model_size=keep_model_size, precision=precision)
    return Translator(engine)


class Translator:
    """One direction of a checkpoint: :meth:`translate` for images in memory, :meth:`translate_folder` for
    files (see the module)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __repr__(self) -> str:
        e = self.engine
        return (f"Translator({e.run.file!r}, direction={e.direction!r}, protocol={e.protocol!r}, "
                f"device={str(e.device)!r}, precision={e.precision!r})")

    # what it runs
    direction = property(lambda self: self.engine.direction)
    protocol = property(lambda self: self.engine.protocol)
    device = property(lambda self: self.engine.device)
    precision = property(lambda self: self.engine.precision)
    in_channels = property(lambda self: self.engine.in_channels)
    out_channels = property(lambda self: self.engine.out_channels)
    size_multiple = property(lambda self: self.engine.multiple)

    def translate(self, image: Any) -> Any:
        """A PIL image, a NumPy array or a tensor to its translation, of the same type (see the module)."""
        import torch

        if isinstance(image, torch.Tensor):
            return self._tensor(image)
        if isinstance(image, np.ndarray):
            return self._array(image)
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - Pillow is a dependency
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            return _to_pil(self._array(_pil_array(image)), image.mode)
        raise P2PError(f"cannot translate a {type(image).__name__}",
                       hint="give a PIL image, a NumPy array (H x W or H x W x C) or a torch tensor (C x H x W)")

    def translate_folder(self, source: str | Path, target: str | Path, *, overwrite: bool = False,
                         fail_fast: bool = False, workers: int | None = None) -> Outcome:
        """Translate an image file or a folder's image files (those the adapter reads) into `target`, with the
        same names, as `p2p translate` does: checked before any network runs (inputs never overwritten,
        existing outputs only with `overwrite`), each output written atomically; a bad file is skipped and
        the rest translated, then a P2PError lists the failures (with `fail_fast`, the first stops the run)."""
        from p2pcore.engine.infer.pipeline import translate_files
        from p2pcore.engine.infer.translate import plan

        jobs = plan(Path(source), Path(target), self.engine.formats, overwrite=overwrite)
        outcome = translate_files(self.engine, jobs, fail_fast=fail_fast, workers=workers)
        if outcome.failed:
            raise P2PError(f"{len(outcome.failed)} of {len(jobs)} image(s) failed; the other {outcome.written} "
                           "were written", details=[f"{e.file}: {e.message}" for e in outcome.failed],
                           hint="fix or remove the files listed")
        return outcome

    # -- tensors: the networks' own images ------------------------------------------------------------------
    def _tensor(self, image: torch.Tensor) -> torch.Tensor:
        import torch

        if not image.dtype.is_floating_point:
            if image.dim() != 3:
                raise P2PError(f"an integer tensor must be C x H x W, got {tuple(image.shape)}",
                               hint="give one image, or a float batch N x C x H x W in [-1, 1]")
            array = self._array(image.detach().cpu().permute(1, 2, 0).numpy())
            return torch.from_numpy(np.ascontiguousarray(array if array.ndim == 3 else array[..., None])
                                    ).permute(2, 0, 1).to(image.device)
        batch = image.detach().float().cpu()
        if batch.dim() not in (3, 4):
            raise P2PError(f"a float tensor must be C x H x W or N x C x H x W, got {tuple(image.shape)}",
                           hint="add the channel dimension: image[None] for a grey H x W image")
        single = batch.dim() == 3
        items = [batch] if single else list(batch)
        self._check_channels(items[0].shape[0])
        outs = self.engine.translate_many(items)
        out = outs[0] if single else torch.stack(outs)
        return out.to(device=image.device, dtype=image.dtype)

    # -- arrays: through the adapter's files ----------------------------------------------------------------
    def _array(self, array: np.ndarray) -> np.ndarray:
        """An H x W (x C) array through the adapter's reading and writing, back in its dtype and layout."""
        if array.dtype == np.bool_:
            array = array.astype(np.uint8) * 255
        if array.ndim not in (2, 3) or array.dtype.kind not in "uif":
            raise P2PError(f"an image array must be H x W or H x W x C of numbers, got {array.shape} "
                           f"{array.dtype}", hint="e.g. np.asarray(PIL.Image.open(path))")
        engine = self.engine
        with tempfile.TemporaryDirectory(prefix="p2p-translate-") as folder:
            if engine.input_is_labels:
                image = self._label_map(array)
            else:
                source = _input_file(array, Path(folder), engine.formats.reads)
                try:
                    image = engine.read(source)
                except P2PError as error:  # about the array, not the temporary file it went through
                    raise P2PError(error.message, key=error.key, details=error.details,
                                   hint=f"give an image of the model's input side: {engine.in_channels} "
                                        "channel(s), or grey, colour or with alpha, which are converted") from None
            self._check_channels(image.shape[0])
            out = engine(image)
            suffix = next((s for s in _LOSSLESS_OUTPUTS if engine.formats.writes(Path(f"out{s}"))),
                          engine.formats.outputs[0])
            if suffix not in IMAGE_SUFFIXES:  # written in a format p2p cannot read back: the network's image
                return _from_unit(out, array)
            target = Path(folder) / f"out{suffix}"
            engine.write(out, target, source=Path("<array>"))
            from p2pcore.imageio import load_image

            return _from_stored(load_image(target), array)

    def _label_map(self, array: np.ndarray) -> torch.Tensor:
        import torch

        if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
            raise P2PError("a label map holds integer ids, and this array has fractions",
                           hint="give the label ids (and instance ids) as integers")
        ids = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return ids[None] if ids.dim() == 2 else ids.permute(2, 0, 1).contiguous()

    def _check_channels(self, channels: int) -> None:
        if channels != self.engine.in_channels:
            raise P2PError(f"the input has {channels} channel(s) and this model takes "
                           f"{self.engine.in_channels}", hint="give images of the checkpoint's input side")


def _pil_array(image: Any) -> np.ndarray:
    """A PIL image's pixels as stored: uint8 (L, LA, RGB, RGBA; palette and 1-bit expanded), uint16 (I;16),
    int32 (I) or float32 (F)."""
    mode = image.mode
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    if mode in ("I", "F", "L", "LA", "RGB", "RGBA"):
        return np.asarray(image)
    return np.asarray(image.convert("RGBA" if "A" in mode or "transparency" in image.info else
                                    "L" if mode == "1" else "RGB"))


def _input_file(array: np.ndarray, folder: Path, reads: Any) -> Path:
    """Write an array where the adapter reads it without loss: .npy (channels first or last, whichever the
    reader takes it as), else .png for 8-bit images and 16-bit grey."""
    if reads(folder / "in.npy"):
        path = folder / "in.npy"
        if array.ndim == 3 and array.shape[0] < array.shape[2]:  # an H x W x C array read as C x H x W
            array = np.moveaxis(array, -1, 0)
            if array.shape[0] >= array.shape[2]:
                raise P2PError(f"an image of {array.shape[1]} x {array.shape[2]} pixels is smaller than its "
                               f"{array.shape[0]} channels", hint="give a larger image")
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        return path
    channels = 1 if array.ndim == 2 else array.shape[2]
    if reads(folder / "in.png") and (array.dtype == np.uint8 or (array.dtype == np.uint16 and channels == 1)):
        from PIL import Image

        path = folder / "in.png"
        Image.fromarray(array[..., 0] if array.ndim == 3 and channels == 1 else array).save(path)
        return path
    raise P2PError(f"this model's dataset adapter reads neither .npy nor .png files of {array.dtype} with "
                   f"{channels} channel(s)", hint="give 8-bit images, or translate its files with "
                                                  "translate_folder")


def _layout(unit: np.ndarray, like: np.ndarray) -> np.ndarray:
    """C x H x W values to `like`'s layout: H x W for one channel when `like` is H x W, else H x W x C."""
    out = np.moveaxis(unit, 0, -1)
    return out[..., 0] if like.ndim == 2 and out.shape[-1] == 1 else out


def _in_dtype(unit: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as `like`'s dtype: full range for integers, [0, 1] for floats."""
    if like.dtype.kind == "f":
        return unit.astype(like.dtype)
    scale = 255.0 if like.dtype == np.uint8 else 65535.0  # imageio's full range: 16-bit for wider integers
    return np.clip(np.round(unit * scale), 0, scale).astype(like.dtype)


def _from_stored(stored: torch.Tensor, like: np.ndarray) -> np.ndarray:
    """A file read back (C x H x W as stored) in `like`'s dtype and layout; equal samples when the file's
    type is `like`'s."""
    from p2pcore.imageio.normalization import full_scale

    values = stored.numpy()
    if values.dtype == like.dtype and values.dtype.kind in "ui":
        return _layout(values, like).copy()
    unit = values.astype(np.float64) / full_scale(stored.dtype) if values.dtype.kind in "ui" else values
    return _in_dtype(_layout(np.clip(unit, 0.0, 1.0), like), like)


def _from_unit(image: torch.Tensor, like: np.ndarray) -> np.ndarray:
    """A network image in [-1, 1] in `like`'s dtype and layout."""
    unit = (image.double().numpy() + 1.0) / 2.0
    return _in_dtype(_layout(np.clip(unit, 0.0, 1.0), like), like)


def _to_pil(array: np.ndarray, mode: str) -> Any:
    """An array as a PIL image of its channels: grey in the input's depth (8-bit L, 16-bit I;16, 32-bit I,
    float F), grey with alpha, RGB or RGBA (8-bit; deeper colour is scaled to 8 bits, as PIL holds it)."""
    from PIL import Image

    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.dtype != np.uint8:
        unit = array if array.dtype.kind == "f" else array / 65535.0
        array = np.round(np.clip(unit, 0.0, 1.0) * 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] > 4:
        array = array[..., :3]
    image = Image.fromarray(np.ascontiguousarray(array))
    return image.convert("I") if image.mode.startswith("I;16") and not mode.startswith("I;16") else image
