"""The named tensors of one training step, computed on first use and shared by every loss term."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from p2pcore.errors import P2PError, did_you_mean


class Tensors:
    """Named tensors of one training step, each computed on first use and then kept.

    A task declares producers (``"fake_b": lambda t: G(t["real_a"])``); loss terms read names.
    Nothing is computed that no term asks for, and nothing twice. `extend` makes a phase view
    (the discriminator or generator step) that shares what was already computed in its parent.
    """

    def __init__(self, producers: Mapping[str, Callable[[Tensors], Any]] | None = None,
                 values: Mapping[str, Any] | None = None, parent: Tensors | None = None) -> None:
        self._producers = dict(producers or {})
        self._values: dict[str, Any] = dict(values or {})
        self._parent = parent

    def extend(self, producers: Mapping[str, Callable[[Tensors], Any]]) -> Tensors:
        return Tensors(producers, parent=self)

    def names(self) -> set[str]:
        own = set(self._producers) | set(self._values)
        return own | (self._parent.names() if self._parent else set())

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def __getitem__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        if name in self._producers:
            self._values[name] = self._producers[name](self)
            return self._values[name]
        if self._parent is not None and name in self._parent:
            return self._parent[name]
        guess = did_you_mean(name, self.names())
        raise P2PError(f"this task provides no tensor named {name!r}",
                       hint=(f"did you mean {guess!r}? " if guess else "")
                       + f"available: {', '.join(sorted(self.names()))}")

