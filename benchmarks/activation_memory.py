"""Memory of the pix2pixHD generator step at 2048 x 1024, with and without `train.activation_checkpointing`,
counted on PyTorch's meta device (shapes only: nothing is allocated, so it runs on any machine).

Counted: the bytes autograd keeps for the backward pass of one generator-side forward (G, then the
multi-scale discriminator on the fake pair and the VGG19 of the perceptual term on the fake photo), and the
weights, gradients and Adam moments of G and D. Not counted: the real pair's discriminator features (kept
without gradients), temporary buffers and allocator overhead, which a GPU measurement adds.

    python benchmarks/activation_memory.py --width 2048 --height 1024
"""

from __future__ import annotations

import argparse

import torch
import torchvision

from p2pcore import load_host
from p2pcore.engine.train.recompute import checkpoint_activations, kept_for_backward

GIB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--labels", type=int, default=36, help="label channels (35 classes + instance edges)")
    args = parser.parse_args()
    host = load_host()
    generator_spec = {"name": "local_enhancer", "ngf": 32, "n_enhancers": 1, "n_blocks_local": 3,
                      "n_downsample": 4, "n_blocks": 9, "norm": "instance"}
    discriminator_spec = {"name": "multiscale", "num_D": 3,
                          "discriminator": {"name": "patch", "n_layers": 3, "ndf": 64, "norm": "instance",
                                            "padding": 2}}
    rows = []
    for lean in (False, True):
        with torch.device("meta"):
            g = host.build("generator", generator_spec, in_channels=args.labels, out_channels=3)
            d = host.build("discriminator", discriminator_spec, in_channels=args.labels + 3)
            vgg = torchvision.models.vgg19().features.requires_grad_(False)
            label = torch.empty(1, args.labels, args.height, args.width)
        if lean:
            checkpoint_activations(g)

        fake = torch.empty(1, 3, args.height, args.width, device="meta", requires_grad=True)
        pair = torch.cat([label, fake], 1)
        parts = [kept_for_backward(net, x)[1] for net, x in ((g, label), (d, pair), (vgg, fake))]
        params = sum(p.numel() for net in (g, d) for p in net.parameters())
        rows.append((lean, parts, params * 4 * 4))  # weights, gradients, two Adam moments, float32
    print(f"pix2pixHD local enhancer + 3-scale discriminator + VGG19 term, batch 1, {args.width} x {args.height}")
    print("| activation checkpointing | kept by G | by D | by VGG19 | weights + grads + Adam | sum (GiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for lean, parts, state in rows:
        cells = " | ".join(f"{b / GIB:.2f}" for b in (*parts, state, sum(parts) + state))
        print(f"| {'on' if lean else 'off'} | {cells} |")


if __name__ == "__main__":
    main()
