"""The shape of a user-written configuration layer, validated with pydantic.

Every field is optional: a layer says only what it changes. Defaults live in
`logist_server.domain.settings`; unknown keys are errors, so a typo never goes unnoticed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, field_validator

from logist_server.domain.knobs import Knob
from logist_server.domain.settings import knobs

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _knob_field(k: Knob) -> tuple[Any, Any]:
    """The pydantic field of a knob: its type, bounds and no default (a layer sets it or not)."""
    if k.type is str:
        return (Name | None, None)
    bounds = {"gt": k.gt, "ge": k.ge, "le": k.le}
    constraints: dict[str, Any] = {n: v for n, v in bounds.items() if v is not None}
    if k.type is float:
        constraints["allow_inf_nan"] = False
    typed = Annotated[k.type, Field(**constraints)] if constraints else k.type
    return (typed | None, None)


def _section_layer(section: str) -> type[_Layer]:
    """The layer of a configuration section of knobs (limits, retries, review)."""
    fields = {k.key: _knob_field(k) for k in knobs() if k.section == section}
    name = f"{section.capitalize()}Layer"
    model: type[_Layer] = create_model(name, __base__=_Layer, **fields)  # type: ignore[call-overload]
    return model


if TYPE_CHECKING:
    LimitsLayer = _Layer
    RetriesLayer = _Layer
    ReviewLayer = _Layer
else:  # built from the knobs: one declaration of each limit and policy field (knobs.py)
    LimitsLayer = _section_layer("limits")
    RetriesLayer = _section_layer("retries")
    ReviewLayer = _section_layer("review")


class ObserverLayer(_Layer):
    patterns: list[dict[str, Any]] | None = None
    disable: list[Name] | None = None

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value:
            from logist_server.domain.observer import pattern_from_dict

            for entry in value:
                pattern_from_dict(entry)  # ValueError names the bad pattern
        return value


Decision = Literal["allow", "ask", "deny"]


class PermissionsLayer(_Layer):
    """allow / ask / deny per ACP tool kind (domain/permissions.py)."""

    read: Decision | None = None
    search: Decision | None = None
    think: Decision | None = None
    edit: Decision | None = None
    delete: Decision | None = None
    move: Decision | None = None
    execute: Decision | None = None
    fetch: Decision | None = None
    other: Decision | None = None


Price = Annotated[float, Field(ge=0, le=10_000, allow_inf_nan=False)]


class PriceLayer(_Layer):
    """USD per million tokens of one model (domain/pricing.py); `input` and `output` are
    required, cached input and cache writes default to the input price."""

    input: Price
    output: Price
    cached_input: Price | None = None
    cache_write: Price | None = None


class RoleLayer(_Layer):
    name: Name | None = None
    kind: Literal["worker", "supervisor"] | None = None
    description: str | None = None
    instructions: str | None = None
    agent: Name | None = None
    model: Name | None = None
    agent_options: dict[str, str] | None = None


class ConfigLayer(_Layer):
    """One file (or the environment, or the flags): only what it sets."""

    agent: Name | None = None
    model: Name | None = None
    agent_options: dict[str, str] | None = None
    runtime: Name | None = None
    runtime_options: dict[str, str] | None = None
    role: Name | None = None
    limits: LimitsLayer | None = None
    workspace_root: Name | None = None
    concurrency: Annotated[int, Field(gt=0, le=64)] | None = None
    retries: RetriesLayer | None = None
    review: ReviewLayer | None = None
    observer: ObserverLayer | None = None
    roles: dict[Name, RoleLayer] | None = None
    fallback_agent_options: dict[str, str] | None = None
    permissions: PermissionsLayer | None = None
    pricing: dict[Name, PriceLayer] | None = None

    @field_validator("agent_options", "runtime_options", "fallback_agent_options", mode="before")
    @classmethod
    def _options_as_text(cls, value: Any) -> Any:
        """YAML reads `steps: 3` as a number; options are text, as on the command line."""
        if isinstance(value, dict):
            return {k: _scalar_text(v) for k, v in value.items()}
        return value


def _scalar_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def validate_layer(data: dict[str, Any]) -> dict[str, Any]:
    """The layer as plain data with only the keys it set; pydantic ValidationError if bad."""
    layer = ConfigLayer.model_validate(data)
    dumped: dict[str, Any] = layer.model_dump(exclude_unset=True)
    return dumped


def known_keys(loc: tuple[Any, ...], root: Any = None) -> list[str]:
    """The keys allowed where `loc` points in `root` (default: a configuration file)."""
    model: Any = root or ConfigLayer
    for part in loc[:-1]:
        if isinstance(model, _Values):  # inside `roles` or `pricing`: the part is a name
            model = model.layer
            continue
        field = getattr(model, "model_fields", {}).get(str(part))
        model = None if field is None else _model_in(field.annotation)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


class _Values:
    """A mapping of names to layers (`roles`, `pricing`): the layer of each value."""

    def __init__(self, layer: type[_Layer]) -> None:
        self.layer = layer


def _model_in(annotation: Any) -> Any:
    """The layer model (or `_Values` for a mapping of them) inside an optional annotation."""
    for arg in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(arg, type) and issubclass(arg, _Layer):
            return arg
        if getattr(arg, "__origin__", None) is dict:
            value_type = arg.__args__[1]
            is_layer = isinstance(value_type, type) and issubclass(value_type, _Layer)
            return _Values(value_type) if is_layer else None
    return None


def validate_role(data: dict[str, Any]) -> dict[str, Any]:
    """A role file's content as plain data; pydantic ValidationError if bad."""
    dumped: dict[str, Any] = RoleLayer.model_validate(data).model_dump(exclude_unset=True)
    return dumped
