#!/usr/bin/env bash
# Installs the real peers that the compatibility tests run (issue 29), pinned and cached under
# $HOME/.cache/routesim, and prints the shell variables that point at them:
#   ROUTESIM_PEERS_PYTHON   python of a venv with LiteLLM (scripts/peers/requirements.txt)
#   ROUTESIM_PORTKEY_DIR    a folder with @portkey-ai/gateway installed (node_modules/.bin, build/start-server.js)
# Usage: eval "$(scripts/peers/install.sh)"   (idempotent: a second run only checks the pins).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${ROUTESIM_CACHE:-$HOME/.cache/routesim}"
mkdir -p "$cache"

PORTKEY_VERSION="1.15.2"

venv="$cache/venv-peers"
stamp="$venv/.requirements"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$stamp"
fi

portkey="$cache/portkey-$PORTKEY_VERSION"
if [ ! -f "$portkey/node_modules/@portkey-ai/gateway/package.json" ]; then
  mkdir -p "$portkey"
  (cd "$portkey" && npm install --silent --no-audit --no-fund --no-save "@portkey-ai/gateway@$PORTKEY_VERSION" >&2)
fi

echo "export ROUTESIM_PEERS_PYTHON='$venv/bin/python'"
echo "export ROUTESIM_PORTKEY_DIR='$portkey/node_modules/@portkey-ai/gateway'"
