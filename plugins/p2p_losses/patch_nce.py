"""PatchNCE, the contrastive loss of CUT (Park, Efros, Zhang and Zhu, ECCV 2020, equations 2 and 3).

A patch of the output should be more like the patch of the input at the same place than like the other
patches of that input. The task gives, for each encoder layer, the projected feature vectors of sampled
patches of the output (queries q) and of the input at the same places (keys k), L2-normalised. For each
query, the logits are its similarity with its own key (the positive, first) and with every key of the same
image (the negatives, the positive's own place masked with -10), divided by the temperature; the loss is the
cross-entropy towards the positive, averaged over patches, then over layers. Keys are targets: no gradient
flows into them (the reference detaches them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from p2pcore.api import LossTerm, P2PError, Tensors

MASKED = -10.0  # the similarity a query is given with its own key among the negatives (the reference's value)


def patch_nce(q: torch.Tensor, k: torch.Tensor, temperature: float) -> torch.Tensor:
    """PatchNCE of one layer: `q` and `k` are (images, patches, dim), row i of both at the same place."""
    if q.shape != k.shape or q.dim() != 3:
        raise P2PError(f"PatchNCE compares queries and keys of the same shape (images, patches, dim), "
                       f"got {tuple(q.shape)} and {tuple(k.shape)}")
    q, k = q.float(), k.detach().float()
    patches = q.shape[1]
    positive = (q * k).sum(dim=2, keepdim=True)                        # (B, P, 1)
    negative = torch.bmm(q, k.transpose(1, 2))                         # (B, P, P): same image only
    own = torch.eye(patches, dtype=torch.bool, device=q.device)
    negative = negative.masked_fill(own, MASKED)
    logits = torch.cat([positive, negative], dim=2).flatten(0, 1) / temperature
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)


def layered_patch_nce(layers: Sequence[tuple[torch.Tensor, torch.Tensor]], temperature: float) -> torch.Tensor:
    """The mean over layers of each layer's PatchNCE."""
    if not layers:
        raise P2PError("PatchNCE got no layers", hint="set task.nce_layers to at least one layer")
    return sum(patch_nce(q, k, temperature) for q, k in layers) / len(layers)


class PatchNCELoss(LossTerm):
    """Reads the task tensor ``nce_<pair>``: per layer, (queries, keys)."""

    def __init__(self, pair: str, temperature: float) -> None:
        self.tensor = f"nce_{pair}"
        self.temperature = temperature

    def generator_loss(self, t: Tensors) -> torch.Tensor:
        return layered_patch_nce(t[self.tensor], self.temperature)
