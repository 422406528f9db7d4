"""The data of the runtime contract: validated runtime options and the identities that
runtimes store in a step's handle (see `providers/runtimes/base.py` for the protocol).

Options come as `--runtime-opt KEY=VALUE` strings or a `runtime_options:` mapping in
`logist.yml`; `parse_runtime_options` turns them into one typed `RuntimeOptions` or raises
`RuntimeOptionsError` with one line naming the option. Which runtime can honour which
option is the runtime's to say (`check_options` in the base).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import msgspec

from logist_server.domain.errors import UsageError
from logist_server.domain.model import RuntimeHandle

Network = Literal["none", "host", "bridge"]
#: How the workspace reaches the agent: used where it is (a process on this machine), or
#: copied into the runtime before the agent starts and the result copied back after.
HandOver = Literal["in_place", "copy"]
T = TypeVar("T", bound=msgspec.Struct)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?b?)", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# An OCI image reference: [registry[:port]/]name[/name...][:tag][@algorithm:hex].
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:{_DOMAIN}(?::[0-9]+)?/)?{_PART}(?:/{_PART})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
KEYS = ("image", "mounts", "cpu", "memory", "network", "env")


class RuntimeOptionsError(UsageError):
    """A runtime option that is malformed, unknown, or that the runtime cannot honour."""


class Mount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A directory of this machine made visible to the agent at `target`."""

    source: str
    target: str
    read_only: bool = True


class Resources(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Limits on what the agent may use: CPUs (may be fractional), memory in bytes."""

    cpu: float | None = None
    memory: int | None = None


class RuntimeOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where and how an agent runs, beyond the runtime's name. Every field is optional;
    a runtime refuses one it cannot honour (`check_options`), it never ignores it."""

    image: str | None = None
    mounts: tuple[Mount, ...] = ()
    resources: Resources = msgspec.field(default_factory=Resources)
    network: Network | None = None
    #: Variables of the user's environment passed to the agent on top of its provider's.
    env_allow: tuple[str, ...] = ()

    def given(self) -> list[str]:
        """The names (as the user spells them) of the options set."""
        names = []
        if self.image is not None:
            names.append("image")
        if self.mounts:
            names.append("mounts")
        if self.resources.cpu is not None:
            names.append("cpu")
        if self.resources.memory is not None:
            names.append("memory")
        if self.network is not None:
            names.append("network")
        if self.env_allow:
            names.append("env")
        return names


def parse_runtime_options(raw: Mapping[str, Any]) -> RuntimeOptions:
    """Typed options from `KEY=VALUE` strings: `image=REF`, `mounts=SRC:DST[:ro|rw],...`,
    `cpu=1.5`, `memory=512m`, `network=none|host|bridge`, `env=NAME,NAME`."""
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise RuntimeOptionsError(
            f"unknown runtime option '{unknown[0]}' (known: {', '.join(KEYS)})"
        )
    values = {key: str(value).strip() for key, value in raw.items()}
    image = values.get("image")
    if image is not None and (len(image) > 255 or not _IMAGE.fullmatch(image)):
        raise RuntimeOptionsError(
            f"runtime option 'image': {image[:80]!r} is not an image reference "
            "([registry/]name[:tag][@digest], lower case, never starting with '-')"
        )
    network = values.get("network")
    if network is not None and network not in ("none", "host", "bridge"):
        raise RuntimeOptionsError(
            f"runtime option 'network': {network!r} is not one of none, host, bridge"
        )
    return RuntimeOptions(
        image=image,
        mounts=tuple(_mount(m) for m in _items(values.get("mounts", ""))),
        resources=Resources(cpu=_cpu(values.get("cpu")), memory=_memory(values.get("memory"))),
        network=network,  # type: ignore[arg-type]  # checked above
        env_allow=tuple(_env_name(n) for n in _items(values.get("env", ""))),
    )


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _mount(text: str) -> Mount:
    parts = text.split(":")
    mode = "ro"
    if len(parts) == 3:
        mode = parts.pop()
    if len(parts) != 2 or mode not in ("ro", "rw") or not all(parts):
        raise RuntimeOptionsError(f"runtime option 'mounts': {text!r} is not SOURCE:TARGET[:ro|rw]")
    source, target = parts
    if not source.startswith("/") or not target.startswith("/"):
        raise RuntimeOptionsError(
            f"runtime option 'mounts': {text!r} needs absolute paths on both sides"
        )
    if any(".." in path.split("/") for path in parts):
        raise RuntimeOptionsError(f"runtime option 'mounts': {text!r} has a '..' part")
    source, target = posixpath.normpath(source), posixpath.normpath(target)
    for seen in (source, os.path.realpath(source)):  # a symlink is judged by where it leads
        why = _sensitive(seen)
        if why is not None:
            raise RuntimeOptionsError(
                f"runtime option 'mounts': {text!r} would show the agent {why}; refused"
            )
    return Mount(source=source, target=target, read_only=mode == "ro")


#: Sources never mounted, nor anything inside them or any directory holding them.
_SENSITIVE_SYSTEM = (
    "/etc", "/root", "/proc", "/sys", "/dev", "/boot", "/var/run/docker.sock",
    "/run/docker.sock", "/run/podman", "/var/run/podman", "/run/containerd",
)  # fmt: skip
_SENSITIVE_HOME = (
    ".ssh", ".gnupg", ".aws", ".config", ".kube", ".docker", ".netrc", ".git-credentials",
)  # fmt: skip


def _sensitive(source: str) -> str | None:
    """Why mounting `source` (normalised, absolute) is refused, or None."""
    home = posixpath.normpath(os.path.expanduser("~"))
    if source == "/":
        return "the whole machine (/)"
    if source == home or home.startswith(source + "/"):
        return f"the user's home directory ({home})"
    guarded = [*_SENSITIVE_SYSTEM, *(posixpath.join(home, name) for name in _SENSITIVE_HOME)]
    for path in guarded:
        if source == path or source.startswith(path + "/") or path.startswith(source + "/"):
            return f"{path} (credentials or the machine's control)"
    return None


def _cpu(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise RuntimeOptionsError(f"runtime option 'cpu': {text!r} is not a positive number")
    return value


def _memory(text: str | None) -> int | None:
    if text is None:
        return None
    match = _SIZE.fullmatch(text)
    if match is None or match.group(3).lower() not in ("", "b", "ib"):
        raise RuntimeOptionsError(f"runtime option 'memory': {text!r} is not a size (512m, 2g)")
    value = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value <= 0:
        raise RuntimeOptionsError(f"runtime option 'memory': {text!r} is not a positive size")
    return value


def _env_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise RuntimeOptionsError(f"runtime option 'env': {name!r} is not a variable name")
    return name


# -- identities: what a runtime stores in a step's handle to find its agent again ---------------
class HostIdentity(msgspec.Struct, frozen=True):
    """A process on this machine: its pid, its start time (tells a reused pid apart) and
    the cgroup it runs in (a name under Logist's cgroup root, never read from a file the
    agent can write)."""

    pid: int | None = None
    started_at: float | None = None
    cgroup: str | None = None


class ContainerIdentity(msgspec.Struct, frozen=True):
    """A container on this machine (Docker, Podman): its id and the labels Logist set."""

    id: str
    labels: dict[str, str] = msgspec.field(default_factory=dict)


class PodIdentity(msgspec.Struct, frozen=True):
    """A pod on a cluster: where it is and its name."""

    namespace: str
    name: str
    context: str | None = None


LocateState = Literal["found", "never_started", "unknown"]


class Located(msgspec.Struct, frozen=True):
    """What a runtime's `locate` found of a step's agent whose handle was never recorded:
    `found` (with its handle: running, or ended with its status kept), `never_started`
    (proved: nothing carrying the step's launch nonce ran), or `unknown` (it cannot tell:
    the engine then never starts a second agent for the step)."""

    state: LocateState
    handle: RuntimeHandle | None = None
    detail: str = ""


def located(handle: RuntimeHandle) -> Located:
    return Located("found", handle)


NEVER_STARTED = Located("never_started")


def unknown(detail: str) -> Located:
    return Located("unknown", None, detail)


def identity_payload(identity: msgspec.Struct) -> dict[str, Any]:
    """The identity as stored in a handle (plain JSON-ready data)."""
    data: dict[str, Any] = msgspec.to_builtins(identity)
    return data


def identity_as(payload: Mapping[str, Any], kind: type[T]) -> T:
    """The stored identity as the runtime's own type; a one-line error when it is not one."""
    try:
        return msgspec.convert(dict(payload), kind)
    except msgspec.ValidationError as exc:
        raise UsageError(f"not a {kind.__name__} handle: {exc}") from None
