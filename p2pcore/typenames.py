"""Short readable names of parameter types, for `p2p show` and error hints."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from p2pcore.api.base import ComponentRef


def type_name(annotation: Any) -> str:
    """A short readable type: `int`, `16 | 34 | 70`, `float | None`, `component`."""
    if annotation is ComponentRef:
        return "component"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) if isinstance(a, str) else str(a) for a in args)
    if origin in (Union, UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Annotated:
        return type_name(args[0])
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    if annotation is Ellipsis:  # tuple[int, ...]
        return "..."
    return getattr(annotation, "__name__", str(annotation))
