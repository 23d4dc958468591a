#!/usr/bin/env bash
# The reference scenario over loopback HTTP: the seeded Pipedrive-shaped sandbox served in the
# Pipedrive dialect is the source, the HubSpot-shaped sandbox served in the HubSpot dialect (declared
# limit 190 requests / 10 s) the destination; the pipedrive and hubspot connectors talk to them. The
# review flow and its outcome are those of scripts/demo.sh (README "The reference scenario, pinned");
# this script checks the pinned numbers and exits non-zero when one differs.
#
#   examples/reference-http/run.sh [--ci]
#     --ci     declare and enforce 1,900 requests / 10 s instead of 190 (the ctest; same outcome)
#   CMG_CLI  the crmmigrate binary (default build/release/bin/crmmigrate)
#   WORK     working directory (default: a fresh temporary one, removed at the end)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cm=${CMG_CLI:-$root/build/release/bin/crmmigrate}
burst=190
[[ "${1:-}" == "--ci" ]] && burst=1900
if [[ -n "${WORK:-}" ]]; then
  work=$WORK
  rm -rf "$work" && mkdir -p "$work"
  keep=1
else
  work=$(mktemp -d)
  keep=0
fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ $keep == 1 ]] || rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

# Tokens the servers require and the connectors send (from the environment only, never in the config).
PIPEDRIVE_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
HUBSPOT_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export PIPEDRIVE_TOKEN HUBSPOT_TOKEN

step "1. Seed the sandbox CRMs (seed 42)"
"$cm" sandbox seed --scenario reference --dir "$work/sandbox" >/dev/null

serve() {  # dialect path token-env limits: started in this shell so the EXIT trap stops it
  "$cm" sandbox serve --dialect "$1" --path "$2" --token-env "$3" --limits "$4" >"$work/serve-$1.out" 2>&1 &
  pids+=($!)
}
url_of() {  # dialect -> the URL the server printed
  local out="$work/serve-$1.out"
  for _ in $(seq 1 100); do
    if grep -q "at http://" "$out"; then
      grep -o "http://127.0.0.1:[0-9]*" "$out" | head -n 1
      return 0
    fi
    sleep 0.1
  done
  echo "sandbox serve ($1) did not start:" >&2
  cat "$out" >&2
  return 1
}
step "2. Serve them: Pipedrive dialect (80 req / 2 s) and HubSpot dialect ($burst req / 10 s)"
serve pipedrive "$work/sandbox/source" PIPEDRIVE_TOKEN declared
serve hubspot "$work/sandbox/destination" HUBSPOT_TOKEN "$burst/10000"
pd_url=$(url_of pipedrive)
hs_url=$(url_of hubspot)
echo "pipedrive: $pd_url   hubspot: $hs_url"

cfg="$work/migration.json"
sed -e "s|@PIPEDRIVE_URL@|$pd_url|; s|@HUBSPOT_URL@|$hs_url|; s|\"burst_requests\": 190|\"burst_requests\": $burst|" \
  "$here/migration.json" >"$cfg"

check_counts() {  # report.json expected-spec
  python3 - "$1" "$2" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
bad = []
for spec in sys.argv[2].split():
    name, nums = spec.split("=")
    want = dict(zip(["written", "merged", "queued", "skipped"], map(int, nums.split("/"))))
    got = report["objects"][name]
    for k, v in want.items():
        if got[k] != v:
            bad.append(f"{name}.{k}: {got[k]} (expected {v})")
    if got.get("pending", 0) != 0:
        bad.append(f"{name}.pending: {got['pending']}")
if bad:
    print("MISMATCH: " + "; ".join(bad))
    sys.exit(1)
print("counts as pinned: " + sys.argv[2])
PY
}

step "3. Plan and sign-off"
"$cm" plan -c "$cfg" >/dev/null || true
"$cm" plan -c "$cfg" --approve --reviewer "Avery (RevOps)" | tail -n 1

step "4. Run (exit 1: finished, queue items open)"
set +e
"$cm" run -c "$cfg" --json >"$work/run.json"
rc=$?
set -e
[[ $rc == 1 ]] || { echo "run exited $rc (expected 1)"; cat "$work/run.json"; exit 1; }
check_counts "$work/run.json" \
  "companies=560/40/0/0 contacts=3716/450/34/0 deals=1640/0/160/0 notes=5721/0/279/0 activities=370/0/30/0"

step "5. Reviewer fixes"
sed -i 's|"2/8": \[|"2/9": ["partnerships", "partner_paused"], "2/8": [|' "$cfg"
"$cm" plan -c "$cfg" --approve --reviewer "Avery (RevOps)" | tail -n 1
owner=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['reassign_owner_id'])" "$work/sandbox/source/manifest.json")
"$cm" queue fix -c "$cfg" --reason owner_unprovisioned --object contacts --set "hubspot_owner_id=$owner" \
  --reviewer "Sam (Sales Ops)" --note "Morgan Blake left; accounts go to Riley Ortiz"
"$cm" queue skip -c "$cfg" --reason orphan_reference --reviewer "Sam (Sales Ops)" \
  --note "person deleted in Pipedrive before the export; notes not migrated"

step "6. Reprocess"
"$cm" queue reprocess -c "$cfg" >/dev/null || true

step "7. Reconcile (read-back of every record over HTTP)"
"$cm" reconcile -c "$cfg" --json >"$work/reconcile.json"
check_counts "$work/reconcile.json" \
  "companies=560/40/0/0 contacts=3750/450/0/0 deals=1800/0/0/0 notes=5988/0/0/12 activities=400/0/0/0"
python3 - "$work/reconcile.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["complete"] and r["state"] == "complete", r
assert r["queue_open"] == 0 and r["readback_mismatches"] == 0, r
print("reconcile: complete, 0 queue items open, 0 read-back mismatches")
PY
