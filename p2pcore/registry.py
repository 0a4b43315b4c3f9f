"""The component registry: kind -> name -> ComponentSpec, built once per Host and then frozen."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from p2pcore.errors import P2PError, did_you_mean
from p2pcore.kinds import NAMES, get_kind

KINDS: tuple[str, ...] = NAMES  # the kinds' names, from the table of kinds (p2pcore.kinds)
BUILTIN_DISTRIBUTION = "p2pcore"  # the distribution on the package index; the command is `p2p`


@dataclass(frozen=True)
class ComponentSpec:
    """Everything known about one registered component."""

    kind: str
    name: str
    build: Callable[[Any, Any], Any]
    params: type[BaseModel]
    plugin: str
    distribution: str
    version: str
    summary: str = ""
    aliases: tuple[str, ...] = ()
    facts: Callable[[Any], dict[str, Any]] | None = None

    def describe_defaults(self) -> dict[str, Any]:
        """Derived facts (e.g. a receptive field) for the default parameters, computed without torch."""
        if self.facts is None:
            return {}
        try:
            return self.facts(self.params())
        except Exception:  # parameters without defaults: nothing to derive
            return {}

    @property
    def qualified_name(self) -> str:
        return f"{self.distribution}:{self.name}"

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION


@dataclass
class Registry:
    """Components by kind. Lookups accept a bare name, an alias, or ``distribution:name``."""

    _by_qualified: dict[str, dict[str, ComponentSpec]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS})
    _frozen: bool = False
    unloaded: tuple[str, ...] = ()  # a line for each plugin that was not loaded: unknown names show them

    def add(self, spec: ComponentSpec) -> None:
        if self._frozen:
            raise RuntimeError("the registry is frozen; register components from a p2p_register_* hook")
        if spec.kind not in KINDS:
            raise ValueError(f"unknown component kind {spec.kind!r}; kinds are {', '.join(KINDS)}")
        table = self._by_qualified[spec.kind]
        if spec.qualified_name in table:
            raise ValueError(f"{spec.kind} {spec.qualified_name!r} is registered twice")
        if not spec.builtin:
            for word in (spec.name, *spec.aliases):
                clash = self._bare(spec.kind, word, builtin_only=True)
                if clash:
                    raise ValueError(f"{spec.kind} name {word!r} is reserved by the built-in "
                                     f"{clash.qualified_name}; register it under another name")
        table[spec.qualified_name] = spec

    def discard_plugin(self, plugin: str) -> None:
        """Forget what a plugin registered before it failed, so loading is all-or-nothing."""
        for table in self._by_qualified.values():
            for qualified in [q for q, spec in table.items() if spec.plugin == plugin]:
                del table[qualified]

    def freeze(self) -> None:
        self._frozen = True

    def _bare(self, kind: str, word: str, builtin_only: bool = False) -> ComponentSpec | None:
        for spec in self._by_qualified[kind].values():
            if (spec.builtin or not builtin_only) and word in (spec.name, *spec.aliases):
                return spec
        return None

    def specs(self, kind: str) -> list[ComponentSpec]:
        self._check_kind(kind)
        return sorted(self._by_qualified[kind].values(), key=lambda s: (not s.builtin, s.name, s.distribution))

    def __iter__(self) -> Iterator[ComponentSpec]:
        for kind in KINDS:
            yield from self.specs(kind)

    def names(self, kind: str) -> list[str]:
        """Names users can write: bare names where unambiguous, qualified names otherwise."""
        out = []
        for spec in self.specs(kind):
            out.append(spec.name if len(self._matches(kind, spec.name)) == 1 else spec.qualified_name)
        return out

    def _matches(self, kind: str, word: str) -> list[ComponentSpec]:
        if ":" in word:
            spec = self._by_qualified[kind].get(word)
            return [spec] if spec else []
        hits = [s for s in self._by_qualified[kind].values() if word in (s.name, *s.aliases)]
        builtins = [s for s in hits if s.builtin]
        return builtins or hits

    def get(self, kind: str, name: str) -> ComponentSpec:
        self._check_kind(kind)
        hits = self._matches(kind, name)
        if len(hits) == 1:
            return hits[0]
        if hits:
            options = ", ".join(sorted(s.qualified_name for s in hits))
            raise P2PError(f"{kind} name {name!r} is registered by several plugins: {options}",
                           hint=f"write the qualified name, one of: {options}")
        known = self.names(kind) + [a for s in self.specs(kind) for a in s.aliases]
        guess = did_you_mean(name, known)
        hint = f"did you mean {guess!r}? " if guess else ""
        raise P2PError(f"unknown {kind} {name!r}", details=self.unloaded,
                       hint=f"{hint}available: {', '.join(self.names(kind)) or '(none)'}; "
                            f"see `p2p list {kind}`; a component of another plugin needs that package installed "
                            "(the recipes in examples/p2p-example/recipes: `pip install -e examples/p2p-example`)")

    def search(self, kind: str | None = None, pattern: str | None = None) -> list[ComponentSpec]:
        """Components of `kind` (or every kind) whose name matches a shell-style wildcard."""
        kinds = [kind] if kind else list(KINDS)
        found = []
        for k in kinds:
            for spec in self.specs(k):
                if pattern is None or any(fnmatch.fnmatch(word, pattern if any(c in pattern for c in "*?[")
                                                          else f"*{pattern}*")
                                          for word in (spec.name, spec.qualified_name, *spec.aliases)):
                    found.append(spec)
        return found

    def _check_kind(self, kind: str) -> None:
        get_kind(kind)
