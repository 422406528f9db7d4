#!/usr/bin/env bash
# Set up, then run the whole test suite: lint, types, tests. Fails if anything fails
# (pytest's "no tests ran", exit 5, included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check logist_server tests bench
.venv/bin/ruff format --check logist_server tests bench
.venv/bin/mypy
.venv/bin/pytest -q "$@"
