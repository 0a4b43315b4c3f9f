"""Style clusters of pix2pixHD (Wang et al. 2018, section 3.4): K-means over encoded instance features.

The trained encoder E maps each training photo to feature channels averaged per instance. Per semantic
class, the instance features are clustered with K-means (k-means++ seeding, Lloyd iterations, the best of
a few seeded restarts), and the cluster centres are the style codes that can later be fed to the
generator in place of encoded features. Only instances covering at least `min_area` of their image
count, as in the reference (1/64 by default).

The centres are saved as safetensors: ``centres.<label id>`` (k' x feat_nc, k' = min(k, instances of the
class)), with the settings and per-class counts in the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from p2pcore.api import P2PError, check_folder_writable, write_bytes_atomically

FORMAT = "p2p-style-clusters"


def _plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centre drawn with probability proportional to its squared distance."""
    centres = [x[torch.randint(len(x), (1,), generator=generator)]]
    distance = torch.cdist(x, centres[0]).squeeze(1) ** 2
    for _ in range(1, k):
        total = float(distance.sum())
        if total <= 0:
            pick = torch.randint(len(x), (1,), generator=generator)
        else:
            pick = torch.multinomial(distance / total, 1, generator=generator)
        centres.append(x[pick])
        distance = torch.minimum(distance, torch.cdist(x, centres[-1]).squeeze(1) ** 2)
    return torch.cat(centres)


def kmeans(x: torch.Tensor, k: int, *, seed: int = 0, restarts: int = 4, iterations: int = 100,
           tolerance: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Cluster the rows of `x` (N x D) into min(k, N) groups: (centres, assignment of each row, inertia)."""
    x = x.to(torch.float64)
    k = min(k, len(x))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    best: tuple[torch.Tensor, torch.Tensor, float] | None = None
    for _ in range(restarts):
        centres = _plus_plus(x, k, generator)
        for _ in range(iterations):
            assignment = torch.cdist(x, centres).argmin(1)
            sums = torch.zeros_like(centres).index_add_(0, assignment, x)
            counts = torch.bincount(assignment, minlength=k).to(x.dtype)
            empty = counts == 0
            moved = torch.where(empty.unsqueeze(1), centres, sums / counts.clamp(min=1).unsqueeze(1))
            if empty.any():  # an emptied cluster takes the row farthest from its centre
                far = (x - moved[assignment]).pow(2).sum(1).topk(int(empty.sum())).indices
                moved[empty] = x[far]
            shift = float((moved - centres).pow(2).sum())
            centres = moved
            if shift <= tolerance:
                break
        assignment = torch.cdist(x, centres).argmin(1)
        inertia = float((x - centres[assignment]).pow(2).sum())
        if best is None or inertia < best[2]:
            best = (centres, assignment, inertia)
    assert best is not None
    return best[0].to(torch.float32), best[1], best[2]


def encode_dataset(run: Any, *, split: str, min_area: float, device: str) -> dict[int, torch.Tensor]:
    """Per label id, the mean encoder features of every large enough instance of a split (K x feat_nc)."""
    from p2p_tasks.pix2pixhd import instance_features

    encoder = run.nets["encoder"].eval()
    multiple = int(getattr(encoder, "size_multiple", 1))
    data = run.adapter.dataset(split, train=False)
    found: dict[int, list[torch.Tensor]] = {}
    with torch.no_grad():
        for i in range(len(data)):
            item = data[i]
            label, photo = item["label"].unsqueeze(0).to(device), item["b"].unsqueeze(0).to(device)
            h, w = photo.shape[-2:]
            pad = (0, (-w) % multiple, 0, (-h) % multiple)
            padded = F.pad(photo, pad, mode="reflect" if max(pad) < min(h, w) else "replicate") if any(pad) else photo
            features = encoder(padded)[..., :h, :w]
            labels, means, areas = instance_features(features, run.task.segments(label), label[:, :1])
            for label_id, mean, area in zip(labels.tolist(), means.cpu(), areas.tolist(), strict=True):
                if area >= min_area:
                    found.setdefault(label_id, []).append(mean)
    return {label_id: torch.stack(rows) for label_id, rows in sorted(found.items())}


def cluster(checkpoint: Path, data: Path, out: Path | None, *, k: int, split: str, min_area: float,
            device: str, seed: int) -> tuple[Path, dict[int, int]]:
    """Encode a dataset with a checkpoint's encoder and save K-means centres per label id."""
    from safetensors.torch import save

    from p2pcore.api import load_trained

    if data.suffix == ".toml":
        import tomllib

        try:
            table = tomllib.loads(data.read_text()).get("data")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise P2PError(f"cannot read the recipe: {exc}", file=str(data)) from None
        if not isinstance(table, dict):
            raise P2PError("the recipe has no [data] table", file=str(data), hint="give a dataset folder or a recipe")
        override = table
    elif data.is_dir():
        override = {"root": str(data)}
    else:
        raise P2PError("DATA is neither a folder nor a recipe (.toml)", file=str(data),
                       hint="give the dataset's folder (read as data.root), or a recipe whose [data] to read")
    out = out or checkpoint.with_name(f"features_clustered_{k:03d}.safetensors")
    check_folder_writable(out.parent, what="the style clusters", hint="give --out a file in a writable folder")
    run = load_trained(str(checkpoint), roles=("encoder",), data=override, device=device)
    if "encoder" not in run.nets:
        raise P2PError("the checkpoint's task builds no encoder", file=str(checkpoint),
                       hint="train pix2pixhd with a [model.encoder] table")
    features = encode_dataset(run, split=split, min_area=min_area, device=str(run.device))  # "auto" resolved
    if not features:
        raise P2PError(f"no instance of the {split} split covers {min_area:.4f} of its image", file=str(data),
                       hint="lower --min-area, or check the dataset")
    tensors = {f"centres.{label_id}": kmeans(rows, k, seed=seed)[0] for label_id, rows in features.items()}
    counts = {label_id: len(rows) for label_id, rows in features.items()}
    metadata = {"format": FORMAT, "k": str(k), "feat_nc": str(next(iter(tensors.values())).shape[1]),
                "checkpoint": str(checkpoint), "split": split, "min_area": str(min_area),
                "instances": json.dumps(counts)}
    write_bytes_atomically(out, save(tensors, metadata=metadata), what="the style clusters")
    return out, counts
