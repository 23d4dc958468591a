#!/usr/bin/env python3
"""Migrating from a custom Python source into the sandbox CRM with a Python merge rule.

The source is a legacy contact list held by Python code (here a list; in practice a database cursor
or an API client). The destination is a HubSpot-shaped sandbox that already holds two of those
people and the sales owners. A Python merge rule decides what changes on the two existing contacts.
The script plans, signs the plan off, runs, reconciles, and prints the reports.

Run from a build tree:
    PYTHONPATH=build/release/python /usr/bin/python3 examples/python/custom_source.py --workdir /tmp/ex
Exit status: 0 when the migration reconciles complete, 1 otherwise.
"""
import argparse
import json
import pathlib
import shutil
import sys
import tempfile

import crmmigrate
from crmmigrate.sandbox import Sandbox

OWNERS = [("70000001", "avery.chen@example.com", "Avery Chen"), ("70000002", "jordan.patel@example.com", "Jordan Patel")]

LEGACY_CONTACTS = [
    # id, first, last, email, phone, owner email, last modified (Unix ms)
    ("L-001", "Maria", "Lopez", "maria.lopez@acme.test", "(415) 555-0101", "avery.chen@example.com", 1714550400000),
    ("L-002", "Tom", "Baker", "Tom.Baker@Initech.test", "415.555.0102", "jordan.patel@example.com", 1714636800000),
    ("L-003", "Aiko", "Tanaka", "aiko@globex.test", "", "avery.chen@example.com", 1714723200000),
    ("L-004", "Sam", "Okafor", "sam.okafor@hooli.test", "+1 415 555 0104", "jordan.patel@example.com", 1714809600000),
    ("L-005", "Lena", "Vogel", "lena.vogel@umbrella.test", "415-555-0105", "Avery.Chen@example.com", 1714896000000),
    ("L-006", "Raj", "Iyer", "raj@stark.test", "4155550106", "jordan.patel@example.com", 1714982400000),
]
# Already in the destination (matched by email; the destination spells one differently).
EXISTING = [
    {"email": "tom.baker@initech.test", "firstname": "Tom", "lastname": "", "phone": "", "lifecyclestage": "customer"},
    {"email": "raj@stark.test", "firstname": "Raj", "lastname": "Iyer", "phone": "+14155550199",
     "lifecyclestage": "opportunity"},
]


class LegacySource(crmmigrate.Source):
    """A custom source: the legacy contact list as the "people" object."""

    def schema(self):
        names = ["first", "last", "email", "phone", "owner"]
        return {"objects": {"people": {"fields": [{"name": n, "type": "string"} for n in names]}},
                "users": []}

    def count(self, object):
        return len(LEGACY_CONTACTS)

    def read(self, object, options):
        for cid, first, last, email, phone, owner, modified in sorted(LEGACY_CONTACTS):
            yield {"id": cid, "updated_at": modified,
                   "fields": {"first": first, "last": last, "email": email, "phone": phone, "owner": owner}}


class KeepCustomerData(crmmigrate.MergeRule):
    """Fills blank destination fields, never changes the lifecycle stage, and keeps a differing
    destination phone (the sales team's number is more recent than the legacy list's)."""

    def name(self):
        return "keep_customer_data"

    def merge(self, source, destination):
        changes, applied = {}, []
        for field, value in source["fields"].items():
            current = destination["fields"].get(field)
            if field == "lifecyclestage" or value in (None, "") or current == value:
                continue
            if current in (None, ""):
                changes[field] = value
                applied.append(field + ":fill_blank")
        return {"kind": "merged", "changes": changes, "rules_applied": applied}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", help="directory for the sandbox and the state (default: a temporary one)")
    args = ap.parse_args()
    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="crmmigrate-example-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)

    dest_dir = work / "hubspot"
    with Sandbox.create(str(dest_dir), "hubspot") as hubspot:
        for oid, email, name in OWNERS:
            hubspot.set_user(oid, email, name)
        for fields in EXISTING:
            hubspot.insert("contacts", fields, updated_at=1700000000000)

    config = {
        "name": "legacy-to-hubspot",
        "state": str(work / "state"),
        "source": {"connector": "python"},  # replaced by LegacySource below
        "destination": {"connector": "sandbox", "options": {"path": str(dest_dir)}},
        "owners": {"match": ["email", "name"]},
        "dedup": {"phone_region": "US"},
        "objects": [{
            "name": "contacts", "source": "people", "destination": "contacts",
            "fields": {"first": "firstname", "last": "lastname", "email": "email", "phone": "phone",
                       "owner": {"to": "hubspot_owner_id", "owner": True}},
            "defaults": {"lifecyclestage": "lead"},
            "dedup": {"keys": ["external_id", "email", "phone"]},
        }],
    }

    with crmmigrate.Migration(config, source=LegacySource()) as m:
        m.set_merge_rule("contacts", KeepCustomerData())
        m.set_alert_callback(lambda a: print("ALERT", a, file=sys.stderr))
        plan = m.plan()
        if plan["blocking"]:
            print("plan has blocking gaps:", json.dumps(plan["blocking"], indent=1))
            return 1
        m.plan(approve=True, reviewer="example")
        report = m.run()
        print("run:", json.dumps(report["objects"]["contacts"]), report["state"])
        reconcile = m.reconcile()
        print("reconcile:", reconcile["state"], reconcile.get("message", ""))
        merges = [e for e in m.audit() if e.get("action") == "merged"]
        print("merged records:", len(merges))

    counts = report["objects"]["contacts"]
    with Sandbox.open(str(dest_dir)) as hubspot:
        (tom,) = hubspot.find("contacts", "email", ["tom.baker@initech.test"])
        (raj,) = hubspot.find("contacts", "email", ["raj@stark.test"])
        total = hubspot.count("contacts")
    ok = (counts["written"] == 4 and counts["merged"] == 2 and counts["queued"] == 0
          and reconcile["complete"]
          and tom["fields"]["lastname"] == "Baker" and tom["fields"]["lifecyclestage"] == "customer"
          and raj["fields"]["phone"] == "+14155550199" and total == 6)
    print("destination contacts:", total, "| Tom's last name:", tom["fields"]["lastname"],
          "| Raj's phone kept:", raj["fields"]["phone"])
    print("OK" if ok else "UNEXPECTED RESULT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
