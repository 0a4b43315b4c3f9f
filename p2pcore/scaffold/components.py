'''What `p2p new plugin` writes for each kind: the entry module (parameters, builder, registration; no
torch), the torch module it imports when building, the contract test's calls, and the recipe changes
that use the component. `$name` stands for the component's (and module's) name, `$Name` for its class prefix.'''

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Template:
    summary: str
    entry: str
    torch_module: str
    checks: str
    recipe: dict[str, Any] = field(default_factory=dict)


GENERATOR = Template(
    summary="a small residual generator: one downsampling, residual blocks, one upsampling",
    entry='''
from p2pcore.api import BuildContext, Field, NormRef, P2PError, Params, hookimpl


class $NameParams(Params):
    ngf: int = Field(16, ge=1, le=1024, description="filters of the first layer, doubled at half resolution")
    n_blocks: int = Field(2, ge=0, le=32, description="residual blocks at half resolution")
    norm: NormRef = Field("instance", description="normalisation layer (see `p2p list norm`)")


def build(params: $NameParams, ctx: BuildContext) -> Any:
    """A small residual generator: one downsampling, residual blocks, one upsampling."""
    if not ctx.in_channels or not ctx.out_channels:
        raise P2PError("a generator needs its channel counts", key=ctx.key or None,
                       hint="build it through a task, or pass in_channels and out_channels to host.build")
    from $name.network import Generator  # torch only when building

    return Generator(ctx.in_channels, ctx.out_channels, ngf=params.ngf, n_blocks=params.n_blocks,
                     norm=ctx.build(params.norm))


@hookimpl
def p2p_register_generators(register: Any) -> None:
    register("$name", build, params=$NameParams, facts=lambda params: {"size_multiple": 2})
''',
    torch_module='''
class Residual(nn.Module):
    def __init__(self, channels: int, norm: Any) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=norm.conv_bias), norm(channels), nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=norm.conv_bias), norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    size_multiple = 2  # one stride-2 convolution: even sides come back the same size

    def __init__(self, in_channels: int, out_channels: int, *, ngf: int, n_blocks: int, norm: Any) -> None:
        super().__init__()
        wide = 2 * ngf
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ngf, 3, padding=1, bias=norm.conv_bias), norm(ngf), nn.ReLU(True),
            nn.Conv2d(ngf, wide, 4, stride=2, padding=1, bias=norm.conv_bias), norm(wide), nn.ReLU(True),
            *(Residual(wide, norm) for _ in range(n_blocks)),
            nn.ConvTranspose2d(wide, ngf, 4, stride=2, padding=1, bias=norm.conv_bias), norm(ngf), nn.ReLU(True),
            nn.Conv2d(ngf, out_channels, 3, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"ngf": 8, "n_blocks": 0, "norm": "batch"}])
def test_generator_contract(p2p_host, params):
    check_generator(p2p_host, "$name", in_channels=1, out_channels=3, **params)
''',
    recipe={"model": {"generator": {"name": "$name", "ngf": 8}}},
)

DISCRIMINATOR = Template(
    summary="a small PatchGAN-style discriminator: stride-2 convolutions, then a map of logits",
    entry='''
from p2pcore.api import BuildContext, Field, NormRef, P2PError, Params, hookimpl


class $NameParams(Params):
    conditional: bool = Field(True, description="the discriminator sees the input beside the output")
    ndf: int = Field(16, ge=1, le=1024, description="filters of the first layer, doubled by each later one")
    n_layers: int = Field(2, ge=1, le=6, description="stride-2 convolutions")
    norm: NormRef = Field("instance", description="normalisation layer (see `p2p list norm`)")


def receptive_field(n_layers: int) -> int:
    """Pixels each logit sees: a 3x3 stride-1 convolution after n 4x4 stride-2 ones."""
    side = 3
    for _ in range(n_layers):
        side = 2 * (side - 1) + 4
    return side


def build(params: $NameParams, ctx: BuildContext) -> Any:
    """A small PatchGAN-style discriminator: stride-2 convolutions, then a map of logits."""
    if not ctx.in_channels:
        raise P2PError("a discriminator needs the channels it sees", key=ctx.key or None,
                       hint="build it through a task, or pass in_channels to host.build")
    from $name.network import Discriminator

    return Discriminator(ctx.in_channels, ndf=params.ndf, n_layers=params.n_layers, norm=ctx.build(params.norm),
                         conditional=params.conditional, receptive_field=receptive_field(params.n_layers))


@hookimpl
def p2p_register_discriminators(register: Any) -> None:
    register("$name", build, params=$NameParams,
             facts=lambda params: {"receptive_field": receptive_field(params.n_layers)})
''',
    torch_module='''
class Discriminator(nn.Module):
    def __init__(self, in_channels: int, *, ndf: int, n_layers: int, norm: Any, conditional: bool,
                 receptive_field: int) -> None:
        super().__init__()
        self.conditional = conditional
        self.receptive_field = receptive_field
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        channels = ndf
        for _ in range(n_layers - 1):
            layers += [nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1, bias=norm.conv_bias),
                       norm(2 * channels), nn.LeakyReLU(0.2, True)]
            channels *= 2
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"conditional": False, "n_layers": 3, "norm": "batch"}])
def test_discriminator_contract(p2p_host, params):
    check_discriminator(p2p_host, "$name", in_channels=4, **params)
''',
    recipe={"model": {"discriminator": {"name": "$name", "ndf": 8}}},
)

NORM = Template(
    summary="pixel normalisation: each pixel's feature vector scaled to unit mean square, then a learned scale",
    entry='''
from p2pcore.api import BuildContext, Field, Params, hookimpl


class $NameParams(Params):
    eps: float = Field(1e-8, gt=0, description="added to the mean square for stability")
    affine: bool = Field(True, description="learn a per-channel scale after normalising")


class $NameFactory:
    """A NormFactory: `factory(channels)` makes a layer; the conv before it keeps its bias (nothing here
    shifts the features)."""

    conv_bias = True

    def __init__(self, params: $NameParams) -> None:
        self.params = params

    def __call__(self, channels: int) -> Any:
        from $name.network import PixelNorm

        return PixelNorm(channels, eps=self.params.eps, affine=self.params.affine)


def build(params: $NameParams, ctx: BuildContext) -> $NameFactory:
    """Pixel normalisation: each pixel's feature vector scaled to unit mean square, then a learned scale."""
    return $NameFactory(params)


@hookimpl
def p2p_register_norms(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    torch_module='''
class PixelNorm(nn.Module):
    def __init__(self, channels: int, *, eps: float, affine: bool) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return y * self.weight if self.weight is not None else y
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"affine": False}])
def test_norm_contract(p2p_host, params):
    check_norm(p2p_host, "$name", **params)


def test_norm_inside_a_builtin_generator(p2p_host):
    check_generator(p2p_host, "unet", depth=5, ngf=8, norm="$name")
''',
    recipe={"model": {"generator": {"norm": "$name"}, "discriminator": {"norm": "$name"}}},
)

LOSS = Template(
    summary="gradient difference: L1 between the horizontal and vertical differences of output and target",
    entry='''
from p2pcore.api import BuildContext, Field, LossParams, LossTerm, hookimpl


class $NameParams(LossParams):
    pred: str = Field("fake_b", description="tensor to compare")
    target: str = Field("real_b", description="tensor whose edges it should have")

    def reads(self) -> frozenset[str]:
        return frozenset({self.pred, self.target})


class $NameTerm(LossTerm):
    """Sharp edges where the target has them: only the generator side takes part."""

    def __init__(self, pred: str, target: str) -> None:
        self.pred = pred
        self.target = target

    def generator_loss(self, t: Any) -> Any:
        from $name.network import gradient_difference

        return gradient_difference(t[self.pred], t[self.target])


def build(params: $NameParams, ctx: BuildContext) -> $NameTerm:
    """Gradient difference: L1 between the horizontal and vertical differences of output and target."""
    return $NameTerm(params.pred, params.target)


@hookimpl
def p2p_register_losses(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    torch_module='''
def gradient_difference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the images' finite differences along H and along W."""
    along_h = (pred.diff(dim=-2) - target.diff(dim=-2)).abs().mean()
    along_w = (pred.diff(dim=-1) - target.diff(dim=-1)).abs().mean()
    return along_h + along_w
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"pred": "fake_b", "target": "real_a"}])
def test_loss_contract(p2p_host, params):
    check_loss(p2p_host, "$name", **params)
''',
    recipe={"loss": {"$name": {"name": "$name", "weight": 10.0}}},
)

DATASET = Template(
    summary="rendered stripes: a grey pattern (1 channel) -> its colouring (3 channels); no files",
    entry='''
from p2pcore.api import BuildContext, Field, P2PError, Params, hookimpl

SPLITS = ("train", "test")


class $NameParams(Params):
    size: int = Field(32, ge=8, le=1024, description="side of the square images, in pixels")
    train_count: int = Field(64, ge=1, description="images in the train split")
    test_count: int = Field(8, ge=1, description="images in the test split")
    seed: int = Field(0, ge=0, description="image i of a split is the same for the same seed")


class $NameAdapter:
    """Grey stripes (a, 1 channel) and the same stripes coloured (b, 3 channels), rendered on demand."""

    a_channels = 1
    b_channels = 3

    def __init__(self, params: $NameParams) -> None:
        self.params = params

    def dataset(self, split: str, *, train: bool) -> Any:
        if split not in SPLITS:
            raise P2PError(f"$name has no split {split!r}", key="data", hint=f"splits: {', '.join(SPLITS)}")
        from $name.network import Stripes

        count = self.params.train_count if split == "train" else self.params.test_count
        return Stripes(self.params.size, count, seed=self.params.seed + (0 if split == "train" else 1_000_003),
                       flip=train)

    def read_input(self, path: str, side: str = "a") -> Any:
        from p2pcore.api import read_image

        return read_image(path, self.a_channels if side == "a" else self.b_channels)

    def write_output(self, image: Any, path: str, side: str = "b") -> None:
        from p2pcore.api import write_image

        write_image(image, path)


def build(params: $NameParams, ctx: BuildContext) -> $NameAdapter:
    """Rendered stripes: a grey pattern (1 channel) -> its colouring (3 channels); no files."""
    return $NameAdapter(params)


@hookimpl
def p2p_register_datasets(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    torch_module='''
class Stripes(torch.utils.data.Dataset):
    """Item i: stripes of a random angle and frequency in grey, and coloured by a fixed mapping."""

    def __init__(self, size: int, count: int, *, seed: int, flip: bool) -> None:
        self.size, self.count, self.seed, self.flip = size, count, seed, flip

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.count:
            raise IndexError(index)
        g = torch.Generator().manual_seed(self.seed * 7919 + index)
        angle, frequency, phase = torch.rand(3, generator=g) * torch.tensor([3.1416, 0.5, 6.2832])
        axis = torch.linspace(-1, 1, self.size)
        y, x = torch.meshgrid(axis, axis, indexing="ij")
        wave = torch.sin((x * angle.cos() + y * angle.sin()) * (2 + frequency * self.size) + phase)
        a = wave[None]
        b = torch.stack([wave, wave.roll(self.size // 4, dims=1), -wave]) * 0.9
        if self.flip and torch.rand((), generator=g) < 0.5:
            a, b = a.flip(-1), b.flip(-1)
        return {"a": a.contiguous(), "b": b.contiguous(), "name": f"stripes_{index:05d}"}
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"size": 48, "seed": 3}])
def test_dataset_contract(p2p_host, params):
    check_dataset(p2p_host, "$name", **params)
''',
    recipe={"data": {"name": "$name", "size": 32, "train_count": 4, "test_count": 2}},
)

TASK = Template(
    summary="paired translation a -> b whose discriminator judges outputs alone (no condition)",
    entry='''
from p2pcore.api import Direction, Player, Role, TaskParams, TaskSpec, hookimpl

JUDGED = ("discriminator", "generator")


class $NameParams(TaskParams):
    def declare(self) -> TaskSpec:
        return TaskSpec(
            roles={"generator": Role("generator", summary="G: a -> b"),
                   "discriminator": Role("discriminator", required=False, summary="D: judges b alone")},
            players={"generator": Player("generator", ("generator",)),
                     "discriminator": Player("discriminator", ("discriminator",))},
            tensors={"real_a": (), "real_b": (), "fake_b": ("generator",), "d_real": JUDGED, "d_fake": JUDGED},
            directions={"a2b": Direction("a", "b", ("generator",), tensor="fake_b", target="real_b")},
            visuals={"real_a": "a", "fake_b": "b", "real_b": "b"})

    def check(self, model: Any) -> None:
        from p2pcore.api import P2PError

        d = model.get("discriminator")
        if d is not None and getattr(d.params, "conditional", False):
            raise P2PError("$name's discriminator judges outputs alone", key="model.discriminator.conditional",
                           hint="set conditional = false")


def build(params: $NameParams, ctx: Any) -> Any:
    """Paired translation a -> b whose discriminator judges outputs alone (no condition)."""
    from $name.network import $NameTask

    return $NameTask()


@hookimpl
def p2p_register_tasks(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    torch_module='''
from p2pcore.api import Task, Tensors


class $NameTask(Task):
    def build_networks(self, ctx: Any) -> dict[str, nn.Module]:
        a, b = ctx.channels["a"], ctx.channels["b"]
        nets = {"generator": ctx.build("generator", in_channels=a, out_channels=b)}
        if ctx.wants("discriminator"):
            nets["discriminator"] = ctx.build("discriminator", in_channels=b, out_channels=1)
        return nets

    def step_tensors(self, nets: Any, batch: Any) -> Tensors:
        generator = nets["generator"]
        return Tensors({"fake_b": lambda t: generator(t["real_a"])},
                       values={"real_a": batch["a"], "real_b": batch["b"]})

    def phase_tensors(self, side: str, nets: Any, base: Tensors) -> Tensors:
        if "discriminator" not in nets:
            return base
        d = nets["discriminator"]
        detach = side == "discriminator"  # D's update must not reach G through the fake
        return base.extend({"d_real": lambda t: d(t["real_b"]),
                            "d_fake": lambda t: d(t["fake_b"].detach() if detach else t["fake_b"])})

    def translate(self, direction: str, nets: Any, image: torch.Tensor) -> torch.Tensor:
        return nets["generator"](image)
''',
    checks='''
def test_task_contract(p2p_host, tmp_path):
    check_task(p2p_host, "$name", out_dir=tmp_path,
               recipe=tiny_recipe(model={"discriminator": {"conditional": False}}))


def test_task_trains_without_a_discriminator(p2p_host, tmp_path):
    check_task(p2p_host, "$name", out_dir=tmp_path,
               recipe=tiny_recipe(model={"discriminator": None}, loss={"gan": None}))
''',
    recipe={"task": "$name", "model": {"discriminator": {"conditional": False}}},
)

METRIC = Template(
    summary="root mean squared error between output and target over the split, in [-1, 1] units",
    entry='''
from p2pcore.api import BuildContext, MetricParams, hookimpl


class $NameParams(MetricParams):
    def figures(self) -> dict[str, bool]:
        return {"": False}  # one figure, lower is better


def build(params: $NameParams, ctx: BuildContext) -> Any:
    """Root mean squared error between output and target over the split, in [-1, 1] units."""
    from $name.network import RootMeanSquaredError

    return RootMeanSquaredError()


@hookimpl
def p2p_register_metrics(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    torch_module='''
from p2pcore.api import Comparison, Metric


class RootMeanSquaredError(Metric):
    """Sums stay tensors on the device during the split; one transfer in compute."""

    def reset(self) -> None:
        self.squared: torch.Tensor | None = None
        self.count = 0

    def update(self, batch: Comparison) -> None:
        error = (batch.output.float() - batch.target.float()).pow(2).sum()
        self.squared = error if self.squared is None else self.squared + error
        self.count += batch.output.numel()

    def compute(self) -> dict[str, float]:
        if self.squared is None:
            return {"": float("nan")}
        return {"": float((self.squared / self.count).sqrt())}
''',
    checks='''
def test_metric_contract(p2p_host):
    check_metric(p2p_host, "$name")
''',
    recipe={"eval": {"metrics": ["$name"]}},
)

TEMPLATES: dict[str, Template] = {"generator": GENERATOR, "discriminator": DISCRIMINATOR, "norm": NORM,
                                  "loss": LOSS, "dataset": DATASET, "task": TASK, "metric": METRIC}
CHECKS: dict[str, tuple[str, ...]] = {  # the checks each kind's test imports, besides the shared ones
    "generator": ("check_generator",), "discriminator": ("check_discriminator",),
    "norm": ("check_generator", "check_norm"), "loss": ("check_loss",), "dataset": ("check_dataset",),
    "task": ("check_task", "tiny_recipe"), "metric": ("check_metric",)}
