"""A checkpoint's tensors checked against one another from the header alone, without torch: what
`p2p inspect` can tell without building the recipe's networks (:mod:`p2pcore.checkpoint.layout` then
compares every tensor with what the recipe builds).

Every tensor is under a prefix p2p writes; network weights and averages are stored as floats (integer
buffers such as batch-norm counters as integers), never as booleans, unsigned or 8-bit numbers; an
average has its network's shapes; each parameter's optimiser state is complete (Adam's ``exp_avg``,
``exp_avg_sq`` and ``step``), of a parameter its optimiser lists, shaped like one of the file's network
tensors, with a scalar float step; random states are bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from p2pcore.errors import P2PError

DAMAGED = "the file is damaged or was altered; use another checkpoint (runs keep the previous epochs)"
FLOATS = frozenset({"F16", "BF16", "F32", "F64"})
NETWORK_DTYPES = FLOATS | {"I32", "I64"}  # integer buffers: batch-norm's num_batches_tracked
ADAM_KEYS = ("exp_avg", "exp_avg_sq", "step")
PREFIXES = ("net", "ema", "optim", "task", "rng")


def _refuse(message: str, name: str, file: str) -> P2PError:
    return P2PError(message, file=file, key=f"tensors.{name}", hint=DAMAGED)


def check_consistency(tensors: Mapping[str, Any], optim: Mapping[str, Any], *, file: str) -> None:
    """Refuse tensors that cannot be what p2p wrote. `tensors`: header entries (``dtype``, ``shape``) by
    name; `optim`: the metadata's optimiser state by player (``param_groups``)."""
    moments: dict[str, dict[int, dict[str, Any]]] = {}
    for name, entry in tensors.items():
        prefix, _, rest = name.partition(".")
        if prefix not in PREFIXES or not rest or (prefix in ("net", "ema", "optim") and "." not in rest):
            raise _refuse(f"tensor {name!r} is not one p2p writes (net., ema., optim., task. or rng.)", name, file)
        if prefix in ("net", "ema"):
            _network_tensor(name, entry, tensors, file)
        elif prefix == "optim":
            player, _, rest = rest.partition(".")
            index, _, key = rest.partition(".")
            if not index.isdigit() or len(index) > 9 or key not in ADAM_KEYS:
                raise _refuse(f"tensor {name!r} is not optimiser state p2p writes (optim.<player>.<index>."
                              f"{{{', '.join(ADAM_KEYS)}}})", name, file)
            moments.setdefault(player, {}).setdefault(int(index), {})[key] = entry
        elif prefix == "rng" and (entry.dtype != "U8" or len(entry.shape) != 1):
            raise _refuse(f"random state {name!r} is {entry.dtype} of shape {list(entry.shape)}, not bytes", name,
                          file)
    weights = Counter((tuple(e.shape), e.dtype) for n, e in tensors.items() if n.startswith("net.") and
                      e.dtype in FLOATS)
    for player, state in moments.items():
        _optimiser_state(player, state, optim, weights, file)
    for player, saved in optim.items():
        scalars = {index: entry for index, entry in saved.scalars.items() if entry}
        if scalars:
            index = next(iter(scalars))
            raise P2PError(f"the {player} optimiser's scalar state for parameter {index} ({', '.join(scalars[index])}) "
                           "is not Adam's: its state is tensors", file=file, key=f"optim.{player}.scalars.{index}",
                           hint=DAMAGED)


def _network_tensor(name: str, entry: Any, tensors: Mapping[str, Any], file: str) -> None:
    if entry.dtype not in NETWORK_DTYPES:
        raise _refuse(f"network tensor {name!r} is stored as {entry.dtype}; p2p stores weights as floats", name,
                      file)
    if name.startswith("ema."):
        own = tensors.get("net." + name[4:])
        if own is not None and (own.dtype != entry.dtype or list(own.shape) != list(entry.shape)):
            raise _refuse(f"weight average {name!r} is {entry.dtype} {list(entry.shape)}, its network's "
                          f"{own.dtype} {list(own.shape)}", name, file)


def _optimiser_state(player: str, state: Mapping[int, Mapping[str, Any]], optim: Mapping[str, Any],
                     weights: Counter, file: str) -> None:
    """One player's Adam state: complete per parameter, of listed parameters, shaped and typed like network
    weights (a moment has its parameter's shape and dtype), with a float32 step."""
    if player not in optim:
        name = f"optim.{player}.{min(state)}.{next(iter(state[min(state)]))}"
        raise _refuse(f"optimiser state for {player!r}, which the checkpoint's optim metadata does not list", name,
                      file)
    listed = {i for group in optim[player].param_groups for i in group.params}
    used: Counter = Counter()
    for index in sorted(state):
        entry = state[index]
        name = f"optim.{player}.{index}"
        missing = [key for key in ADAM_KEYS if key not in entry]
        if missing:
            raise _refuse(f"optimiser state {name} has no {missing[0]} (it has {', '.join(sorted(entry))})",
                          f"{name}.{missing[0]}", file)
        if index not in listed:
            raise _refuse(f"optimiser state {name} is of parameter {index}, which the {player} optimiser's "
                          "param_groups do not list", f"{name}.exp_avg", file)
        avg, sq, step = entry["exp_avg"], entry["exp_avg_sq"], entry["step"]
        for key, value in (("exp_avg", avg), ("exp_avg_sq", sq)):
            if value.dtype not in FLOATS:
                raise _refuse(f"optimiser state {name}.{key} is stored as {value.dtype}, not as floats",
                              f"{name}.{key}", file)
        if step.dtype != "F32":
            raise _refuse(f"optimiser state {name}.step is stored as {step.dtype}; Adam counts steps in float32",
                          f"{name}.step", file)
        if list(step.shape):
            raise _refuse(f"optimiser state {name}.step has shape {list(step.shape)}; a step count is a scalar",
                          f"{name}.step", file)
        if list(avg.shape) != list(sq.shape) or avg.dtype != sq.dtype:
            raise _refuse(f"optimiser state {name}: exp_avg ({avg.dtype} {list(avg.shape)}) and exp_avg_sq "
                          f"({sq.dtype} {list(sq.shape)}) differ", f"{name}.exp_avg_sq", file)
        used[(tuple(avg.shape), avg.dtype)] += 1
    for (shape, dtype), count in used.items():
        if count > weights[(shape, dtype)]:
            raise _refuse(f"the {player} optimiser holds {dtype} state of shape {list(shape)} for {count} parameters, "
                          f"but the file's networks have {weights[(shape, dtype)]} such weights", f"optim.{player}",
                          file)
