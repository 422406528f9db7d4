"""Limit and policy fields declared once, with everything that derives from them.

A knob is a field of `Limits` (model.py) or of a settings section (`RetrySettings`,
`ReviewSettings` in settings.py) typed `Annotated[T, knob(...)]` (`... | None` when it may
be unset): its constraints (`gt`, `ge`, `le`) and where it shows (the job's copy, the CLI
flag, the createJob param) sit in that one annotation. The configuration schema, the wire
params, the CLI flags, the per-job copy and `validate_limits` are built from
`settings.knobs()`; tests/test_knobs.py checks that the docs list each one. Adding a limit
is one field plus its enforcement.
"""

from __future__ import annotations

import functools
import re
import typing
from typing import Annotated, Any

import msgspec

_CAMEL = re.compile(r"_([a-z0-9])")


def knob(
    *,
    help: str,
    flag: str | None = None,
    metavar: str | None = None,
    wire: str | None = None,
    job: str | None = None,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> msgspec.Meta:
    """The annotation of a knob field.

    `flag`: the CLI flag (`--max-cost`), None when it has none; `wire`: the name of the
    `logist/createJob` param (limits are always `limits.<camelCase key>`), None when not on
    the wire; `job`: the `JobPolicy` field that keeps it on the job (policy knobs only)."""
    extra = {"help": help, "flag": flag, "metavar": metavar, "wire": wire, "job": job}
    bounds: dict[str, Any] = {
        k: v for k, v in (("gt", gt), ("ge", ge), ("le", le)) if v is not None
    }
    meta: msgspec.Meta = msgspec.Meta(extra={"knob": extra}, **bounds)
    return meta


class Knob(msgspec.Struct, frozen=True):
    """One limit or policy field as everything else sees it."""

    section: str  # the configuration section: limits, retries, review
    key: str  # the key in that section (and the field of the settings struct)
    type: type  # int, float, bool or str (optional: None means unset)
    default: Any
    help: str
    flag: str | None
    metavar: str | None
    wire: str | None  # createJob param: `limits.maxCostUsd`, `supervisor`, ...
    job: str  # the field of the job's copy (Limits or JobPolicy)
    gt: float | None = None
    ge: float | None = None
    le: float | None = None

    def checked_type(self) -> Any:
        """The type with its bounds, for msgspec: `Annotated[int, Meta(gt=0, le=10)]`."""
        bounds = {"gt": self.gt, "ge": self.ge, "le": self.le}
        given: dict[str, Any] = {k: v for k, v in bounds.items() if v is not None}
        return Annotated[self.type, msgspec.Meta(**given)] if given else self.type

    @property
    def path(self) -> str:
        """`limits.max_cost_usd`: the dotted configuration key."""
        return f"{self.section}.{self.key}"

    @property
    def dest(self) -> str:
        """The argparse destination of the flag."""
        return f"{self.section}_{self.key}"


@functools.lru_cache(maxsize=1024)
def camel(name: str) -> str:
    """`max_cost_usd` -> `maxCostUsd` (msgspec's `rename="camel"`); cached: every event on
    the `logist/jobEvent` stream has its keys renamed, and they are a small set."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def section_knobs(section: str, struct: type[msgspec.Struct], limits: bool) -> list[Knob]:
    """The knobs declared in `struct`, a configuration section (`limits` when `limits`)."""
    hints = typing.get_type_hints(struct, include_extras=True)
    defaults = {f.name: f.default for f in msgspec.structs.fields(struct)}
    found: list[Knob] = []
    for name, hint in hints.items():
        annotated = next(
            (a for a in (hint, *typing.get_args(hint)) if any(map(_is_knob, _metadata(a)))), None
        )
        if annotated is None:
            raise TypeError(f"{struct.__name__}.{name}: every field of a section is a knob")
        meta = next(m for m in _metadata(annotated) if _is_knob(m))
        extra = meta.extra["knob"]
        if not limits and not extra["job"]:
            raise TypeError(f"{struct.__name__}.{name}: a policy knob names its JobPolicy field")
        base = _plain_type(annotated.__origin__)
        found.append(
            Knob(
                section=section,
                key=name,
                type=base,
                default=defaults[name],
                help=extra["help"],
                flag=extra["flag"],
                metavar=extra["metavar"],
                wire=f"limits.{camel(name)}" if limits else extra["wire"],
                job=name if limits else extra["job"],
                gt=meta.gt,
                ge=meta.ge,
                le=meta.le,
            )
        )
    return found


def _metadata(annotation: Any) -> tuple[Any, ...]:
    return tuple(getattr(annotation, "__metadata__", ()))


def _is_knob(meta: Any) -> bool:
    return isinstance(meta, msgspec.Meta) and "knob" in (meta.extra or {})


def _plain_type(annotation: Any) -> type:
    """int, float, bool or str."""
    found = annotation
    if found not in (int, float, bool, str):
        raise TypeError(f"a knob is a number, a boolean or text, not {annotation!r}")
    return typing.cast(type, found)
