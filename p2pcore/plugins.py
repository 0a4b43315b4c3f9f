"""The plugin host: discovers plugins, collects their components, validates and builds them."""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from p2pcore import hookspecs
from p2pcore.api.base import API_VERSION, BuildContext, ComponentRef, Params
from p2pcore.compat import DECLARATION, Incompatible, declared_in_source, require_supported
from p2pcore.errors import P2PError, did_you_mean
from p2pcore.kinds import KINDS, Kind, params_refusal
from p2pcore.registry import ComponentSpec, Registry

ENTRY_POINT_GROUP = "p2p.plugins"
PARAMS_BASE: dict[str, type[Params]] = {name: kind.params for name, kind in KINDS.items()}
HOOK_FOR_KIND: dict[str, str] = {name: kind.hook for name, kind in KINDS.items()}


class Refused(Exception):
    """A registration p2p refuses (parameters of the wrong base); its message is the whole explanation, so
    `p2p plugins` shows it as it is, without an exception's name."""


@dataclass(frozen=True)
class PluginRecord:
    """How loading one plugin went; `p2p plugins` prints these.

    `status` is "ok", "failed" (`error` says why) or "incompatible" (its `api` range excludes the running
    plugin API; it was not imported). `warning` notes a plugin that loaded but declares no `api` range."""

    name: str
    distribution: str
    version: str
    module: str
    ok: bool
    error: str | None = None
    components: tuple[str, ...] = ()
    status: str = "ok"
    api: str | None = None
    warning: str | None = None


class Host:
    """A plugin manager, the frozen registry it filled, and a record of every plugin load."""

    def __init__(self, manager: pluggy.PluginManager, registry: Registry, records: list[PluginRecord]):
        self.manager = manager
        self.registry = registry
        self.records = records

    # -- validation -------------------------------------------------------------------------
    def resolve(self, kind: str, spec: Any, *, key: str = "") -> ComponentRef:
        """Validate a component spec (a name, a table or a ComponentRef), references included.

        The result records every parameter with its default filled in (so a recipe records exactly
        what was built even if a later version changes a default) and carries the validated
        parameters that `build` hands to the builder: each component is validated once."""
        try:
            ref = ComponentRef.coerce(kind, spec)
        except ValueError as exc:
            raise P2PError(str(exc), key=key or None) from None
        if ref.params is not None:
            return ref
        try:
            component = self.registry.get(kind, ref.name)
        except P2PError as exc:
            raise exc.with_location(key_prefix=f"{key}.name" if key else None) from None
        params = validate_params(component, ref.options, key=key)
        updates = {}
        for field_name, value in params:
            nested = _resolve_nested(self, value, ".".join(p for p in (key, field_name) if p))
            if nested is not value:
                updates[field_name] = nested
        if updates:
            params = params.model_copy(update=updates)
        options: dict[str, Any] = {}
        for field_name, value in params:
            if value is None:  # TOML has no null: an absent key means the same
                continue
            options[field_name] = _plain(value) if field_name in updates else \
                params.model_dump(mode="json", include={field_name})[field_name]
        name = ref.name if ":" in ref.name else component.name
        resolved = ComponentRef(kind=kind, name=name, options=options)
        resolved._params = params
        return resolved

    def not_loaded(self, distribution: str | None = None) -> list[str]:
        """A line for each installed plugin (of `distribution`, or any) that was not loaded, saying why: errors
        about a component one of them may provide show these."""
        return [f"not loaded: plugin {r.name!r} of {r.distribution} {r.version} ({r.status}: {r.error})"
                for r in self.records if not r.ok and distribution in (None, r.distribution)]

    def component(self, ref: ComponentRef) -> ComponentSpec:
        return self.registry.get(ref.kind, ref.name)

    # -- building ---------------------------------------------------------------------------
    def build(self, kind: str, spec: Any, *, in_channels: int | None = None, out_channels: int | None = None,
              key: str = "", facts: Mapping[str, Any] | None = None) -> Any:
        """Build a component from a name, a table (``{"name": "unet", "ngf": 64}``) or a resolved reference."""
        ref = self.resolve(kind, spec, key=key)
        ctx = BuildContext(builder=self, in_channels=in_channels, out_channels=out_channels, key=key,
                           facts=dict(facts or {}))
        return self.component(ref).build(ref.params, ctx)

    def describe(self, kind: str, spec: Any) -> dict[str, str]:
        """Name, plugin and version of the component a spec resolves to, for checkpoint metadata."""
        component = self.registry.get(kind, ComponentRef.coerce(kind, spec).name)
        return {"kind": kind, "name": component.name, "qualified_name": component.qualified_name,
                "distribution": component.distribution, "version": component.version}

    def describe_all(self, refs: Iterable[ComponentRef]) -> list[dict[str, str]]:
        """`describe` for resolved references and every component nested in their parameters
        (a third-party norm inside a built-in generator), each once."""
        found: dict[tuple[str, str], dict[str, str]] = {}
        pending = list(refs)
        while pending:
            ref = pending.pop(0)
            entry = self.describe(ref.kind, ref)
            found.setdefault((entry["kind"], entry["qualified_name"]), entry)
            if ref.params is not None:
                for _, value in ref.params:
                    pending.extend(_refs_in(value))
        return list(found.values())

    def check_installed(self, recorded: Iterable[Any], *, file: str, kinds: Iterable[str]) -> None:
        """The components of `kinds` a checkpoint was made with must be installed: a missing one names
        the distribution and version to install; another version, or another provider, is a warning."""
        import warnings

        for entry in (e for e in recorded if e.kind in set(kinds)):
            component = next((c for c in self.registry.specs(entry.kind) if c.qualified_name == entry.qualified_name),
                             None) or next((c for c in self.registry.specs(entry.kind) if c.name == entry.name), None)
            if component is None and self.not_loaded(entry.distribution):
                raise P2PError(f"the checkpoint needs {entry.kind} {entry.name!r} from {entry.distribution} "
                               f"{entry.version}, which is installed but was not loaded", file=file,
                               details=self.not_loaded(entry.distribution), hint="see `p2p plugins`")
            if component is None:
                raise P2PError(f"the checkpoint needs {entry.kind} {entry.name!r} from {entry.distribution} "
                               f"{entry.version}, which is not installed", file=file,
                               hint=f"pip install '{entry.distribution}=={entry.version}'")
            if (component.distribution, component.version) != (entry.distribution, entry.version):
                warnings.warn(f"{file} was made with {entry.kind} {entry.name!r} of {entry.distribution} "
                              f"{entry.version}; {component.distribution} {component.version} provides it here",
                              stacklevel=2)


def _resolve_nested(host: Host, value: Any, key: str) -> Any:
    """`value` with every component reference in it resolved (the same object when it holds none)."""
    if isinstance(value, ComponentRef):
        return host.resolve(value.kind, value, key=key)
    if isinstance(value, list | tuple) and any(isinstance(v, ComponentRef) for v in value):
        return type(value)(_resolve_nested(host, v, f"{key}.{i}") for i, v in enumerate(value))
    if isinstance(value, dict) and any(isinstance(v, ComponentRef) for v in value.values()):
        return {k: _resolve_nested(host, v, f"{key}.{k}") for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    """Resolved references as recipe tables."""
    if isinstance(value, ComponentRef):
        return value.as_table()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _refs_in(value: Any) -> list[ComponentRef]:
    if isinstance(value, ComponentRef):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, ComponentRef)]
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, ComponentRef)]
    return []


def validate_params(component: ComponentSpec, options: Mapping[str, Any], *, key: str = "") -> BaseModel:
    """Validate options against a component's params model, turning pydantic errors into P2PErrors."""
    try:
        return component.params.model_validate(dict(options))
    except ValidationError as exc:
        raise params_error(exc, component.params, key=key,
                           what=f"{component.kind} {component.name!r}") from None


def params_error(exc: ValidationError, model: type[BaseModel], *, key: str, what: str) -> P2PError:
    """One P2PError listing every problem, each with its key path and a suggestion."""
    by_path: dict[str, list[str]] = {}
    hint = None
    for error in exc.errors():
        # drop union members and validators ("constrained-int", "literal['auto']") from the path
        loc = [str(p) for p in error["loc"] if not any(c in str(p) for c in "-[")]
        path = ".".join([key, *loc] if key else loc)
        if error["type"] == "extra_forbidden":
            field_names = _field_names(model, error["loc"][:-1])
            guess = did_you_mean(str(error["loc"][-1]), field_names)
            msg = f"unknown key {error['loc'][-1]!r}" + (f"; did you mean {guess!r}?" if guess else "")
            owner = f"[{'.'.join(loc[:-1])}]" if loc[:-1] else what
            hint = hint or f"{owner} takes: {', '.join(field_names) or '(no parameters)'}"
        else:
            msg = error["msg"]
            if "input" in error and error["type"] != "missing":
                msg += f" (got {error['input']!r})"
            hint = hint or _expected(model, loc)
        by_path.setdefault(path, []).append(msg)
    lines = [f"{path}: {' or '.join(msgs)}" if path else " or ".join(msgs) for path, msgs in by_path.items()]
    first_key = next(iter(by_path), "")
    message = " or ".join(by_path[first_key]) if len(lines) == 1 else f"{len(lines)} problems in {what}"
    return P2PError(message, key=first_key or None, hint=hint,
                    details=lines if len(lines) > 1 else ())


def _expected(model: type[BaseModel], loc: list[str]) -> str | None:
    """What a field takes, from its type and description: `epochs` takes int (...)."""
    from p2pcore.typenames import type_name

    current: Any = model
    field = None
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return None
        current = field.annotation
    if field is None:
        return None
    described = f": {field.description}" if field.description else ""
    return f"`{loc[-1]}` takes {type_name(field.annotation)}{described}"


def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        current = annotation
    return list(getattr(current, "model_fields", {}))


# -- discovery --------------------------------------------------------------------------------------

def _make_register(registry: Registry, kind: Kind, plugin: str, distribution: str, version: str,
                   added: list[str]) -> Any:
    def register(name: str, build: Any, *, params: type[BaseModel] | None = None, aliases: Iterable[str] = (),
                 summary: str | None = None, facts: Any = None) -> None:
        params = kind.params if params is None else params
        refusal = params_refusal(kind, name, params, plugin=plugin.split(":", 1)[-1], distribution=distribution)
        if refusal is not None:
            raise Refused(refusal)
        text = summary if summary is not None else (build.__doc__ or "").strip().split("\n")[0]
        registry.add(ComponentSpec(kind=kind.name, name=name, build=build, params=params, plugin=plugin,
                                   distribution=distribution, version=version, summary=text,
                                   aliases=tuple(aliases), facts=facts))
        added.append(f"{kind.name}:{name}")

    return register


def hook_names() -> list[str]:
    """Every hook p2p specifies: each kind's registration hook (the table and the specifications are held
    to each other by the tests) and the others (``p2p_add_commands``)."""
    return sorted(name for name in dir(hookspecs) if name.startswith("p2p_")
                  and hasattr(getattr(hookspecs, name), "p2p_spec"))


def _check_hook_names(manager: pluggy.PluginManager, plugin: Any) -> None:
    """A hook p2p has no specification for fails its plugin: a function marked ``@hookimpl`` under any
    name p2p does not know (pluggy's pending check), or an unmarked ``p2p_*`` function (a misspelt hook
    would otherwise be silently ignored)."""
    known = hook_names()
    for attr in dir(plugin):
        opts = manager.parse_hookimpl_opts(plugin, attr)
        hook = (opts or {}).get("specname") or attr  # @hookimpl(specname=...) names its hook explicitly
        if hook not in known and (opts is not None or (attr.startswith("p2p_")
                                                       and callable(getattr(plugin, attr, None)))):
            guess = did_you_mean(hook, known)
            raise ValueError(f"unknown hook {hook!r}" + (f" (function {attr!r})" if hook != attr else "")
                             + (f"; did you mean {guess!r}?" if guess else "") + f" (p2p's hooks: {', '.join(known)})")
    try:
        manager.check_pending()  # whatever else pluggy finds without a specification
    except pluggy.PluginValidationError as exc:
        raise ValueError(f"unknown hook: {exc}") from None


def _candidates(entry_points: bool, extra_plugins: Iterable[tuple[str, Any]]) -> list[_Candidate]:
    """The plugins to load: entry points sorted by distribution, then `extra_plugins` in order."""
    found = []
    if entry_points:
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP),
                         key=lambda e: (e.dist.name if e.dist else "", e.name)):
            found.append(_Candidate(ep.name, ep.dist.name if ep.dist else "unknown",
                                    ep.dist.version if ep.dist else "0", ep.value, ep.load, ep.module))
    for name, obj in extra_plugins:
        found.append(_Candidate(name, getattr(obj, "__p2p_distribution__", name), getattr(obj, "__version__", "0"),
                                getattr(obj, "__name__", repr(obj)), lambda obj=obj: obj))
    return found


@dataclass(frozen=True)
class _Candidate:
    name: str
    distribution: str
    version: str
    module: str
    load: Any
    source: str | None = None  # the module whose source may declare P2P_API (entry points only)


def load_host(*, strict: bool = False, extra_plugins: Iterable[tuple[str, Any]] = (),
              entry_points: bool = True) -> Host:
    """Discover plugins through the ``p2p.plugins`` entry points and build a frozen registry.

    A plugin whose ``P2P_API`` range excludes the running API is not imported; one that fails to import
    or register is recorded and skipped; either is fatal with `strict`. `extra_plugins` are
    (name, module-or-object) pairs registered as if they came from an entry point.
    """
    manager = pluggy.PluginManager("p2p")
    manager.add_hookspecs(hookspecs)
    registry = Registry()
    records: list[PluginRecord] = []

    for c in _candidates(entry_points, extra_plugins):
        added: list[str] = []
        plugin = declared = None
        try:
            declared = declared_in_source(c.source) if c.source else None
            if declared is not None:
                require_supported(declared)  # before importing: it may import names this API lacks
            plugin = c.load()
            if manager.is_registered(plugin):  # one module listed twice (a stale install's metadata): once is enough
                continue
            declared = getattr(plugin, DECLARATION, declared)
            if declared is not None:
                require_supported(declared)
            manager.register(plugin, name=f"{c.distribution}:{c.name}")
            _check_hook_names(manager, plugin)
            for kind in KINDS.values():
                for impl in getattr(manager.hook, kind.hook).get_hookimpls():
                    if impl.plugin is plugin:
                        impl.function(register=_make_register(registry, kind, f"{c.distribution}:{c.name}",
                                                              c.distribution, c.version, added))
        except Exception as exc:  # a broken plugin must not take the others down
            incompatible = isinstance(exc, Incompatible)
            why = str(exc) if isinstance(exc, Incompatible | Refused) else f"{type(exc).__name__}: {exc}"
            if strict:
                raise P2PError(f"plugin {c.name!r} from {c.distribution} {c.version} "
                               + ("is incompatible: " if incompatible else "failed to load: ") + why,
                               hint=f"install a version of {c.distribution} that supports plugin API "
                                    f"{API_VERSION}" if incompatible else "fix or uninstall that plugin") from exc
            if plugin is not None and manager.is_registered(plugin):
                manager.unregister(plugin)
            registry.discard_plugin(f"{c.distribution}:{c.name}")
            records.append(PluginRecord(c.name, c.distribution, c.version, c.module, ok=False, error=why,
                                        status="incompatible" if incompatible else "failed",
                                        api=declared if isinstance(declared, str) else None))
            continue
        records.append(PluginRecord(c.name, c.distribution, c.version, c.module, ok=True, components=tuple(added),
                                    api=declared, warning=None if declared is not None else
                                    f"declares no {DECLARATION} range; assumed to support plugin API {API_VERSION}"))
    host = Host(manager, registry, records)
    registry.unloaded = tuple(host.not_loaded())
    registry.freeze()
    return host
