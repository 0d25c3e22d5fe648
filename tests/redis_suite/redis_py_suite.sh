#!/usr/bin/env bash
# Runs redis-py's own asyncio test suite (five files: pubsub, commands,
# connection, pipeline, encoding) against the bundled store or redis-server
# and prints passed/failed/skipped plus the failures grouped by command family.
# Usage and notes: tests/redis_suite/README.md ("redis-py's suite").
#
#   tests/redis_suite/redis_py_suite.sh --server store   # store at HEAD
#   tests/redis_suite/redis_py_suite.sh --server redis   # throwaway redis-server
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
server=store
rev=HEAD
# The redis-py version the project installs; its PyPI sdist ships tests/.
version="$("$ROOT/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("redis"))')"
CACHE="${REDIS_PY_SUITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/presence/redis-py-suite}"
out="${REDIS_PY_SUITE_OUT:-${TMPDIR:-/tmp}/presence-redis-py-suite/$(date +%Y%m%d-%H%M%S)}"
FILES="test_pubsub.py test_commands.py test_connection.py test_pipeline.py test_encoding.py"
extra=()

while [ $# -gt 0 ]; do
    case "$1" in
        --server) server="$2"; shift ;;
        --rev) rev="$2"; shift ;;
        --worktree) rev=worktree ;;
        --out) out="$2"; shift ;;
        --) shift; extra=("$@"); break ;;
        *) echo "redis_py_suite.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
log() { echo "redis_py_suite.sh: $*" >&2; }
mkdir -p "$out"; out="$(cd "$out" && pwd)"

# A separate venv (not the project's) with redis-py $version and its test deps.
suite="$CACHE/redis-$version"
venv="$CACHE/venv-$version"
if [ ! -f "$suite/tests/test_asyncio/conftest.py" ]; then
    log "fetching the redis $version sdist (it ships tests/) from PyPI"
    dl=$(mktemp -d)
    "$ROOT/.venv/bin/pip" download -q --no-deps --no-binary :all: "redis==$version" -d "$dl" || exit 2
    mkdir -p "$CACHE" && tar -xzf "$dl/redis-$version.tar.gz" -C "$CACHE" && rm -rf "$dl"
fi
if [ ! -x "$venv/bin/pytest" ]; then
    python3 -m venv "$venv" &&
    "$venv/bin/pip" install -q "redis==$version" pytest pytest-asyncio pytest-timeout packaging numpy || exit 2
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
if [ "$server" = redis ]; then
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$out" \
        >"$out/server.log" 2>&1 &
    target="$(redis-server --version | cut -d' ' -f1-3)"
else
    src="$ROOT"
    if [ "$rev" != worktree ]; then
        sha=$(git -C "$ROOT" rev-parse --verify "$rev^{commit}") || exit 2
        src="$out/src"; mkdir -p "$src"
        git -C "$ROOT" archive --format=tar "$sha" presence | tar -x -C "$src" || exit 2
        target="store at $(git -C "$ROOT" log -1 --format=%h "$sha")"
    else
        target="store (working tree)"
    fi
    ( cd "$src" && exec "$ROOT/.venv/bin/python" -m presence.store --port "$port" ) >"$out/server.log" 2>&1 &
fi
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null; sleep 1; kill -9 "$SERVER_PID" 2>/dev/null' EXIT
for _ in $(seq 150); do
    python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$port),1); s.sendall(b'PING\r\n'); sys.exit(0 if s.recv(64).startswith(b'+PONG') else 1)" 2>/dev/null && break
    sleep 0.1
done
log "$target on port $port; redis-py $version tests from $suite; results in $out"

paths=(); for f in $FILES; do paths+=("tests/test_asyncio/$f"); done
( cd "$suite" && "$venv/bin/python" -m pytest "${paths[@]}" -p no:cacheprovider -q \
    -o addopts= -o log_cli=false --timeout 30 --redis-url="redis://127.0.0.1:$port/0" \
    --junitxml="$out/junit.xml" "${extra[@]}" ) >"$out/pytest.txt" 2>&1
tail -1 "$out/pytest.txt" >&2
python3 "$HERE/redis_py_summary.py" "$out/junit.xml" "$target, redis-py $version" | tee "$out/summary.md"
