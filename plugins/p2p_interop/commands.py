"""`p2p import`: turn checkpoints trained with other implementations into p2p checkpoints.

Torch is imported inside the commands, so `p2p --help` (which runs every plugin's `p2p_add_commands`) stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from p2pcore.api import P2PError

import_app = typer.Typer(no_args_is_help=True,
                         help="Convert checkpoints trained with other implementations into p2p checkpoints.\n\n"
                              "Example:\np2p import junyanz latest_net_G.pth g.safetensors --netG unet_256")


Out = Annotated[Path, typer.Argument(help="the p2p checkpoint to write (.safetensors)")]
"""The output argument of every import command."""


def _refuse_other_suffixes(out: Path) -> None:
    """An import writes a safetensors file: another name is refused before anything is read."""
    if out.suffix != ".safetensors":
        raise P2PError("p2p checkpoints are safetensors files", file=str(out),
                       hint=f"name the output {out.with_suffix('.safetensors').name}")


def _discriminator_file(generator_file: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    if "net_G" not in generator_file.name:
        raise P2PError("cannot tell where the discriminator's weights are", file=str(generator_file),
                       hint="give its file with --checkpoint-D (the reference names it like latest_net_D.pth)")
    sibling = generator_file.with_name(generator_file.name.replace("net_G", "net_D", 1))
    if not sibling.is_file():
        raise P2PError("the discriminator's file is not beside the generator's", file=str(sibling),
                       hint="give it with --checkpoint-D, or leave out --netD to import the generator alone")
    return sibling


JUNYANZ_HELP = (
    "Import a pix2pix or CycleGAN network trained with junyanz/pytorch-CycleGAN-and-pix2pix. "
    "Pass the flags it was trained with: a checkpoint that does not fit them is refused, naming the first "
    "key that differs and the flag to change.\n\n"
    "The result runs with `p2p translate OUT.safetensors in.png out.png --protocol eval` (dropout off and "
    "batch-norm running statistics, like the reference's test.py --eval).\n\n"
    "Example:\np2p import junyanz latest_net_G.pth g.safetensors --netG unet_256 --norm batch")


@import_app.command("junyanz", help=JUNYANZ_HELP)
def junyanz(
    checkpoint: Annotated[Path, typer.Argument(help="the generator's state_dict written by "
                                               "junyanz/pytorch-CycleGAN-and-pix2pix, e.g. latest_net_G.pth")],
    out: Out,
    net_g: Annotated[str, typer.Option("--netG", help="unet_256, unet_128, resnet_9blocks or resnet_6blocks")],
    net_d: Annotated[str | None, typer.Option("--netD", help="also import the discriminator: basic, n_layers "
                                              "or pixel")] = None,
    checkpoint_d: Annotated[Path | None, typer.Option("--checkpoint-D", help="the discriminator's file "
                                                      "(default: the generator's, net_G read as net_D)")] = None,
    n_layers_d: Annotated[int, typer.Option("--n-layers-D", help="stride-2 layers of --netD n_layers")] = 3,
    ngf: Annotated[int, typer.Option("--ngf", help="generator filters in the first layer")] = 64,
    ndf: Annotated[int, typer.Option("--ndf", help="discriminator filters in the first layer")] = 64,
    norm: Annotated[str | None, typer.Option("--norm", help="batch, instance or none (default: read from "
                                             "the checkpoint)")] = None,
    dropout: Annotated[bool | None, typer.Option("--dropout/--no-dropout", help="the generator was trained "
                                                 "with dropout (default: on for U-Nets as in pix2pix, read "
                                                 "from the checkpoint for ResNets)")] = None,
    input_nc: Annotated[int, typer.Option("--input-nc", help="channels of the input images")] = 3,
    output_nc: Annotated[int, typer.Option("--output-nc", help="channels of the output images")] = 3,
) -> None:
    """Write a p2p checkpoint holding the converted generator (and discriminator)."""
    from p2p_interop.junyanz import import_discriminator, import_generator, load_reference_state
    from p2pcore.api import load_host

    if checkpoint_d is not None and net_d is None:
        raise P2PError("--checkpoint-D needs --netD", key="--netD",
                       hint="say which discriminator it holds: --netD basic, n_layers or pixel")
    _refuse_other_suffixes(out)
    host = load_host()
    generator = import_generator(load_reference_state(checkpoint), host, net_g=net_g, ngf=ngf, norm=norm,
                                 dropout=dropout, input_nc=input_nc, output_nc=output_nc, file=str(checkpoint))
    nets = {"generator": generator}
    sources = [checkpoint.name]
    if net_d is not None:
        d_file = _discriminator_file(checkpoint, checkpoint_d)
        nets["discriminator"] = import_discriminator(
            load_reference_state(d_file), host, net_d=net_d, ndf=ndf, norm=norm, n_layers_d=n_layers_d,
            input_nc=input_nc, output_nc=output_nc, file=str(d_file))
        sources.append(d_file.name)

    data = {"name": "single", "channels": input_nc, "out_channels": output_nc}
    _write_imported(out, host, "pix2pix", data, nets, "junyanz:" + ",".join(sources))


def _write_imported(out: Path, host: Any, task: Any, data: dict[str, Any], nets: dict[str, Any],
                    source: str) -> None:
    """Write imported networks as a p2p checkpoint with the recipe that rebuilds them; print each one and how
    to translate with the checkpoint."""
    from rich.console import Console
    from rich.markup import escape

    from p2pcore.api import write_weights

    recipe: dict[str, Any] = {"name": out.stem, "task": task, "data": data,
                              "model": {role: imported.spec for role, imported in nets.items()}}
    write_weights(out, recipe, {role: imported.net for role, imported in nets.items()}, source=source, host=host)
    console = Console()
    for role, imported in nets.items():
        count = sum(p.numel() for p in imported.net.parameters())
        console.print(escape(f"{role}: {_spec_text(imported.spec)}, {count:,} parameters"))
    console.print(f"[green]imported[/green] -> {escape(str(out))}; "
                  f"try: p2p translate {escape(str(out))} INPUT OUTPUT --protocol eval")


def _spec_text(spec: dict[str, Any]) -> str:
    """``unet(depth=8, norm=batch(momentum=0.1), ...)``: a component spec on one line."""
    options = ", ".join(f"{key}={_spec_text(value) if isinstance(value, dict) else value}"
                        for key, value in spec.items() if key != "name")
    return f"{spec['name']}({options})" if options else str(spec["name"])


PIX2PIXHD_HELP = (
    "Import a pix2pixHD generator (and its multi-scale discriminator) trained with NVIDIA/pix2pixHD. The "
    "architecture is read from the weights: global or local generator, channels, ngf, downsamplings, "
    "residual blocks, enhancers; the norm too (batch norms leave running statistics; otherwise instance, "
    "the reference's default).\n\n"
    "With --label-nc (the reference's --label_nc) the result is a pix2pixhd checkpoint that translates "
    "label maps (*_gtFine_labelIds.png, with the instance maps beside them when the generator reads "
    "instance boundaries); without, an image-to-image one (the reference's --label_nc 0). Run it with "
    "`p2p translate OUT.safetensors INPUT OUTPUT --protocol eval`.\n\n"
    "Example:\np2p import pix2pixhd latest_net_G.pth g.safetensors --label-nc 35")


@import_app.command("pix2pixhd", help=PIX2PIXHD_HELP)
def pix2pixhd(
    checkpoint: Annotated[Path, typer.Argument(help="the generator's state_dict written by NVIDIA/pix2pixHD, "
                                               "e.g. latest_net_G.pth")],
    out: Out,
    net_g: Annotated[str | None, typer.Option("--netG", help="global or local (default: read from the "
                                              "weights; given, it is checked)")] = None,
    checkpoint_d: Annotated[Path | None, typer.Option("--checkpoint-D", help="also import the multi-scale "
                                                      "discriminator from this file, e.g. latest_net_D.pth")] = None,
    norm: Annotated[str | None, typer.Option("--norm", help="instance or batch (default: read from the "
                                             "weights)")] = None,
    label_nc: Annotated[int | None, typer.Option("--label-nc", min=1, help="label ids of the label maps the "
                                                 "generator reads one-hot (35 for Cityscapes)")] = None,
) -> None:
    """Write a p2p checkpoint holding the converted generator (and discriminator)."""
    from p2p_interop.junyanz import load_reference_state
    from p2p_interop.pix2pixhd import import_discriminator, import_generator
    from p2pcore.api import load_host

    _refuse_other_suffixes(out)
    host = load_host()
    generator = import_generator(load_reference_state(checkpoint), host, net_g=net_g, norm=norm,
                                 file=str(checkpoint))
    input_nc, output_nc = generator.channels
    if label_nc is None:
        task: dict[str, Any] = {"name": "pix2pix"}
        data: dict[str, Any] = {"name": "single", "channels": input_nc, "out_channels": output_nc}
    else:
        extra = input_nc - label_nc
        if extra not in (0, 1):
            raise P2PError(f"the generator reads {input_nc} channels: not {label_nc} labels (+ 1 instance "
                           f"boundary map)", file=str(checkpoint), key="--label-nc",
                           hint=f"give the --label_nc it was trained with ({input_nc} or {input_nc - 1}); "
                                "generators that also read encoded instance features are not imported")
        task = {"name": "pix2pixhd", "label_nc": label_nc, "instances": extra == 1}
        data = {"name": "cityscapes_hd", "root": "", "instances": extra == 1}
    nets = {"generator": generator}
    sources = [checkpoint.name]
    if checkpoint_d is not None:
        state_d = load_reference_state(checkpoint_d)
        d = import_discriminator(state_d, host, norm=norm, file=str(checkpoint_d))
        seen = d.channels[0]
        if seen not in (input_nc + output_nc, output_nc):
            raise P2PError(f"the discriminator reads {seen} channels, which is neither the generator's input and "
                           f"output ({input_nc} + {output_nc}) nor its output ({output_nc})",
                           file=str(checkpoint_d), hint="give the discriminator trained with this generator")
        if seen == output_nc:  # it judges photos alone
            d = import_discriminator(state_d, host, norm=norm, conditional=False, file=str(checkpoint_d))
        nets["discriminator"] = d
        sources.append(checkpoint_d.name)

    _write_imported(out, host, task, data, nets, "pix2pixhd:" + ",".join(sources))
