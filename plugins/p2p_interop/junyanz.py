"""Import networks trained with junyanz/pytorch-CycleGAN-and-pix2pix, the pix2pix and CycleGAN reference code.

The reference writes one state_dict per network (``latest_net_G.pth`` and ``latest_net_D.pth`` for
pix2pix; ``..._net_G_A.pth`` and so on for CycleGAN). Its key names follow its module nesting
(``model.model.1.model.3.model.1.weight``); p2p's built-in networks compute the same functions under
readable names (``down.2.conv.weight``). A network is imported by building the p2p component that the
training flags describe through the plugin host, then taking each of its tensors from the reference key
that holds the same layer, with shapes checked. A checkpoint whose layers do not fit the flags is
refused with an error naming the file, the first key that does not fit and the flag that is most likely
wrong, instead of loading weights into the wrong places.

Flags mirror the reference's training options: --netG, --netD, --n_layers_D, --ngf, --ndf, --norm,
--no_dropout, --input_nc, --output_nc.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from p2pcore.api import P2PError, did_you_mean

GENERATORS: dict[str, tuple[str, int]] = {
    "unet_256": ("unet", 8),          # depth: stride-2 downsamplings
    "unet_128": ("unet", 7),
    "resnet_9blocks": ("resnet", 9),  # residual blocks
    "resnet_6blocks": ("resnet", 6),
}
DISCRIMINATORS = ("basic", "n_layers", "pixel")
NORMS = ("batch", "instance", "none")

GENERIC_HINT = ("pass the flags the network was trained with (--netG/--netD, --ngf/--ndf, --norm, "
                "--input-nc, --output-nc); the reference's train_opt.txt beside the checkpoint lists them")


@dataclass
class Imported:
    """A converted network: the p2p component spec that rebuilds it, and the network with its weights."""

    kind: str
    spec: dict[str, Any]
    net: nn.Module
    conditional: bool | None = None


# -- reading -------------------------------------------------------------------------------------------

def load_reference_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state_dict in a reference ``.pth`` file (read without unpickling code) or a ``.safetensors`` file.

    A safetensors file whose tensors are named ``state.<key>`` yields those keys; a ``module.`` prefix
    (networks saved inside DataParallel) is removed.
    """
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise P2PError("checkpoint not found", file=file,
                       hint="the reference keeps them in checkpoints/<name>/, e.g. latest_net_G.pth")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            tensors = load_file(file)
        except Exception as exc:
            raise P2PError(f"cannot read the safetensors file: {exc}", file=file) from None
        if any(key.startswith("state.") for key in tensors):
            tensors = {key[len("state."):]: t for key, t in tensors.items() if key.startswith("state.")}
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise P2PError(f"cannot read it as a PyTorch state_dict: {reason}", file=file,
                           hint="give a .pth file written by the reference (latest_net_G.pth); files that "
                                "hold pickled objects other than tensors are refused") from None
        if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
            obj = obj["state_dict"]
        if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise P2PError("the file holds no state_dict (a mapping from names to tensors)", file=file,
                           hint="give the per-network file the reference wrote, e.g. latest_net_G.pth")
        tensors = dict(obj)
    if not tensors:
        raise P2PError("the checkpoint holds no tensors", file=file)
    return tensors


def _clean(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a DataParallel ``module.`` prefix, and running statistics that old PyTorch versions kept for
    instance norms without affine parameters (layers with statistics but no weight)."""
    state = dict(state)
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: t for key, t in state.items()}
    for key in [k for k in state if k.endswith(".running_mean")]:
        layer = key[: -len(".running_mean")]
        if f"{layer}.weight" not in state:
            for leaf in ("running_mean", "running_var", "num_batches_tracked"):
                state.pop(f"{layer}.{leaf}", None)
    return state


def detect_norm(state: Mapping[str, torch.Tensor], probe_bias: str) -> str:
    """The --norm a network was trained with: batch norms keep running statistics; an instance norm
    (no affine parameters) lets the convolution before it keep a bias (`probe_bias`); none drops both."""
    if any(key.endswith(".running_mean") for key in state):
        return "batch"
    return "instance" if probe_bias in state else "none"


# -- where each p2p layer lives in the reference --------------------------------------------------------

def unet_layers(depth: int) -> list[tuple[str, str]]:
    """(p2p module, reference module) pairs of a U-Net with `depth` downsamplings.

    The reference nests one block per level: the outermost block is ``model.model`` (down conv 0, the
    inner block 1, up conv 3), each inner level ``<parent>.model.3.model`` (conv 1, norm 2, inner 3,
    up conv 5, norm 6) down to the innermost (conv 1, up conv 3, norm 4).
    """
    pairs = [("down.0.conv", "model.model.0"), ("up.0.conv", "model.model.3")]
    for level in range(1, depth):
        block = "model.model.1." + "model.3." * (level - 1) + "model."
        if level < depth - 1:
            pairs += [(f"down.{level}.conv", block + "1"), (f"down.{level}.norm", block + "2"),
                      (f"up.{level}.conv", block + "5"), (f"up.{level}.norm", block + "6")]
        else:
            pairs += [(f"down.{level}.conv", block + "1"), (f"up.{level}.conv", block + "3"),
                      (f"up.{level}.norm", block + "4")]
    return pairs


def resnet_layers(n_blocks: int, dropout: bool) -> list[tuple[str, str]]:
    """Pairs of a ResNet generator; the reference is one flat Sequential ``model`` with padding, ReLU
    and (inside blocks) dropout layers counted in its indices."""
    pairs = [("head.conv", "model.1"), ("head.norm", "model.2"),
             ("down.0.conv", "model.4"), ("down.0.norm", "model.5"),
             ("down.1.conv", "model.7"), ("down.1.norm", "model.8")]
    second = 6 if dropout else 5
    for b in range(n_blocks):
        block = f"model.{10 + b}.conv_block."
        pairs += [(f"blocks.{b}.conv1", block + "1"), (f"blocks.{b}.norm1", block + "2"),
                  (f"blocks.{b}.conv2", block + str(second)), (f"blocks.{b}.norm2", block + str(second + 1))]
    up = 10 + n_blocks
    pairs += [("up.0.conv", f"model.{up}"), ("up.0.norm", f"model.{up + 1}"),
              ("up.1.conv", f"model.{up + 3}"), ("up.1.norm", f"model.{up + 4}"),
              ("tail.conv", f"model.{up + 7}")]
    return pairs


def patch_layers(n_layers: int) -> list[tuple[str, str]]:
    """Pairs of a PatchGAN: the reference Sequential ``model`` holds conv, LeakyReLU, then conv, norm,
    LeakyReLU for each later layer, then the last conv."""
    pairs = [("blocks.0.conv", "model.0")]
    for j in range(1, n_layers + 1):
        conv = 2 + 3 * (j - 1)
        pairs += [(f"blocks.{j}.conv", f"model.{conv}"), (f"blocks.{j}.norm", f"model.{conv + 1}")]
    pairs.append(("head", f"model.{2 + 3 * n_layers}"))
    return pairs


def pixel_layers() -> list[tuple[str, str]]:
    """Pairs of a PixelGAN: the reference Sequential ``net`` is conv, LReLU, conv, norm, LReLU, conv."""
    return [("blocks.0.conv", "net.0"), ("blocks.1.conv", "net.2"), ("blocks.1.norm", "net.3"),
            ("head", "net.5")]


# -- moving the tensors -----------------------------------------------------------------------------------

def transfer(state: Mapping[str, torch.Tensor], net: nn.Module, layers: list[tuple[str, str]], *, file: str,
             flags: str, explain: Callable[[], str], zero_biases: bool = False) -> dict[str, torch.Tensor]:
    """Fill `net`'s state_dict from the reference `state` layer by layer; every reference tensor must be
    used once and every shape must agree. Returns the p2p state_dict that was loaded.

    With `zero_biases` (--norm none, where the reference drops the biases that p2p keeps) a missing
    bias becomes zero, which computes the same; a missing batch counter (very old files) stays zero.
    """
    fillable = ("num_batches_tracked", "bias") if zero_biases else ("num_batches_tracked",)
    where = dict(layers)
    converted: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def refuse(problem: str, key: str) -> P2PError:
        return P2PError(f"the checkpoint does not fit {flags}: {problem}", file=file, key=key, hint=explain())

    for key, target in net.state_dict().items():
        module, _, leaf = key.rpartition(".")
        if module not in where:
            raise RuntimeError(f"no reference layer is known for p2p layer {module!r}")
        ref_key = f"{where[module]}.{leaf}"
        if ref_key not in state:
            if leaf in fillable:
                converted[key] = torch.zeros_like(target)
                continue
            raise refuse(f"it has no {ref_key} (for {key}, shape {tuple(target.shape)})", ref_key)
        tensor = state[ref_key]
        if tuple(tensor.shape) != tuple(target.shape):
            raise refuse(f"{ref_key} has shape {tuple(tensor.shape)} where {tuple(target.shape)} is expected",
                         ref_key)
        converted[key] = tensor.detach().to(dtype=target.dtype).clone()
        used.add(ref_key)
    unused = [key for key in state if key not in used]
    if unused:
        raise refuse(f"{unused[0]} has no place in the network"
                     + (f" (and {len(unused) - 1} more keys)" if len(unused) > 1 else ""), unused[0])
    net.load_state_dict(converted)
    return converted


def _resolved(host: Any, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with every parameter spelt out (references included), as a run's recipe records it."""
    return host.resolve(kind, dict(spec)).as_table()


def _choice(value: str, options: tuple[str, ...] | Mapping[str, Any], flag: str) -> None:
    if value not in options:
        guess = did_you_mean(value, list(options))
        raise P2PError(f"unknown {flag} {value!r}", key=flag,
                       hint=(f"did you mean {guess!r}? " if guess else "")
                       + f"choose one of: {', '.join(options)}")


# -- generators --------------------------------------------------------------------------------------------

def reference_generator(state: Mapping[str, torch.Tensor]) -> str | None:
    """The --netG a reference generator state_dict was built with, or None when it looks like none."""
    if any(".conv_block." in key for key in state):
        blocks = {key.split(".")[1] for key in state if ".conv_block." in key}
        return f"resnet_{len(blocks)}blocks"
    if any(key.startswith("model.model.") for key in state):
        depth = 1 + max(key.count("model.3.") for key in state)
        return {8: "unet_256", 7: "unet_128"}.get(depth, f"a U-Net with {depth} downsamplings")
    return None


def _generator_ends(net_g: str) -> tuple[str, str, bool]:
    """Reference keys of the first and the last convolution, and whether the last is transposed."""
    if net_g.startswith("unet"):
        return "model.model.0.weight", "model.model.3.weight", True
    n_blocks = GENERATORS[net_g][1]
    return "model.1.weight", f"model.{10 + n_blocks + 7}.weight", False


def import_generator(state: Mapping[str, torch.Tensor], host: Any, *, net_g: str, ngf: int = 64,
                     norm: str | None = None, dropout: bool | None = None, input_nc: int = 3,
                     output_nc: int = 3, file: str = "") -> Imported:
    """Convert a reference generator. `norm` None: read it from the checkpoint. `dropout` None: the
    reference's default for U-Nets (on), read from the checkpoint for ResNets (it shifts their keys)."""
    _choice(net_g, GENERATORS, "--netG")
    if norm is not None:
        _choice(norm, NORMS, "--norm")
    state = _clean(state)
    family, size = GENERATORS[net_g]
    first, last, transposed = _generator_ends(net_g)
    norm = norm or detect_norm(state, first.replace(".weight", ".bias"))
    if dropout is None:
        dropout = True if family == "unet" else any(".conv_block.6." in key for key in state)
    spec = {"name": family, "ngf": ngf, "norm": norm, "dropout": 0.5 if dropout else 0.0}
    spec.update({"depth": size} if family == "unet" else {"n_blocks": size})
    net = host.build("generator", spec, in_channels=input_nc, out_channels=output_nc)
    layers = unet_layers(size) if family == "unet" else resnet_layers(size, dropout)

    def explain() -> str:
        found = reference_generator(state)
        if found != net_g:
            if found in GENERATORS:
                return f"the checkpoint holds a {found} generator: try --netG {found}"
            return f"the checkpoint does not look like a --netG {net_g} generator ({found or 'unknown'})"
        trained = detect_norm(state, first.replace(".weight", ".bias"))
        if trained != norm:
            return f"its layers were trained with --norm {trained}: try --norm {trained}"
        if family == "resnet" and any(".conv_block.6." in k for k in state) != bool(dropout):
            return "try --dropout" if not dropout else "try --no-dropout (the blocks hold no dropout layer)"
        if first in state and state[first].dim() == 4:
            out_first, in_first = state[first].shape[:2]
            if out_first != ngf:
                return f"its first convolution has {out_first} filters: try --ngf {out_first}"
            if in_first != input_nc:
                return f"it reads {in_first} input channels: try --input-nc {in_first}"
        if last in state and state[last].dim() == 4:
            out_last = state[last].shape[1] if transposed else state[last].shape[0]
            if out_last != output_nc:
                return f"it writes {out_last} output channels: try --output-nc {out_last}"
        return GENERIC_HINT

    flags = f"--netG {net_g} --ngf {ngf} --norm {norm}"
    transfer(state, net, layers, file=file, flags=flags, explain=explain, zero_biases=norm == "none")
    return Imported("generator", _resolved(host, "generator", spec), net)


# -- discriminators ----------------------------------------------------------------------------------------

def reference_discriminator(state: Mapping[str, torch.Tensor]) -> tuple[str, int] | None:
    """(--netD, --n_layers_D) of a reference discriminator state_dict, or None."""
    if "net.0.weight" in state:
        return "pixel", 0
    convs = [key for key, t in state.items() if key.startswith("model.") and key.endswith(".weight")
             and t.dim() == 4]
    if convs:
        n_layers = len(convs) - 2
        return ("basic" if n_layers == 3 else "n_layers"), n_layers
    return None


def import_discriminator(state: Mapping[str, torch.Tensor], host: Any, *, net_d: str, ndf: int = 64,
                         norm: str | None = None, n_layers_d: int = 3, input_nc: int = 3, output_nc: int = 3,
                         file: str = "") -> Imported:
    """Convert a reference discriminator. Whether it is conditional (it sees input and output, as in
    pix2pix) or not (the output alone, as in CycleGAN) is read from its first layer's width."""
    _choice(net_d, DISCRIMINATORS, "--netD")
    if norm is not None:
        _choice(norm, NORMS, "--norm")
    state = _clean(state)
    n_layers = 3 if net_d == "basic" else n_layers_d
    first = "net.0.weight" if net_d == "pixel" else "model.0.weight"
    probe = "net.2.bias" if net_d == "pixel" else "model.2.bias"
    flags = f"--netD {net_d}" + (f" --n-layers-D {n_layers}" if net_d == "n_layers" else "") + f" --ndf {ndf}"

    def explain() -> str:
        found = reference_discriminator(state)
        if found and (found[0] == "pixel") != (net_d == "pixel"):
            return f"the checkpoint holds a {found[0]} discriminator: try --netD {found[0]}"
        if found and net_d != "pixel" and found[1] != n_layers:
            return f"the checkpoint's PatchGAN has {found[1]} stride-2 layers: try --netD n_layers " \
                   f"--n-layers-D {found[1]}"
        trained = detect_norm(state, probe)
        if trained != (norm or trained):
            return f"its layers were trained with --norm {trained}: try --norm {trained}"
        if first in state and state[first].shape[0] != ndf:
            filters = state[first].shape[0]
            return f"its first convolution has {filters} filters: try --ndf {filters}"
        return GENERIC_HINT

    if first not in state:
        raise P2PError(f"the checkpoint does not fit {flags}: it has no {first}", file=file, key=first,
                       hint=explain())
    seen = int(state[first].shape[1])
    if seen == input_nc + output_nc:
        conditional = True
    elif seen == output_nc:
        conditional = False
    else:
        raise P2PError(f"the discriminator reads {seen} channels, which is neither input + output "
                       f"({input_nc} + {output_nc}, pix2pix) nor output ({output_nc}, unconditional)",
                       file=file, key=first,
                       hint="set --input-nc and --output-nc to the values used in training")
    norm = norm or detect_norm(state, probe)
    spec: dict[str, Any] = {"name": "pixel" if net_d == "pixel" else "patch", "ndf": ndf, "norm": norm,
                            "conditional": conditional}
    if net_d != "pixel":
        spec["n_layers"] = n_layers
    net = host.build("discriminator", spec, in_channels=seen)
    layers = pixel_layers() if net_d == "pixel" else patch_layers(n_layers)
    transfer(state, net, layers, file=file, flags=flags + f" --norm {norm}", explain=explain,
             zero_biases=norm == "none")
    return Imported("discriminator", _resolved(host, "discriminator", spec), net, conditional)
