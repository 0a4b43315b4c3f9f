"""Parameter tables for `p2p show` and the recipe JSON Schema for `p2p schema` (no torch)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from p2pcore.plugins import Host
from p2pcore.recipe import Recipe
from p2pcore.typenames import type_name


def fact_text(value: Any) -> str:
    """A component's derived fact as `p2p show` and the docs print it: a sequence (a generator's feature taps)
    numbered by position, as layer indices address it."""
    if isinstance(value, list | tuple):
        return ", ".join(f"{index} {item}" for index, item in enumerate(value))
    return str(value)


def describe_params(model: type[BaseModel]) -> list[dict[str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        if field.default is PydanticUndefined and field.default_factory is None:
            default = "(required)"
        else:
            value = field.get_default(call_default_factory=True)
            default = repr(value.model_dump() if isinstance(value, BaseModel) else value)
        rows.append({"name": name, "type": type_name(field.annotation), "default": default,
                     "description": field.description or ""})
    return rows


def _component_schemas(host: Host, kind: str, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    out = []
    for spec in host.registry.specs(kind):
        schema = spec.params.model_json_schema()
        props = {"name": {"enum": [spec.name, spec.qualified_name, *spec.aliases]}, **(extra or {}),
                 **schema.get("properties", {})}
        entry = {"type": "object", "title": f"{kind} {spec.name}", "description": spec.summary,
                 "properties": props, "required": ["name", *schema.get("required", [])],
                 "additionalProperties": False}
        if "$defs" in schema:
            entry["$defs"] = schema["$defs"]
        out.append(entry)
    return out


def recipe_schema(host: Host) -> dict[str, Any]:
    """The Recipe schema, with each component table checked against the installed components."""
    schema = Recipe.model_json_schema()
    props = schema["properties"]
    for kind in ("task", "schedule"):
        props[kind] = {"anyOf": [{"enum": host.registry.names(kind)}, *_component_schemas(host, kind)],
                       "description": props[kind].get("description", "")}
    props["data"] = {"anyOf": _component_schemas(host, "dataset"), "description": "dataset adapter"}
    networks = _component_schemas(host, "generator") + _component_schemas(host, "discriminator")
    props["model"] = {"type": "object", "additionalProperties": {"anyOf": networks},
                      "description": props["model"].get("description", "")}
    losses = _component_schemas(host, "loss", {"weight": {"type": "number"}})
    losses.append({"type": "object", "title": "a change to a term the task supplies by default",
                   "not": {"required": ["name"]}})  # [loss.<label>] weight = 10, over the task's own term
    props["loss"] = {"type": "object", "additionalProperties": {"anyOf": losses},
                     "description": props["loss"].get("description", "")}
    callbacks = _component_schemas(host, "callback")
    props["callbacks"] = {"type": "object", "additionalProperties": {"anyOf": callbacks} if callbacks else False,
                          "description": props["callbacks"].get("description", "")}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "p2p recipe"
    return schema
