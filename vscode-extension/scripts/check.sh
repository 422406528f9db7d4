#!/usr/bin/env bash
# The extension's checks: npm ci (from the npm registry, cached under ~/.cache/logist-ci/npm),
# strict types, lint, unit tests, the esbuild bundle and the .vsix (@vscode/vsce).
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_cache="${LOGIST_CI_CACHE:-$HOME/.cache/logist-ci}/npm"
stamp=node_modules/.logist-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error --prefer-offline
  cp package-lock.json "$stamp"
fi
npx tsc --noEmit -p .
npx eslint src test
npm run --silent test
npm run --silent build
npx vsce package --no-dependencies --allow-missing-repository --skip-license -o logist.vsix >/dev/null
echo "vscode-extension: checks passed, logist.vsix built"
