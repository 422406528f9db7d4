#!/usr/bin/env bash
# Set up, then run the whole test suite: lint, types, import layers, tests. Fails if anything fails
# (pytest's "no tests ran", exit 5, included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
bash vscode-extension/scripts/check.sh  # the VS Code extension: npm ci, tsc, eslint, unit tests, bundle, .vsix
# Several workers: most tests wait on real processes (agents, git, editors), not on the CPU.
.venv/bin/pytest -q -n "${LOGIST_TEST_WORKERS:-3}" "$@"
