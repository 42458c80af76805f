#!/usr/bin/env bash
# The whole CBLAPP01 flow in a throwaway ESRT_HOME: directory server, region ESSRV01, compile,
# map, package, deploy, initialise the data file, 10 calls, then stop everything.
# Ports: DEMO_MFDS_PORT (default 8686) and DEMO_PORT (default 9003) on 127.0.0.1.
# DEMO_HOME: an empty directory to use as ESRT_HOME instead of a throwaway one (kept).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mfds_port="${DEMO_MFDS_PORT:-8686}"
port="${DEMO_PORT:-9003}"

export ESRT_HOME="${DEMO_HOME:-$(mktemp -d /tmp/esrt-demo.XXXXXX)}"
work="$ESRT_HOME/work"
mkdir -p "$work"
cleanup() {
    status=$?
    esrt casstop -r ESSRV01 --force >/dev/null 2>&1 || true
    esrt mfds --stop >/dev/null 2>&1 || true
    if [ $status -ne 0 ]; then
        echo "demo failed; console log kept in $ESRT_HOME/servers/ESSRV01/logs" >&2
    elif [ -z "${DEMO_HOME:-}" ]; then
        rm -rf "$ESRT_HOME"
    fi
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "directory server"
esrt mfds --daemon --listen "127.0.0.1:$mfds_port"
step "define server ESSRV01"
esrt server create ESSRV01 --seps 2 --listener "Web Services=127.0.0.1:$port" \
    --env DD_APPFILE01=APPFILE01
cd "$work"
cp "$here"/cblapp01.cbl "$here"/initfile1.cbl .
step "map and package CBLAPP01"
esrt imtk defmap --src cblapp01.cbl --service srv01
# CBLAPP01 only returns values: make every parameter an output, as the report's user did.
sed -i 's/"direction": "io"/"direction": "out"/' srv01.mapping.json
esrt imtk generate --service srv01
step "start ESSRV01"
esrt casstart -r ESSRV01 --wait
step "deploy srv01.car"
esrt deploy srv01.car --server ESSRV01
step "initialise APPFILE01"
esrt batch run initfile1.cbl --server ESSRV01
step "call srv01.CBLAPP01 10 times"
esrt call srv01.CBLAPP01 --url "http://127.0.0.1:$port" --repeat 10
step "stop ESSRV01"
esrt casstop -r ESSRV01
esrt mfds --stop
