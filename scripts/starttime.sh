#!/usr/bin/env bash
# Measures how long s3seal takes from launch to a ready /readyz with
# embedded defaults (keyring and store), on a first start (fresh data dir)
# and a restart, RUNS times each:
#
#   scripts/starttime.sh [BINARY] [RUNS]     (default: build ./cmd/s3seal, 5)
#
# The README's start-time figure comes from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
runs=${2:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/s3seal-starttime.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
if [ -z "$bin" ]; then
  bin=$work/s3seal
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin" ./cmd/s3seal
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
for i in $(seq 1 "$runs"); do
  data=$work/data-$i
  for phase in first restart; do
    port=$(free_port) mport=$(free_port)
    start=$(date +%s%N)
    S3SEAL_DATA_DIR=$data S3SEAL_ADDR=127.0.0.1:$port S3SEAL_METRICS_ADDR=127.0.0.1:$mport S3SEAL_KMS_API_ADDR= "$bin" >/dev/null 2>&1 &
    pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$mport/readyz"; do
      kill -0 "$pid" 2>/dev/null || { echo "s3seal exited"; exit 1; }
      sleep 0.005
    done
    echo "$phase $(( ($(date +%s%N) - start) / 1000000 )) ms"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    pid=
  done
done
