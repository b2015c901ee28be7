#!/usr/bin/env bash
# One Bastion process on a fresh PostgreSQL database, 10 s of wrk gets of one object (32
# connections), and the server's user and system CPU ticks over 8 s of it: CPU per request with
# less noise than req/s alone. Run it from the checkout to measure (another commit: its worktree).
#   bench/cpu_per_get.sh [PORT] [TAG]     (PYTHON: the interpreter, default .venv/bin/python)
set -euo pipefail
PORT=${1:-29801}
TAG=${2:-bastion}
PYTHON=${PYTHON:-.venv/bin/python}
PG=${PG:-postgresql://postgres@127.0.0.1:5432}
DB="cpuget_${TAG}_$$"
psql -q "$PG/postgres" -c "create database $DB" >/dev/null
DATA=$(mktemp -d)
"$PYTHON" -m bastion serve --host 127.0.0.1 --port "$PORT" --database "$PG/$DB" --data-dir "$DATA" \
  --app-id bench --master-key benchmaster --log-level error >"$DATA/server.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true
            psql -q "$PG/postgres" -c "drop database if exists $DB" >/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/parse/health" >/dev/null && break; sleep 0.2; done
ID=$(curl -s -X POST -H "X-Parse-Application-Id: bench" -H "X-Parse-Master-Key: benchmaster" \
  -H "Content-Type: application/json" -d '{"n":1,"name":"x"}' "http://127.0.0.1:$PORT/parse/classes/Item" \
  | "$PYTHON" -c "import json, sys; print(json.load(sys.stdin)['objectId'])")
URL="http://127.0.0.1:$PORT/parse/classes/Item/$ID"
wrk -t2 -c32 -d3s -H "X-Parse-Application-Id: bench" "$URL" >/dev/null   # warm-up
wrk -t2 -c32 -d10s -H "X-Parse-Application-Id: bench" "$URL" >"$DATA/wrk.txt" &
LOAD=$!
sleep 1
read -r U1 S1 < <(awk '{print $14, $15}' "/proc/$SERVER/stat")
sleep 8
read -r U2 S2 < <(awk '{print $14, $15}' "/proc/$SERVER/stat")
wait "$LOAD"
echo "$TAG: $(grep Requests/sec "$DATA/wrk.txt") user $((U2 - U1)) sys $((S2 - S1)) ticks in 8 s"
