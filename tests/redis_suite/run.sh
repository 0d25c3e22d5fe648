#!/usr/bin/env bash
# Runs Redis 7.0's own test suite (tests/ of the Redis source, external-server
# mode) against the bundled store and prints a pass/fail summary.
# Usage and design notes: tests/redis_suite/README.md.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
REDIS_VERSION=7.0.15
ORIG_SHA256=4b1dc4ee6d622a09fff9c6777191209750fb5e5a725ef78ea012d6eef4c22982
ORIG_URL="http://deb.debian.org/debian/pool/main/r/redis/redis_${REDIS_VERSION}.orig.tar.gz"
CACHE="${REDIS_SUITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/presence/redis-suite}"

CORE_UNITS="unit/expire unit/pubsub unit/keyspace unit/type/incr"
MORE_UNITS="unit/type/string unit/multi unit/scan unit/protocol unit/info-command
unit/quit unit/type/hash unit/type/set unit/type/list unit/type/zset"
# Tags an external Redis-compatible server cannot be expected to serve:
# DEBUG, replication, maxmemory eviction, RDB/AOF saving, LATENCY, PFDEBUG,
# and tests that inspect the server process locally.
DENY_TAGS="-needs:debug -needs:repl -needs:config-maxmemory -needs:save -needs:latency -needs:pfdebug -needs:local-process"
DB_MODE=--singledb    # --multidb: the suite SELECTs db 9 (the store has 16 databases)
STORE_ARGS=()

units="$CORE_UNITS $MORE_UNITS"
server=store          # store | redis | external
rev=HEAD              # store code under test: a commit, or "worktree"
port=""
shim=0
stall=20              # runtest --timeout: seconds without progress => hang
unit_budget=240       # wall-clock seconds per unit (all retries included)
total_budget=540      # wall-clock seconds for the whole run
max_hangs=6           # hung tests skipped and retried per unit
skipfile="$HERE/skip.txt"  # tests of features the store leaves out
isolate=150           # failed tests re-run alone, per unit (0: none)
parallel=6            # concurrent isolated re-runs
out="${REDIS_SUITE_OUT:-${TMPDIR:-/tmp}/presence-redis-suite/$(date +%Y%m%d-%H%M%S)}"
extra=()

usage() { sed -n '/^## run.sh options/,/^## Where/p' "$HERE/README.md" | sed '$d'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --core) units="$CORE_UNITS" ;;
        --units) units="$2"; shift ;;
        --server) server="$2"; shift ;;
        --port) server=external; port="$2"; shift ;;
        --shim) shim=1 ;;
        --multidb) DB_MODE="" ;;
        --debug) DENY_TAGS="${DENY_TAGS/-needs:debug /}"; STORE_ARGS+=(--enable-debug-command yes) ;;
        --pfdebug) DENY_TAGS="${DENY_TAGS/-needs:pfdebug /}" ;;
        --maxmemory) DENY_TAGS="${DENY_TAGS/-needs:config-maxmemory /}" ;;
        --full) DB_MODE=""; DENY_TAGS="${DENY_TAGS/-needs:debug /}"; STORE_ARGS+=(--enable-debug-command yes) ;;
        --rev) rev="$2"; shift ;;
        --worktree) rev=worktree ;;
        --stall) stall="$2"; shift ;;
        --unit-budget) unit_budget="$2"; shift ;;
        --budget) total_budget="$2"; shift ;;
        --isolate) isolate="$2"; shift ;;
        --no-skip) skipfile=/dev/null ;;
        --out) out="$2"; shift ;;
        --fetch-only) server=none ;;
        --vendor) server=vendor ;;
        -h|--help) usage 0 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "run.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done

log() { echo "run.sh: $*" >&2; }

# --- locating / fetching the suite ---------------------------------------

suite_ok() { [ -f "$1/tests/test_helper.tcl" ] && [ -f "$1/COPYING" ]; }

# Unpacks a Debian source package (with Debian's patches) or a bare orig
# tarball found in $1 and keeps only tests/ and COPYING in $2.
unpack_into_cache() {
    local dl="$1" dest="$2" src
    local dsc; dsc=$(ls "$dl"/redis_${REDIS_VERSION}-*.dsc 2>/dev/null | tail -1)
    if [ -n "$dsc" ] && command -v dpkg-source >/dev/null; then
        dpkg-source --no-check -x "$dsc" "$dl/src" >/dev/null || return 1
        src="$dl/src"
    else
        tar -xzf "$dl/redis_${REDIS_VERSION}.orig.tar.gz" -C "$dl" || return 1
        src="$dl/redis-${REDIS_VERSION}"
    fi
    mkdir -p "$dest"
    cp -r "$src/tests" "$src/COPYING" "$dest/"
    ( cd "$dl" && ls ./*.dsc ./*.tar.* 2>/dev/null ) > "$dest/SOURCE" || true
}

fetch_suite() {
    local dest="$CACHE/redis-$REDIS_VERSION" dl ver
    suite_ok "$dest" && { echo "$dest"; return 0; }
    dl=$(mktemp -d)
    log "fetching the Redis $REDIS_VERSION source from Debian's archive into $dest"
    if [ -n "${REDIS_SOURCE_TARBALL:-}" ]; then
        cp "$REDIS_SOURCE_TARBALL" "$dl/redis_${REDIS_VERSION}.orig.tar.gz"
    elif ver=$(apt-cache showsrc redis 2>/dev/null | sed -n "s/^Version: \(5:${REDIS_VERSION}-.*\)/\1/p" | sort -V | tail -1)
         [ -z "$ver" ] || ! ( cd "$dl" && apt-get source --download-only "redis=$ver" >/dev/null 2>&1 ); then
        log "apt-get source failed (no deb-src line?); downloading the orig tarball"
        curl -fsSL -o "$dl/redis_${REDIS_VERSION}.orig.tar.gz" "$ORIG_URL" || { log "download failed"; return 1; }
    fi
    if [ ! -f "$dl/redis_${REDIS_VERSION}.orig.tar.gz" ] ||
       ! echo "$ORIG_SHA256  $dl/redis_${REDIS_VERSION}.orig.tar.gz" | sha256sum -c --quiet; then
        log "orig tarball missing or checksum mismatch"; return 1
    fi
    unpack_into_cache "$dl" "$dest" || return 1
    rm -rf "$dl"
    echo "$dest"
}

locate_suite() {
    if [ -n "${REDIS_SUITE_DIR:-}" ]; then echo "$REDIS_SUITE_DIR"
    elif suite_ok "$HERE/vendor"; then echo "$HERE/vendor"
    else fetch_suite
    fi
}

# Copies the files the chosen units need, plus the licence, to $1.
vendor_suite() {
    local suite="$1" dest="$HERE/vendor" u
    rm -rf "$dest"; mkdir -p "$dest/tests/support" "$dest/tests/unit/type" "$dest/tests/tmp"
    cp "$suite/COPYING" "$dest/"
    cp "$suite/tests/test_helper.tcl" "$dest/tests/"
    cp "$suite"/tests/support/{redis,aofmanifest,server,cluster_helper,tmpfile,test,util}.tcl "$dest/tests/support/"
    cp "$suite/tests/unit/type/list-common.tcl" "$dest/tests/unit/type/"
    for u in $units; do cp "$suite/tests/$u.tcl" "$dest/tests/$u.tcl"; done
    [ -f "$suite/SOURCE" ] && cp "$suite/SOURCE" "$dest/"
    touch "$dest/tests/tmp/.keep"
    log "vendored $(du -sh "$dest" | cut -f1) into $dest"
}

# --- the server under test ------------------------------------------------

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SERVER_PID=""
start_server() {   # $1: log file
    [ "$server" = external ] && return 0
    port=$(free_port)
    if [ "$server" = redis ]; then
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$out" "${STORE_ARGS[@]}" >"$1" 2>&1 &
    else
        ( cd "$STORE_SRC" && exec "$ROOT/.venv/bin/python" -m presence.store --port "$port" "${STORE_ARGS[@]}" ) >"$1" 2>&1 &
    fi
    SERVER_PID=$!
    local i
    for i in $(seq 150); do
        redis_ping && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "server did not answer PING on port $port (log: $1)"; return 1
}

redis_ping() {
    python3 - "$port" <<'EOF' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(64).startswith(b"+PONG") else 1)
EOF
}

# SIGTERM, then SIGKILL: a store stuck in a CPU-bound command never handles TERM.
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill "$SERVER_PID" 2>/dev/null
    local i
    for i in $(seq 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        log "server ignored SIGTERM for 3s (busy?); SIGKILL"
        kill -9 "$SERVER_PID" 2>/dev/null
    fi
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'exit 130' INT TERM

# --- running ----------------------------------------------------------------

# The store runs from a snapshot of a commit (default HEAD), not from the
# working tree, which other people's unfinished edits may leave unimportable.
STORE_SRC="$ROOT"
snapshot_store() {
    [ "$server" = store ] && [ "$rev" != worktree ] || return 0
    REV_SHA=$(git -C "$ROOT" rev-parse --verify "$rev^{commit}") || return 1
    STORE_SRC="$out/src"
    mkdir -p "$STORE_SRC"
    git -C "$ROOT" archive --format=tar "$REV_SHA" presence | tar -x -C "$STORE_SRC" || return 1
    log "store code: $(git -C "$ROOT" log -1 --format='%h %s' "$REV_SHA" | cut -c1-100)"
}

# A private copy of the suite per run: runtest writes into tests/tmp and the
# shim edits support/server.tcl.
prepare_workdir() {
    local suite="$1"
    mkdir -p "$out/work"
    cp -r "$suite/tests" "$out/work/"
    mkdir -p "$out/work/tests/tmp"
    if [ "$shim" = 1 ]; then
        # External mode runs FUNCTION FLUSH before every start_server block;
        # without FUNCTION a whole unit aborts before its first test.
        sed -i 's/^\( *\)r function flush$/\1catch {r function flush}/' "$out/work/tests/support/server.tcl"
    fi
}

# runtest SECONDS OUTPUT ARGS...: the suite against $port, bounded in time.
# The suite's own test-server port is searched from --baseport - 32 upwards
# (32 ports); concurrent runs get disjoint ranges ($TCL_BASE, worker $W).
TCL_BASE=$(( 20000 + (RANDOM % 200) * 50 ))
W=0
runtest() {
    local limit="$1" txt="$2"; shift 2
    ( cd "$out/work" && TERM=dumb timeout -k 5 "$limit" tclsh tests/test_helper.tcl \
        --baseport $(( TCL_BASE + 32 + W * 40 )) --skipfile "$skipfile" \
        --host 127.0.0.1 --port "$port" $DB_MODE --durable --ignore-encoding \
        --ignore-digest --dont-clean --timeout "$stall" --tags "$DENY_TAGS" "$@" ) > "$txt" 2>&1
}

# Runs one unit, skipping and retrying past hung tests. Writes
# $out/<unit>.attemptN.txt and $out/<unit>.hung.
run_unit() {
    local unit="$1" safe="${1//\//_}" attempt=0 skips=() hung deadline rc
    deadline=$(( $(date +%s) + unit_budget ))
    [ "$deadline" -le "$RUN_DEADLINE" ] || deadline=$RUN_DEADLINE
    : > "$out/$safe.hung"
    while :; do
        attempt=$((attempt + 1))
        local txt="$out/$safe.attempt$attempt.txt" left=$(( deadline - $(date +%s) ))
        [ "$left" -gt 5 ] || { echo "[budget]: time budget exhausted before attempt $attempt" >> "$out/$safe.hung"; break; }
        start_server "$out/$safe.server$attempt.log" || { echo "[exception]: server failed to start" > "$txt"; break; }
        runtest "$left" "$txt" --single "$unit" "${skips[@]}" "${extra[@]}"
        rc=$?
        if [ "$server" != external ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "[crash]: server process exited during attempt $attempt (log: $out/$safe.server$attempt.log)" >> "$out/$safe.hung"
        fi
        stop_server
        [ "$rc" = 124 ] && echo "[budget]: killed after ${left}s" >> "$txt"
        hung=$(sed -n 's/.*(IN PROGRESS) \(.*\)$/\1/p' "$txt" | head -1)
        if [ -z "$hung" ] || [ "${#skips[@]}" -ge $((2 * max_hangs)) ]; then break; fi
        echo "$hung" >> "$out/$safe.hung"
        skips+=(--skiptest "$hung")
        log "$unit: '$hung' hung; retrying without it"
    done
}

# Re-runs each failed test of each unit alone (--only NAME, new connections):
# a failure that passes alone was caused by an earlier failure in the same
# unit (client state left behind: RESP3, readraw, ...). The names are split
# over $parallel workers, each with its own store (restarted if it dies).
# Writes $out/isolated/<unit>/<n>.name and <n>.txt.
isolate_failures() {
    local u safe w
    [ "$server" != external ] && [ "$isolate" -gt 0 ] || return 0
    for u in $units; do
        safe="${u//\//_}"
        mkdir -p "$out/isolated/$safe"
        python3 "$HERE/summarize.py" --failed "$out" "$u" | head -n "$isolate" | grep -v '^$' \
            | nl -ba -w1 -s' ' > "$out/isolated/$safe/names"
        for w in $(seq 0 $((parallel - 1))); do
            W=$((w + 1)) isolate_worker "$u" "$safe" "$w" &
        done
        wait
        [ $(( RUN_DEADLINE - $(date +%s) )) -gt 10 ] || { log "no time left to isolate failures"; return 0; }
    done
}

isolate_worker() {
    local u="$1" safe="$2" w="$3" dir="$out/isolated/$2" n name left
    trap - EXIT
    SERVER_PID=""
    while read -r n name; do
        [ $(( n % parallel )) -eq "$w" ] || continue
        left=$(( RUN_DEADLINE - $(date +%s) ))
        [ "$left" -gt 10 ] || break
        printf '%s\n' "$name" > "$dir/$n.name"
        if [ -z "$SERVER_PID" ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            SERVER_PID=""
            start_server "$dir/worker$w.server.log" || break
        fi
        runtest "$(( left < 60 ? left : 60 ))" "$dir/$n.txt" --single "$u" --only "$name" "${extra[@]}"
    done < "$dir/names"
    stop_server
}

describe_target() {
    case "$server" in
        store) if [ "$rev" = worktree ]; then echo "store (working tree)"
               else echo "store at $(git -C "$ROOT" log -1 --format='%h, %cd' --date=format:'%H:%M' "$REV_SHA")"; fi ;;
        redis) redis-server --version | cut -d' ' -f1-3 ;;
        *) echo "server on port $port" ;;
    esac
    [ "$shim" = 1 ] && echo " with --shim"
    [ -z "$DB_MODE" ] && echo " with --multidb"
    [ "${#STORE_ARGS[@]}" -gt 0 ] && echo " with --debug (needs:debug tests run)"
    return 0
}

main() {
    local suite u
    suite=$(locate_suite) || { log "could not locate or fetch the Redis test suite"; exit 2; }
    case "$server" in
        none) echo "$suite"; exit 0 ;;
        vendor) vendor_suite "$suite"; exit 0 ;;
    esac
    command -v tclsh >/dev/null || { log "tclsh not found (apt-get install -y tcl)"; exit 2; }
    mkdir -p "$out"; out="$(cd "$out" && pwd)"
    log "suite: $suite; server: $server; results: $out"
    RUN_DEADLINE=$(( $(date +%s) + total_budget ))
    prepare_workdir "$suite"
    snapshot_store || { log "cannot snapshot $rev"; exit 2; }
    for u in $units; do
        [ -f "$suite/tests/$u.tcl" ] || { log "no such unit: $u"; continue; }
        log "running $u"
        run_unit "$u"
    done
    log "re-running failed tests alone"
    isolate_failures
    python3 "$HERE/summarize.py" "$out" "$(describe_target | tr "\n" " ")" $units | tee "$out/summary.md"
}

main "$@"; exit $?
