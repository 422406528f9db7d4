"""`logist init`, `logist config show`, `logist role list|inspect`."""

from __future__ import annotations

import argparse
from typing import Any

from logist_server.cli.common import OneLineParser, engine_for, out_json
from logist_server.domain.errors import UsageError


def cmd_init(args: argparse.Namespace) -> int:
    """Write a commented starter `logist.yml` at the repository root."""
    from logist_server.config.loader import REPO_CONFIG
    from logist_server.config.starter import STARTER
    from logist_server.support.fsutil import atomic_write

    engine = engine_for(args)
    path = engine.repo / REPO_CONFIG
    if path.exists() and not args.force:
        raise UsageError(f"{path} exists already (--force replaces it)")
    try:
        atomic_write(path, STARTER.encode())
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    if args.json:
        out_json({"path": str(path)})
    else:
        print(f"wrote {path}")
        print("  see the effective settings: logist config show")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """Every effective setting with the layer it came from."""
    from logist_server.config.loader import flatten

    effective = engine_for(args).config
    rows = [
        {"key": key, "value": value, "source": effective.source_of(key)}
        for key, value in flatten(effective.settings)
    ]
    if args.json:
        out_json({"files": effective.files, "settings": rows})
        return 0
    width = max(len(row["key"]) for row in rows)
    for row in rows:
        print(f"{row['key']:<{width}}  {_shown(row['value']):<24}  {row['source']}")
    return 0


def _shown(value: Any) -> str:
    """A value on one line, spelled as in YAML (true, [], {}); long text is cut, control
    characters escaped (a repository's `logist.yml` cannot drive the terminal)."""
    from logist_server.store.listing import printable

    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return ("{}" if isinstance(value, dict) else "[]") if not value else printable(str(value))
    text = str(value)
    first = text.splitlines()[0] if text else text
    return printable(first[:60]) + ("..." if first != text or len(first) > 60 else "")


def cmd_role_list(args: argparse.Namespace) -> int:
    from logist_server.store.listing import printable

    roles = engine_for(args).roles()
    if args.json:
        out_json([_role_row(r) for r in roles.values()])
        return 0
    for role in roles.values():
        print(f"{printable(role.name):<14} {role.kind:<11} {printable(role.description)}")
    return 0


def cmd_role_inspect(args: argparse.Namespace) -> int:
    from logist_server.domain.roles import find_role
    from logist_server.store.listing import printable

    role = find_role(engine_for(args).roles(), args.name)
    if args.json:
        out_json(_role_row(role))
        return 0
    print(f"name:        {printable(role.name)}")
    print(f"kind:        {role.kind}")
    print(f"description: {printable(role.description)}")
    print(f"defined in:  {role.source}")
    print(f"agent:       {printable(role.agent or '(the job agent)')}")
    print(f"model:       {printable(role.model or '(the agent default)')}")
    if role.agent_options:
        print(f"options:     {printable(str(role.agent_options))}")
    print("instructions:")
    for line in role.instructions.split("\n"):
        print(f"  {printable(line)}")
    return 0


def _role_row(role: Any) -> dict[str, Any]:
    import msgspec

    row: dict[str, Any] = msgspec.to_builtins(role)
    return row


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    init = sub.add_parser("init", parents=[common], help="write a commented starter logist.yml")
    init.add_argument("--force", action="store_true", help="replace an existing logist.yml")
    init.set_defaults(handler=cmd_init)

    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True,
                                       parser_class=OneLineParser)  # fmt: skip
    show = config_sub.add_parser("show", parents=[common],
                                 help="effective settings and where each comes from")  # fmt: skip
    show.set_defaults(handler=cmd_config_show)

    role = sub.add_parser("role", help="roles (worker, supervisor, your own)")
    role_sub = role.add_subparsers(dest="role_command", required=True,
                                   parser_class=OneLineParser)  # fmt: skip
    role_sub.add_parser("list", parents=[common], help="known roles").set_defaults(
        handler=cmd_role_list
    )
    inspect = role_sub.add_parser("inspect", parents=[common], help="one role in full")
    inspect.add_argument("name")
    inspect.set_defaults(handler=cmd_role_inspect)
