#!/usr/bin/env bash
# Install the pinned agent CLIs the real-agent tests run, from the npm registry and PyPI only.
#
#   scripts/ci/install-agents.sh [name...]     (no name: all of them)
#
# Names: claude codex gemini aider cline opencode claude-agent-acp codex-acp (a package name
# such as @openai/codex or aider-chat works too). Layout, under
# ${LOGIST_AGENTS_DIR:-$HOME/.cache/logist-ci/agents}:
#   npm/<package>@<version>/        one npm prefix per package
#   aider-chat@<version>/venv/      aider's own Python 3.11 venv
#   bin/<cli>                       a symlink per CLI (put this directory on PATH)
#   locks/<name>.lock               flock per package: concurrent runs for any names are safe
# A package whose install finished has a marker file `.logist-installed` in its prefix; a
# second run skips it at once (warm: well under a second). Prints the bin directory last.
# codex-acp needs `bwrap` (Debian bubblewrap): installed with apt-get when missing and root.
set -euo pipefail

AGENTS_DIR="${LOGIST_AGENTS_DIR:-$HOME/.cache/logist-ci/agents}"
BIN_DIR="$AGENTS_DIR/bin"
LOCK_DIR="$AGENTS_DIR/locks"
MARKER=".logist-installed"
AIDER_VERSION="0.86.2"
ALL=(claude codex gemini aider cline opencode claude-agent-acp codex-acp)

# name -> "package version bin"
spec() {
  case "$1" in
    claude | @anthropic-ai/claude-code) echo "@anthropic-ai/claude-code 2.1.332 claude" ;;
    codex | @openai/codex) echo "@openai/codex 0.171.0 codex" ;;
    gemini | gemini-cli | @google/gemini-cli) echo "@google/gemini-cli 0.61.0 gemini" ;;
    cline) echo "cline 3.0.65 cline" ;;
    opencode | opencode-ai) echo "opencode-ai 1.18.33 opencode" ;;
    claude-agent-acp | @zed-industries/claude-agent-acp)
      echo "@zed-industries/claude-agent-acp 0.23.1 claude-agent-acp" ;;
    codex-acp | @zed-industries/codex-acp) echo "@zed-industries/codex-acp 0.16.0 codex-acp" ;;
    aider | aider-chat) echo "aider-chat $AIDER_VERSION aider" ;;
    *) return 1 ;;
  esac
}

log() { echo "install-agents: $*" >&2; }

# Atomically point bin/<name> at <target>.
link_bin() {
  local name="$1" target="$2"
  [ -x "$target" ] || { log "missing executable $target"; return 1; }
  ln -sfn "$target" "$BIN_DIR/.$name.$$"
  mv -fT "$BIN_DIR/.$name.$$" "$BIN_DIR/$name"
}

write_marker() {
  local prefix="$1" what="$2"
  printf '%s\n' "$what" >"$prefix/$MARKER.$$"
  mv -f "$prefix/$MARKER.$$" "$prefix/$MARKER"
}

ensure_bwrap() {
  command -v bwrap >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "apt-get install bubblewrap (codex-acp's sandbox)"
    (
      flock 9
      command -v bwrap >/dev/null && exit 0
      export DEBIAN_FRONTEND=noninteractive
      apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends bubblewrap \
        >/dev/null 2>&1 || {
        apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends bubblewrap >/dev/null
      }
    ) 9>"$LOCK_DIR/apt.lock"
  else
    log "warning: codex-acp needs bwrap (Debian package bubblewrap) on PATH"
  fi
}

install_npm() {
  local pkg="$1" ver="$2" bin="$3"
  local prefix="$AGENTS_DIR/npm/$pkg@$ver"
  local exe="$prefix/node_modules/.bin/$bin"
  if [ ! -f "$prefix/$MARKER" ]; then
    mkdir -p "$prefix"
    local started=$SECONDS
    log "npm install $pkg@$ver"
    npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error "$pkg@$ver" >&2
    [ -x "$exe" ] || { log "$pkg@$ver installed no $bin"; return 1; }
    write_marker "$prefix" "$pkg@$ver"
    log "$pkg@$ver installed in $((SECONDS - started)) s"
  fi
  link_bin "$bin" "$exe"
}

install_aider() {
  local ver="$1"
  local prefix="$AGENTS_DIR/aider-chat@$ver"
  local venv="$prefix/venv"
  if [ ! -f "$prefix/$MARKER" ]; then
    local py="${LOGIST_AIDER_PYTHON:-}"
    if [ -z "$py" ]; then
      py="$(command -v python3.11 || command -v python3 || true)"
    fi
    [ -n "$py" ] || { log "aider needs python3.11 (apt-get install python3 python3-venv)"; return 1; }
    "$py" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] < (3, 13) else 1)' || {
      log "aider $ver needs Python 3.10-3.12; $py is $("$py" --version 2>&1)"
      return 1
    }
    local started=$SECONDS
    log "pip install aider-chat==$ver into $venv (about 2 minutes)"
    mkdir -p "$prefix"
    # In place, never removed first: a half-filled venv is completed by pip, not deleted.
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
      "aider-chat==$ver" >&2
    [ -x "$venv/bin/aider" ] || { log "aider-chat==$ver installed no aider"; return 1; }
    write_marker "$prefix" "aider-chat==$ver"
    log "aider-chat==$ver installed in $((SECONDS - started)) s"
  fi
  link_bin aider "$venv/bin/aider"
}

install_one() {
  local name="$1" line pkg ver bin
  line="$(spec "$name")" || { log "unknown agent '$name' (known: ${ALL[*]})"; return 2; }
  read -r pkg ver bin <<<"$line"
  [ "$bin" = codex-acp ] && ensure_bwrap
  (
    flock 9
    if [ "$pkg" = aider-chat ]; then
      install_aider "$ver"
    else
      install_npm "$pkg" "$ver" "$bin"
    fi
  ) 9>"$LOCK_DIR/$bin.lock"
}

main() {
  mkdir -p "$BIN_DIR" "$LOCK_DIR"
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
  for name in "${names[@]}"; do
    spec "$name" >/dev/null || { log "unknown agent '$name' (known: ${ALL[*]})"; exit 2; }
  done
  command -v npm >/dev/null || { log "npm is missing (Node 20 or later)"; exit 1; }
  # npm installs run in parallel (network bound); aider's pip install too.
  local pids=() failed=0
  for name in "${names[@]}"; do
    install_one "$name" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  [ "$failed" = 0 ] || { log "some installs failed (see above)"; exit 1; }
  echo "$BIN_DIR"
}

main "$@"
