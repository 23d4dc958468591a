#!/usr/bin/env bash
# The reference scenario from a fresh clone: installs what is missing, builds, seeds the sandbox
# CRMs (a Pipedrive-shaped source, a HubSpot-shaped destination) and walks the whole review flow:
# plan → sign-off → run → reviewer fixes → reprocess → reconcile.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target crmmigrate
cm="$root/build/release/bin/crmmigrate"

work=${WORK:-$root/build/demo}
rm -rf "$work" && mkdir -p "$work"
cp examples/reference/migration.json "$work/migration.json"
cfg="$work/migration.json"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Seed the sandbox CRMs (deterministic, seed 42)"
"$cm" sandbox seed --scenario reference --dir "$work/sandbox"

step "2. Plan: what the mapping covers, and the gaps it finds"
"$cm" plan -c "$cfg" || true

step "3. Sign-off by the RevOps lead"
"$cm" plan -c "$cfg" --approve --reviewer "Avery (RevOps)" | tail -n 1

step "4. Run: every record is written, merged or queued"
"$cm" run -c "$cfg" || true   # exit 1: finished, queue items open

step "5. The conflict queue, by reason"
for r in unmapped_value owner_unprovisioned orphan_reference parent_queued; do
  printf '  %-20s %s\n' "$r" "$("$cm" queue list -c "$cfg" --reason "$r" | tail -n 1)"
done
"$cm" queue list -c "$cfg" --reason unmapped_value --limit 2
"$cm" queue list -c "$cfg" --reason owner_unprovisioned --limit 2

step "6. Reviewer fixes"
echo "  - add the missing stage translation (Partnerships / On Hold → partner_paused) to the config"
sed -i 's|"2/8": \["partnerships", "partner_contract"\]|"2/8": ["partnerships", "partner_contract"],\n            "2/9": ["partnerships", "partner_paused"]|' "$cfg"
"$cm" plan -c "$cfg" --approve --reviewer "Avery (RevOps)" | tail -n 1
owner=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['reassign_owner_id'])" "$work/sandbox/source/manifest.json")
echo "  - assign the contacts of the departed owner to a provisioned owner ($owner)"
"$cm" queue fix -c "$cfg" --reason owner_unprovisioned --object contacts --set "hubspot_owner_id=$owner" \
  --reviewer "Sam (Sales Ops)" --note "Morgan Blake left; accounts go to Riley Ortiz"
echo "  - skip the notes whose person was deleted in the source"
"$cm" queue skip -c "$cfg" --reason orphan_reference --reviewer "Sam (Sales Ops)" \
  --note "person deleted in Pipedrive before the export; notes not migrated"

step "7. Reprocess: only the fixed items and the children they release"
"$cm" queue reprocess -c "$cfg" || true

step "8. Reconcile: accounting equation and read-back of every record"
"$cm" reconcile -c "$cfg"
echo
echo "complete: every source record is written, merged or deliberately skipped; state in $work/.crmmigrate/reference"
