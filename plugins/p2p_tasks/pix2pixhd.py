"""pix2pixHD (Wang et al. 2018): label maps to photos at high resolution.

The batch's `label` image holds integer maps: channel 0 the semantic label ids and, when the dataset has
instance maps, channel 1 the instance ids. The generator sees

    one-hot(label) (label_nc channels) | boundary map of the instances (1) | instance features (feat_nc)

and the (conditional) discriminator the same one-hot and boundary channels beside the photo. The boundary
map is 1 where any 4-neighbour belongs to another instance (section 3.3). The optional encoder E maps the
real photo to feature channels that are averaged over each instance (instance-wise average pooling, done
with segment reductions), so the generator learns to follow a per-instance style code; E is trained with
the generator. Translation without a style code feeds zeros in place of the features.

With `label_nc = 0` (the reference's ``--label_nc 0``) the input is an image, the `a` side of a paired
dataset, fed to the networks as it is: no one-hot, no instance maps, no encoder.

Coarse-to-fine training (section 3.2) holds the generator's `global_net` (G1 inside a local enhancer)
fixed for the first `freeze_epochs` epochs: `start_epoch` switches its gradients off and on, so a resumed
run freezes exactly as an uninterrupted one. In data-parallel training the generator is marked
`trainable_varies`, so the wrapper looks for the parameters that get no gradient in each step (the held
ones) and leaves them out of the averaging, rather than waiting for their gradients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from p2p_tasks import check_label_channels
from p2p_tasks.pix2pix import judging
from p2pcore.api import P2PError, Side, Task, TaskContext, Tensors


def one_hot(ids: torch.Tensor, label_nc: int, *, ignore: int | None = None,
            files: Sequence[str] | None = None) -> torch.Tensor:
    """N x 1 x H x W label ids to N x label_nc x H x W one-hot (pixels with the `ignore` id: all zero).

    An id outside 0 .. label_nc - 1 is an error naming the item's file and the value, raised before any
    indexing (so never a device-side assert)."""
    labels = ids.round().long()
    valid = (labels >= 0) & (labels < label_nc)
    if ignore is not None:
        kept = labels != ignore
        valid = valid | ~kept
    bad = ~valid
    if bool(bad.any()):
        n = int(bad.flatten(1).any(1).nonzero()[0, 0])
        value = int(labels[n][bad[n]][0])
        file = files[n] if files is not None and n < len(files) else None
        raise P2PError(f"the label map holds the value {value}, outside 0..{label_nc - 1} (label_nc = {label_nc})",
                       file=file, key="task.label_nc",
                       hint="raise task.label_nc to the number of label ids, or set task.ignore to the id of "
                            "pixels that belong to no class")
    out = torch.zeros(labels.shape[0], label_nc, *labels.shape[2:], device=ids.device, dtype=ids.dtype)
    if ignore is not None:
        out.scatter_(1, labels.clamp(0, label_nc - 1), kept.to(ids.dtype))
    else:
        out.scatter_(1, labels, 1.0)
    return out


def boundaries(instances: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W instance ids to a map that is 1 where any 4-neighbour has another id, else 0."""
    across = (instances[..., :, 1:] != instances[..., :, :-1]).to(instances.dtype)  # left-right neighbours
    down = (instances[..., 1:, :] != instances[..., :-1, :]).to(instances.dtype)    # up-down neighbours
    touching = F.pad(across, (1, 0)) + F.pad(across, (0, 1)) + F.pad(down, (0, 0, 1, 0)) + F.pad(down, (0, 0, 0, 1))
    return (touching > 0).to(instances.dtype)


def instance_mean(features: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Replace every pixel's features by their mean over its segment (instance), per image.

    `features` N x C x H x W, `segments` N x 1 x H x W ids. All segments of the batch are numbered at
    once and summed with one index_add: no loop over instances."""
    n, c = features.shape[:2]
    ids = segments.round().long().flatten(1)                                   # N x HW
    ids = ids - ids.min()
    keys = ids + (ids.max() + 1) * torch.arange(n, device=ids.device).unsqueeze(1)   # distinct across images
    _, index = torch.unique(keys.flatten(), return_inverse=True)               # NHW: the segment of each pixel
    count = int(index.max()) + 1
    values = features.permute(0, 2, 3, 1).reshape(-1, c)                      # NHW x C
    sums = values.new_zeros(count, c).index_add_(0, index, values)
    sizes = values.new_zeros(count).index_add_(0, index, values.new_ones(index.shape[0]))
    means = sums / sizes.unsqueeze(1)
    return means[index].reshape(n, *features.shape[2:], c).permute(0, 3, 1, 2)


class Pix2PixHDTask(Task):
    def __init__(self, params: Any) -> None:
        self.label_nc = params.label_nc
        self.ignore = params.ignore
        self.use_instances = params.instances
        self.feat_nc = params.feat_nc
        self.freeze_epochs = params.freeze_epochs
        self.freeze = params.freeze
        self.instances = False          # set from the data's channels in build_networks
        self.features = 0               # feature channels the generator reads (0: no encoder)
        self.conditional = True
        self.style: tuple[str, int, dict[int, torch.Tensor]] | None = None  # translation: choice, K, centres

    # -- networks ------------------------------------------------------------------------------------
    def build_networks(self, ctx: TaskContext) -> dict[str, nn.Module]:
        b = ctx.channels["b"]
        semantics = self._input_channels(ctx)
        self.features = self.feat_nc if "encoder" in ctx.model else 0
        nets = {"generator": ctx.build("generator", in_channels=semantics + self.features, out_channels=b)}
        if self.freeze_epochs:
            if self._frozen_part(nets["generator"]) is None:
                raise P2PError(f"the generator has no module {self.freeze!r} to hold fixed for the first epochs",
                               key="task.freeze",
                               hint="freeze_epochs needs a local_enhancer generator (its G1 is global_net), or "
                                    "name another module with task.freeze; or set task.freeze_epochs = 0")
            nets["generator"].trainable_varies = True  # for data-parallel wrapping: some steps leave G1 out
        if "encoder" in ctx.model:  # whenever the recipe has one: every fake it trains on reads its features
            nets["encoder"] = ctx.build("encoder", in_channels=b, out_channels=self.feat_nc)
        if ctx.wants("discriminator"):
            self.conditional = bool(getattr(ctx.model["discriminator"].params, "conditional", True))
            nets["discriminator"] = ctx.build("discriminator", in_channels=semantics + b if self.conditional else b,
                                              out_channels=1)
        return nets

    def _input_channels(self, ctx: TaskContext) -> int:
        """The channels the generator is conditioned on: one-hot labels (and the boundary map), or the image."""
        if not self.label_nc:
            if "a" not in ctx.channels:
                raise P2PError("pix2pixhd with label_nc = 0 reads images (an item's `a`), and the dataset gives "
                               "none", key="data", hint="use a paired dataset such as paired_folders, or set "
                                                        "task.label_nc to the label ids of a label-map dataset")
            return ctx.channels["a"]
        label = ctx.channels.get("label")
        check_label_channels(label)
        self.instances = self.use_instances and label == 2
        return self.label_nc + int(self.instances)

    def _frozen_part(self, generator: nn.Module) -> nn.Module | None:
        try:
            return generator.get_submodule(self.freeze)
        except AttributeError:
            return None

    def start_epoch(self, epoch: int, nets: Mapping[str, nn.Module]) -> None:
        if not self.freeze_epochs:
            return
        self._frozen_part(nets["generator"]).requires_grad_(epoch >= self.freeze_epochs)

    # -- tensors -------------------------------------------------------------------------------------
    def semantics(self, label: torch.Tensor, files: Sequence[str] | None = None) -> torch.Tensor:
        """What generator and discriminator are conditioned on: one-hot labels and the boundary map (an
        image input as it is)."""
        if not self.label_nc:
            return label
        maps = [one_hot(label[:, :1], self.label_nc, ignore=self.ignore, files=files)]
        if self.instances:
            maps.append(boundaries(label[:, 1:2]))
        return torch.cat(maps, dim=1)

    def segments(self, label: torch.Tensor) -> torch.Tensor:
        """What instance-wise pooling averages over: the instances, else the label regions."""
        return label[:, 1:2] if label.shape[1] > 1 else label[:, :1]

    def step_tensors(self, nets: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Tensors:
        generator = nets["generator"]
        encoder = nets.get("encoder")
        files = batch.get("label_file") or batch.get("name")

        def fake(t: Tensors) -> torch.Tensor:
            inputs = [t["input_label"]]
            if self.features:
                inputs.append(t["features"] if encoder is not None else self._no_style(t["input_label"]))
            return generator(torch.cat(inputs, dim=1))

        if not self.label_nc:
            return Tensors({"input_label": lambda t: t["real_a"], "fake_b": fake},
                           values={"real_a": batch["a"], "real_b": batch["b"]})
        producers = {"input_label": lambda t: self.semantics(t["label"], files), "fake_b": fake}
        if encoder is not None:
            producers["features"] = lambda t: instance_mean(encoder(t["real_b"]), self.segments(t["label"]))
        return Tensors(producers, values={"label": batch["label"], "real_b": batch["b"]})

    def _no_style(self, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(like.shape[0], self.features, *like.shape[2:])

    def _seen(self, t: Tensors, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([t["input_label"], image], dim=1) if self.conditional else image

    def phase_tensors(self, side: Side, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors:
        if "discriminator" not in nets:
            return base
        return base.extend(judging(nets["discriminator"], self._seen, detach=side == "discriminator"))

    def translate(self, direction: str, nets: Mapping[str, nn.Module], image: torch.Tensor) -> torch.Tensor:
        semantics = self.semantics(image)
        if self.features:
            semantics = torch.cat([semantics, self._styled(image) if self.style else self._no_style(semantics)], 1)
        return nets["generator"](semantics)

    def configure_translation(self, style: str | None, styles: str | None) -> None:
        """`random` or `cluster:K`: each instance gets a centre of its class from a `p2p cluster` file."""
        if style is None and styles is None:
            self.style = None
            return
        if not self.features:
            raise P2PError("this checkpoint's generator reads no instance features, so it has no styles",
                           key="--style", hint="styles need a run trained with [model.encoder]")
        if style is None or styles is None:
            raise P2PError("--style and --styles go together", key="--style",
                           hint="e.g. --style cluster:0 --styles features_clustered_010.safetensors")
        if style != "random" and not (style.startswith("cluster:") and style[8:].isdigit()):
            raise P2PError(f"unknown style {style!r}", key="--style", hint="random, or cluster:K with K from 0")
        self.style = (style, int(style[8:]) if style != "random" else -1, read_styles(styles, self.features))

    def _styled(self, label: torch.Tensor) -> torch.Tensor:
        """Per image: every instance filled with a centre of its class (zeros for classes without one)."""
        choice, k, centres = self.style
        maps = []
        for ids, segments in zip(label[:, 0].long(), self.segments(label)[:, 0].long(), strict=True):
            unique, inverse = torch.unique(segments, return_inverse=True)
            classes = torch.zeros(len(unique), dtype=torch.long, device=ids.device).scatter_(
                0, inverse.flatten(), ids.flatten())
            codes = torch.zeros(len(unique), self.features, device=label.device)
            for cls in classes.unique().tolist():  # the classes present (at most label_nc), never the pixels
                options = centres.get(cls)
                if options is None:
                    continue
                members = (classes == cls).nonzero().squeeze(1)
                pick = torch.randint(len(options), (len(members),)) if choice == "random" else \
                    torch.full((len(members),), min(k, len(options) - 1))
                codes[members] = options.to(codes)[pick]
            maps.append(codes[inverse].permute(2, 0, 1))
        return torch.stack(maps).to(label.dtype if label.is_floating_point() else torch.float32)


def read_styles(path: str, feat_nc: int) -> dict[int, torch.Tensor]:
    """The centres of a `p2p cluster` file by label id, checked against the generator's feature channels."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            centres = {int(key.split(".", 1)[1]): f.get_tensor(key) for key in f.keys()  # noqa: SIM118
                       if key.startswith("centres.") and key.split(".", 1)[1].isdigit()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise P2PError(f"cannot read the styles file: {exc}", file=path, key="--styles",
                       hint="give a file written by `p2p cluster`") from None
    if not centres or any(c.dim() != 2 or c.shape[1] != feat_nc for c in centres.values()):
        raise P2PError(f"the styles file holds no {feat_nc}-channel centres", file=path, key="--styles",
                       hint=f"cluster with the same checkpoint (its encoder makes {feat_nc} channels); "
                            f"it says feat_nc {meta.get('feat_nc', '?')}")
    return centres


def instance_features(features: torch.Tensor, segments: torch.Tensor,
                      labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per segment (instance) of one image: its label id, its mean features and its share of the image's
    pixels. `features` 1 x C x H x W, `segments` and `labels` 1 x 1 x H x W ids."""
    c = features.shape[1]
    ids, index = torch.unique(segments.round().long().flatten(), return_inverse=True)
    values = features[0].reshape(c, -1).T
    sizes = values.new_zeros(len(ids)).index_add_(0, index, values.new_ones(index.shape[0]))
    means = values.new_zeros(len(ids), c).index_add_(0, index, values) / sizes.unsqueeze(1)
    label_of = torch.zeros(len(ids), dtype=torch.long, device=ids.device)
    label_of.scatter_(0, index, labels.round().long().flatten())     # a segment lies within one class
    return label_of, means, sizes / index.shape[0]
