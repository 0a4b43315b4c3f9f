"""The pix2pix step with its small convolutions computed as matrix products, against the reference and p2p.

On a CPU, oneDNN reorders a convolution's weights at every call, which dominates the U-Net's inner layers
(512 to 1024 channels at 1 x 1 to 8 x 8 pixels, batch 1): they run at 2 to 30 GFLOP/s against 80 to 95 for
the outer ones. Here those layers (input at most `--pixels` pixels) are computed as unfold + matrix product
(convolutions) and matrix product + fold (transposed convolutions), with a backward pass that reads every
weight matrix row by row. The arithmetic is the same, and the script checks it in float64 against PyTorch's
own convolutions before timing. Then one process times, in alternating rounds, the reference's iteration,
p2p's `Trainer.train_step` and the same step with the small layers swapped.

    python benchmarks/small_convolutions.py /path/to/pytorch-CycleGAN-and-pix2pix --rounds 5 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from reference_step import alternate, build_p2p, build_reference, write_images
from torch import nn


class ConvAsProduct(torch.autograd.Function):
    """conv2d (one group, no dilation, zero padding) as unfold + matrix product."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                stride: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
        n, _, h, w = x.shape
        cout, _, kh, kw = weight.shape
        cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # N, Cin*kk, L
        out = torch.matmul(weight.reshape(cout, -1), cols)
        if bias is not None:
            out = out + bias.view(1, -1, 1)
        ctx.save_for_backward(cols, weight)
        ctx.geometry = ((h, w), (kh, kw), stride, padding, bias is not None)
        return out.view(n, cout, (h + 2 * padding[0] - kh) // stride[0] + 1, (w + 2 * padding[1] - kw) // stride[1] + 1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        cols, weight = ctx.saved_tensors
        size, kernel, stride, padding, has_bias = ctx.geometry
        n, cout = grad.shape[:2]
        g = grad.reshape(n, cout, -1)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:  # (g^T W)^T: W read row by row
            cols_grad = torch.matmul(g.transpose(1, 2), weight.reshape(cout, -1)).transpose(1, 2)
            grad_x = F.fold(cols_grad, size, kernel, padding=padding, stride=stride)
        if ctx.needs_input_grad[1]:
            grad_w = (g.transpose(0, 1).reshape(cout, -1) @ cols.transpose(1, 2).reshape(-1, cols.shape[1]))
            grad_w = grad_w.view_as(weight)
        if has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum((0, 2))
        return grad_x, grad_w, grad_b, None, None


class TransposedConvAsProduct(torch.autograd.Function):
    """conv_transpose2d (one group, no dilation, no output padding) as matrix product + fold."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                stride: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
        n, cin, h, w = x.shape
        kh, kw = weight.shape[-2:]
        size = ((h - 1) * stride[0] - 2 * padding[0] + kh, (w - 1) * stride[1] - 2 * padding[1] + kw)
        cols_t = torch.matmul(x.reshape(n, cin, h * w).transpose(1, 2), weight.reshape(cin, -1))  # N, L, Cout*kk
        out = F.fold(cols_t.transpose(1, 2), size, (kh, kw), padding=padding, stride=stride)
        if bias is not None:
            out = out + bias.view(1, -1, 1, 1)
        ctx.save_for_backward(x, weight)
        ctx.geometry = ((kh, kw), stride, padding, bias is not None)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        kernel, stride, padding, has_bias = ctx.geometry
        n, cin = x.shape[:2]
        cols = F.unfold(grad, kernel, padding=padding, stride=stride)  # N, Cout*kk, L
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.matmul(weight.reshape(cin, -1), cols).view_as(x)
        if ctx.needs_input_grad[1]:
            x_flat = x.reshape(n, cin, -1).transpose(0, 1).reshape(cin, -1)  # Cin, N*L
            grad_w = (x_flat @ cols.transpose(1, 2).reshape(-1, cols.shape[1]).contiguous()).view_as(weight)
        if has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None


def small(x: torch.Tensor, layer: nn.Module, pixels: int) -> bool:
    plain = layer.groups == 1 and layer.dilation == (1, 1) and layer.padding_mode == "zeros"
    return plain and x.shape[-1] * x.shape[-2] <= pixels


class SmallConv2d(nn.Conv2d):
    pixels = 64

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if small(x, self, self.pixels):
            return ConvAsProduct.apply(x, weight, bias, self.stride, self.padding)
        return super()._conv_forward(x, weight, bias)


class SmallConvTranspose2d(nn.ConvTranspose2d):
    pixels = 64

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is None and self.output_padding == (0, 0) and small(x, self, self.pixels):
            return TransposedConvAsProduct.apply(x, self.weight, self.bias, self.stride, self.padding)
        return super().forward(x, output_size)


def swap_small_convolutions(net: nn.Module, pixels: int) -> int:
    """Give the network's plain convolutions the product path for inputs of at most `pixels` pixels."""
    swapped = 0
    for layer in net.modules():
        for plain, product in ((nn.Conv2d, SmallConv2d), (nn.ConvTranspose2d, SmallConvTranspose2d)):
            if type(layer) is plain:
                layer.__class__, layer.pixels = product, pixels
                swapped += 1
    return swapped


def check_exact() -> float:
    """Largest float64 difference of outputs and gradients against PyTorch's convolutions, biases included."""
    torch.manual_seed(0)
    worst = 0.0
    for layer, size in ((nn.Conv2d(64, 32, 4, 2, 1), 8), (nn.ConvTranspose2d(64, 32, 4, 2, 1), 4),
                        (nn.Conv2d(16, 8, 3, 1, 1), 5)):
        layer = layer.double()
        x = torch.randn(2, layer.in_channels, size, size, dtype=torch.float64, requires_grad=True)
        expected = layer(x)
        grad = torch.randn_like(expected)
        want = torch.autograd.grad(expected, (x, layer.weight, layer.bias), grad)
        swap_small_convolutions(layer, size * size)
        got_out = layer(x)
        got = torch.autograd.grad(got_out, (x, layer.weight, layer.bias), grad)
        worst = max(worst, (got_out - expected).abs().max().item(), *((a - b).abs().max().item()
                                                                       for a, b in zip(got, want, strict=True)))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference_src", type=Path, help="the reference implementation's source folder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--pixels", type=int, default=64, help="largest input (H x W) given the product path")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"float64 check against PyTorch's convolutions: largest difference {check_exact():.1e}")
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        write_images(Path(tmp) / "data", "pix2pix", 256, 1)
        plain, batch = build_p2p("pix2pix", Path(tmp) / "data", 256, 1, Path(tmp) / "plain", [])
        swapped, _ = build_p2p("pix2pix", Path(tmp) / "data", 256, 1, Path(tmp) / "swapped", [])
        layers = sum(swap_small_convolutions(net, args.pixels) for net in swapped.nets.values())
        reference = build_reference(args.reference_src, "pix2pix", tmp, cpu)
        reference.set_input({"A": batch["a"], "B": batch["b"], "A_paths": [], "B_paths": []})
        sides = {"reference": reference.optimize_parameters, "p2p": lambda: plain.train_step(batch),
                 f"p2p, small layers as products (<= {args.pixels} px)": lambda: swapped.train_step(batch)}
        measured = alternate(sides, rounds=args.rounds, steps=args.steps, warmup=2, device=cpu)
        times = {name: [wall * 1000 for wall, _ in values] for name, values in measured.items()}
    print(f"pix2pix, batch 1, 256 px, {torch.get_num_threads()} threads, {args.rounds} rounds of {args.steps} "
          f"steps; {layers} convolutions may take the product path")
    reference_ms = statistics.median(times["reference"])
    for name, values in times.items():
        print(f"  {name:45s} best {min(values):7.1f} ms  median {statistics.median(values):7.1f} ms  "
              f"reference / this {reference_ms / statistics.median(values):.2f}x")


if __name__ == "__main__":
    main()
