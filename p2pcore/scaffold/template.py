'''What `p2p new plugin` writes for a kind, and where each kind's template is found.

A template gives the entry module (parameters, builder, registration; no torch), the module its builder
imports (the torch code, or plain Python for a kind that needs none), the contract test's calls and the
recipe changes that use the component. `$name` stands for the component's (and module's) name, `$Name`
for its class prefix. Each kind's template is the `TEMPLATE` of the module the table of kinds names
(`p2pcore.scaffold.templates.<kind>`).'''

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from p2pcore.kinds import get_kind


@dataclass(frozen=True)
class Template:
    """One kind's package. `module` is the text of `<package>/<module_name>.py` after its docstring and
    ``from __future__ import annotations``, imports included; `imports` names what the test takes from
    `p2pcore.testing` besides the kind's own check and the shared ones."""

    summary: str
    entry: str
    module: str
    checks: str
    recipe: dict[str, Any] = field(default_factory=dict)
    module_name: str = "network"
    imports: tuple[str, ...] = ()


def template_for(kind: str) -> Template:
    """The template of `kind`, from the module the table of kinds names for it."""
    template = getattr(importlib.import_module(get_kind(kind, key="--kind").template), "TEMPLATE", None)
    if not isinstance(template, Template):
        raise TypeError(f"{get_kind(kind).template} defines no TEMPLATE")
    return template
