"""Reading roles: inline ones from the configuration and files `.logist/roles/NAME.yml`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from pydantic import ValidationError

from logist_server.config.loader import (
    describe_errors,
    read_file_layer,
    refuse_repo_role_options,
)
from logist_server.config.repo_files import list_repo_dir
from logist_server.config.schema import RoleLayer, validate_role
from logist_server.domain.errors import ConfigError
from logist_server.domain.roles import BUILTIN_ROLES, Role, build_role
from logist_server.domain.settings import RoleSettings

ROLES_DIR = Path(".logist") / "roles"


def load_roles(repo: Path, inline: dict[str, RoleSettings] | None = None) -> dict[str, Role]:
    """Built-in roles, then those of the configuration, then `.logist/roles/*.yml`."""
    roles = dict(BUILTIN_ROLES)
    for name, settings in (inline or {}).items():
        roles[name] = build_role(
            name, msgspec.to_builtins(settings), roles.get(name), "configuration"
        )
    directory = repo / ROLES_DIR
    for entry in list_repo_dir(repo, ROLES_DIR.as_posix()):
        path = directory / entry
        if path.suffix in (".yml", ".yaml"):
            data = _read_role_file(repo, path)
            name = str(data.get("name") or path.stem)
            roles[name] = build_role(name, data, roles.get(name), str(path))
    return roles


def _read_role_file(repo: Path, path: Path) -> dict[str, Any]:
    data = read_file_layer(path, repo) or {}
    try:
        role = validate_role(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_errors(exc.errors(), RoleLayer)}") from None
    refuse_repo_role_options(role, str(path))
    return role
