"""`logist doctor`: one line per check of what running jobs here needs."""

from __future__ import annotations

import argparse
from typing import Any

from logist_server.cli.common import out_json, start_dir


def cmd_doctor(args: argparse.Namespace) -> int:
    from logist_server.ops.doctor import all_ok, default_checks, run_checks

    checks = run_checks(default_checks(start_dir(args)))
    if args.json:
        out_json(checks)
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            tag = "FAIL" if not check.ok else ("warn" if check.fix else "ok")
            text = f"{check.detail}: {check.fix}" if check.fix else check.detail
            print(f"{tag:<5} {check.name:<{width}}  {text}")
    return 0 if all_ok(checks) else 1


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    doctor = sub.add_parser(
        "doctor", parents=[common], help="check git, the repository, agents and runtimes"
    )
    doctor.set_defaults(handler=cmd_doctor)
