#!/usr/bin/env bash
# Install what the VS Code end-to-end test needs: code-server (VS Code 1.100.3, from the npm
# registry) and Debian's chromium. Cached under ~/.cache/logist-ci/ keyed by version; a second
# run with the cache in place does nothing. Prints the code-server executable's path last.
set -euo pipefail
CS_VERSION="${LOGIST_CODE_SERVER_VERSION:-4.100.3}"
CACHE="${LOGIST_CI_CACHE:-$HOME/.cache/logist-ci}"
PREFIX="$CACHE/code-server-$CS_VERSION"
BIN="$PREFIX/node_modules/.bin/code-server"
export DEBIAN_FRONTEND=noninteractive

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v rg >/dev/null || need+=(ripgrep)
if [ ! -x "$BIN" ]; then
  command -v g++ >/dev/null || need+=(build-essential)
  command -v pkg-config >/dev/null || need+=(pkg-config)
  [ -e /usr/include/krb5.h ] || [ -e /usr/include/gssapi/gssapi.h ] || need+=(libkrb5-dev)
fi
command -v node >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-vscode: apt-get install ${need[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x "$BIN" ]; then
  # @vscode/ripgrep's postinstall downloads rg from GitHub: pre-seed its cache with Debian's rg.
  tmp="${TMPDIR:-/tmp}"
  rgcache="$tmp/vscode-ripgrep-cache-1.15.11"
  mkdir -p "$rgcache"
  for name in ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz; do
    if [ ! -s "$rgcache/$name" ]; then
      stage="$(mktemp -d)"
      cp "$(command -v rg)" "$stage/rg"
      tar -C "$stage" -czf "$rgcache/$name.tmp" rg
      mv "$rgcache/$name.tmp" "$rgcache/$name"
      rm -rf "$stage"
    fi
  done
  work="$PREFIX.partial"
  rm -rf "$work"
  mkdir -p "$work"
  echo '{"name":"logist-code-server","private":true}' >"$work/package.json"
  echo "install-vscode: npm install code-server@$CS_VERSION (about 2 minutes)" >&2
  npm_config_unsafe_perm=true npm_config_yes=true npm_config_cache="$CACHE/npm" \
    npm install --prefix "$work" --no-audit --no-fund --loglevel=error "code-server@$CS_VERSION" >&2
  rm -rf "$PREFIX"
  mv "$work" "$PREFIX"
fi
"$BIN" --version >/dev/null
echo "$BIN"
