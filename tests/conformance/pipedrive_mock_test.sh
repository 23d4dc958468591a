#!/usr/bin/env bash
# Pipedrive conformance (ctest "pipedrive_mock_conformance"): starts Prism mocks of Pipedrive's
# OpenAPI v1 and v2 files with request validation and --errors on 127.0.0.1 (free ports), runs
# pipedrive_mock_driver against them and fails on any request Prism rejects.
#   pipedrive_mock_test.sh DRIVER SPEC_DIR CONFORMANCE_DIR
set -euo pipefail
driver=$1
spec_dir=$2
conf_dir=$3
prism="$conf_dir/node_modules/.bin/prism"
if [[ ! -x "$prism" ]]; then
  echo "prism not installed: run 'npm ci --prefix $conf_dir' (scripts/setup.sh does); skipped" >&2
  exit 77
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Started in this shell (not in a command substitution) so that the EXIT trap knows their pids.
p1=$(free_port)
"$prism" mock -h 127.0.0.1 -p "$p1" --errors "$spec_dir/openapi-v1.yaml" >"$work/prism-v1.log" 2>&1 &
pids+=($!)
p2=$(free_port)
"$prism" mock -h 127.0.0.1 -p "$p2" --errors "$spec_dir/openapi-v2.yaml" >"$work/prism-v2.log" 2>&1 &
pids+=($!)

wait_ready() {  # port log
  for _ in $(seq 1 240); do
    if grep -q "Prism is listening" "$2" 2>/dev/null; then return 0; fi
    if ! python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(0.5); s.connect(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null; then
      sleep 0.5
      continue
    fi
    return 0
  done
  echo "prism on port $1 did not start:" >&2
  cat "$2" >&2
  return 1
}
wait_ready "$p1" "$work/prism-v1.log"
wait_ready "$p2" "$work/prism-v2.log"

set +e
"$driver" "http://127.0.0.1:$p1" "http://127.0.0.1:$p2" >"$work/report.json"
rc=$?
set -e
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("requests:", r["requests"], "endpoints:", len(r["endpoints"]), "violations:", len(r["violations"]),
      "canary rejected:", r["canary_rejected"])
for v in r["violations"]:
    print("VIOLATION", v["endpoint"], v["status"], v["target"], v["detail"][:600])
for m in r["missing"]:
    print("NOT EXERCISED", m)
for u in r["unexpected"]:
    print("UNEXPECTED ENDPOINT", u)
for n in r["connector_notes"]:
    print("note:", n["step"], "-", n["status"])
PY
if [[ $rc -ne 0 ]]; then
  echo "--- prism v1 log (tail)"; tail -n 40 "$work/prism-v1.log"
  echo "--- prism v2 log (tail)"; tail -n 40 "$work/prism-v2.log"
fi
exit $rc
