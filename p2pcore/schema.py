"""Parameter tables for `p2p show` and the recipe JSON Schema for `p2p schema` (no torch)."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from p2pcore.api import ComponentRef
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe


def _type_name(annotation: Any) -> str:
    """A short readable type: `int`, `16 | 34 | 70`, `float | None`, `component`."""
    if annotation is ComponentRef:
        return "component"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) if isinstance(a, str) else str(a) for a in args)
    if origin in (Union, UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def describe_params(model: type[BaseModel]) -> list[dict[str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        type_name = _type_name(field.annotation)
        if field.default is PydanticUndefined and field.default_factory is None:
            default = "(required)"
        else:
            value = field.get_default(call_default_factory=True)
            default = repr(value.model_dump() if isinstance(value, BaseModel) else value)
        rows.append({"name": name, "type": type_name, "default": default,
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
    props["task"] = {"enum": host.registry.names("task"), "description": props["task"].get("description", "")}
    props["data"] = {"anyOf": _component_schemas(host, "dataset"), "description": "dataset adapter"}
    networks = _component_schemas(host, "generator") + _component_schemas(host, "discriminator")
    props["model"] = {"type": "object", "additionalProperties": {"anyOf": networks},
                      "description": props["model"].get("description", "")}
    losses = _component_schemas(host, "loss", {"weight": {"type": "number"}})
    props["loss"] = {"type": "object", "additionalProperties": {"anyOf": losses},
                     "description": props["loss"].get("description", "")}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "p2p recipe"
    return schema
