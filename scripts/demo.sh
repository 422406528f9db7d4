#!/usr/bin/env bash
# Set up, then run one mock-agent job end to end in a fresh demo repository:
# a dirty working tree, a job on a.txt, its diff, and accepting it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
LOGIST="$PWD/.venv/bin/logist"
PY="$PWD/.venv/bin/python"
demo=$(mktemp -d "${TMPDIR:-/tmp}/logist-demo.XXXXXX")
export LOGIST_WORKSPACE_ROOT="$demo/worktrees"
cd "$demo" && mkdir repo && cd repo
git init -q
git config user.email demo@example.com && git config user.name "Logist demo"
printf 'first line\nsecond line\n' > a.txt
git add a.txt && git commit -qm "initial"
printf 'an uncommitted change\n' >> a.txt
echo "== demo repository: $demo/repo (a.txt has an uncommitted change)"
echo "== logist run --agent mock --file a.txt --prompt 'Add a greeting'"
"$LOGIST" run --agent mock --file a.txt --prompt "Add a greeting"
job=$("$LOGIST" job list --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
echo "== logist job diff $job"
"$LOGIST" job diff "$job"
echo "== logist job accept $job"
"$LOGIST" job accept "$job"
echo "== a.txt now (your uncommitted change is kept):"
cat a.txt
echo "== git status (no .logist):"
git status --short
