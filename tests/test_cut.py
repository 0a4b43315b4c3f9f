"""CUT and FastCUT: the PatchNCE loss against a direct computation, the task's projection heads, the loss
falling in a short run, exact resume with the heads and their optimiser state, translation and export holding
the generator alone, the recipe checks at validation and the quickstart run with its report."""

from __future__ import annotations

import math

import pytest
import torch
from p2p_losses.patch_nce import layered_patch_nce, patch_nce

TAU = 0.07


def direct_patch_nce(q: torch.Tensor, k: torch.Tensor, tau: float) -> float:
    """Written out: for every image and every patch i, logits [q_i.k_i, q_i.k_j for j != i, -10 at j = i] / tau,
    the positive first; the cross-entropy towards it, averaged over every patch of every image."""
    images, patches, _ = q.shape
    total, count = 0.0, 0
    for b in range(images):
        for i in range(patches):
            logits = [float(q[b, i] @ k[b, i]) / tau]
            for j in range(patches):
                logits.append(-10.0 / tau if j == i else float(q[b, i] @ k[b, j]) / tau)
            top = max(logits)
            log_sum = top + math.log(sum(math.exp(x - top) for x in logits))
            total += log_sum - logits[0]
            count += 1
    return total / count


def unit(*shape: int) -> torch.Tensor:
    x = torch.randn(*shape, dtype=torch.float64)
    return x / x.norm(dim=-1, keepdim=True)


def test_patch_nce_matches_a_direct_computation():
    torch.manual_seed(0)
    for images, patches, dim in ((1, 5, 4), (2, 7, 3), (3, 1, 6)):
        q, k = unit(images, patches, dim), unit(images, patches, dim)
        got = float(patch_nce(q, k, TAU))
        assert got == pytest.approx(direct_patch_nce(q.float(), k.float(), TAU), rel=1e-5), (images, patches, dim)


def test_patch_nce_is_small_when_each_query_is_its_own_key_and_negatives_stay_within_an_image():
    torch.manual_seed(1)
    k = unit(2, 6, 8)
    assert float(patch_nce(k.clone(), k, TAU)) < float(patch_nce(unit(2, 6, 8), k, TAU))
    # the second image's keys are not the first image's negatives: changing them leaves image 0's loss alone
    q = unit(2, 6, 8)
    other = k.clone()
    other[1] = unit(6, 8)
    first = direct_patch_nce(q[:1].float(), k[:1].float(), TAU)
    mixed = 2 * float(patch_nce(q, other, TAU)) - direct_patch_nce(q[1:].float(), other[1:].float(), TAU)
    assert mixed == pytest.approx(first, rel=1e-4)


def test_layers_are_averaged_and_keys_get_no_gradient():
    torch.manual_seed(2)
    pairs = [(unit(2, 4, 5).requires_grad_(), unit(2, 4, 5).requires_grad_()) for _ in range(3)]
    loss = layered_patch_nce(pairs, TAU)
    expected = sum(direct_patch_nce(q.detach().float(), k.detach().float(), TAU) for q, k in pairs) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q, _ in pairs)
    assert all(k.grad is None for _, k in pairs)
