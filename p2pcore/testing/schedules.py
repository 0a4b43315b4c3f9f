"""Contract check of learning-rate schedules."""

from __future__ import annotations

import json
import math
from typing import Any

from p2pcore.api.schedules import ScheduleParams
from p2pcore.plugins import Host
from p2pcore.testing.support import build, build_with_methods, resolve_reading

METHODS = ("factor", "observe", "state_dict", "load_state_dict")


def _positions(per: str, epoch: int) -> list[float]:
    """Where the engine asks for a factor in `epoch`: its start, or four points of it when stepping per step."""
    return [epoch + quarter / 4 for quarter in range(4)] if per == "step" else [float(epoch)]


def _factor(schedule: Any, position: float, epochs: int, what: str) -> float:
    value = schedule.factor(position, epochs)
    assert isinstance(value, int | float) and not isinstance(value, bool), \
        f"{what}: factor({position}, {epochs}) returned {type(value).__name__}, not a float"
    assert math.isfinite(value) and value >= 0, f"{what}: factor({position}, {epochs}) is {value}; give a finite " \
                                                "multiplier >= 0"
    return float(value)


def _figures(reads: frozenset[str], epoch: int) -> dict[str, float]:
    """Figures for the names a schedule reads: improving for three epochs, then flat."""
    return dict.fromkeys(sorted(reads), 1.0 / (1 + min(epoch, 3)))


def check_schedule(host: Host, name: str, *, epochs: int = 12, **params: Any) -> Any:
    """Build schedule `name` and check its contract over `epochs` epochs: params subclassing ScheduleParams
    whose `reads()` names figures; `factor(epoch, epochs)` a finite float >= 0 at each position the engine
    asks (fractional ones when stepping per step), the same when asked twice; `observe` taking the epoch-end
    figures it reads; a `state_dict` that JSON holds and that, loaded into a fresh schedule, gives the same
    factors from there on (a resumed run continues exactly). Returns the schedule."""
    what = f"schedule {name!r}"
    resolved, reads = resolve_reading(host, "schedule", name, params, ScheduleParams, "figure")
    schedule = build_with_methods(host, "schedule", name, params, METHODS,
                                  "it has no {}(); subclass p2pcore.api.Schedule")
    resumed = None
    for epoch in range(epochs):
        if epoch == epochs // 2:  # resume halfway: a fresh schedule from the state a checkpoint holds
            resumed = build(host, "schedule", name, params)
            resumed.load_state_dict(json.loads(_json(schedule.state_dict(), what)))
        for position in _positions(resolved.per, epoch):
            first = _factor(schedule, position, epochs, what)
            assert _factor(schedule, position, epochs, what) == first, \
                f"{what}: factor({position}, {epochs}) changed when asked twice; change state in observe() only"
            if resumed is not None:
                back = _factor(resumed, position, epochs, what)
                assert math.isclose(first, back, rel_tol=1e-9, abs_tol=1e-12), \
                    f"{what}: at {position} of {epochs} epochs it gives {first}, but {back} after load_state_dict " \
                    "of its state_dict(): keep in the state whatever observe() changed"
        for running in (schedule, resumed):
            if running is not None:
                running.observe(epoch, _figures(reads, epoch))
    return schedule


def _json(state: Any, what: str) -> str:
    try:
        return json.dumps(state)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{what}: state_dict() {state!r} is not JSON (checkpoints store it as JSON): {exc}") \
            from exc
