#!/usr/bin/env python3
"""Cost of the Python boundary for a custom source: the dry run (extract -> map -> dedup -> validate)
of N generated contacts through

  1. the native CSV source (files connector), the baseline measured in the same run;
  2. a Python crmmigrate.Source yielding one record dict at a time;
  3. the same Python source yielding lists of records (one list per batch).

The Python sources hand out dicts built before the timer starts, so the difference from the
baseline is the boundary itself (the GIL, the iterator protocol, dict -> Record conversion) minus
CSV parsing. Prints ONE JSON object: records/s of each, the ratio to the native source, and the
overhead per record in microseconds (wall and CPU time of the calling thread). Progress goes to stderr. A program, not a test.

Usage: PYTHONPATH=build/release/python /usr/bin/python3 tests/bench/python_boundary_bench.py [N]
"""
import csv
import json
import pathlib
import sys
import tempfile
import time

import crmmigrate
from crmmigrate.sandbox import Sandbox

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "José", "Zoë"]
LAST = ["Smith", "Johnson", "Garcia", "Miller", "Davis", "Müller", "Nguyen", "O'Brien", "Lee", "Brown"]
OWNERS = [("7000000%d" % i, "owner%d@example.com" % i, "Owner %d" % i) for i in range(1, 9)]
HEADER = ["id", "first_name", "last_name", "email", "phone", "owner", "updated_at"]


def generate(n):
    """N contacts, fully determined by their index; ~2 % duplicates by email in another case."""
    rows = []
    for i in range(n):
        j = i // 50 if i % 50 == 49 else i  # every 50th is a duplicate of an earlier contact
        first, last = FIRST[j % 10], LAST[(j // 10) % 10]
        email = "%s.%s%d@example.com" % (first.lower(), last.lower().replace("'", ""), j)
        if j != i:
            email = email.upper()
        phone = "(415) %03d-%04d" % (200 + (j // 10000) % 800, j % 10000)
        owner = OWNERS[j % 8][1]
        ts = "2024-%02d-%02dT10:00:00Z" % (1 + i % 12, 1 + i % 28)
        rows.append([str(i + 1), first, last, email, phone, owner, ts])
    return rows


class ListSource(crmmigrate.Source):
    """A Python source over prepared record dicts."""

    def __init__(self, records, batched):
        super().__init__()
        self.records = records
        self.batched = batched

    def schema(self):
        return {"objects": {"contacts": {"fields": [{"name": h, "type": "string"} for h in HEADER[1:]]}},
                "users": []}

    def count(self, object):
        return len(self.records)

    def read(self, object, options):
        if not self.batched:
            return iter(self.records)
        size = options["batch_size"]
        return (self.records[k:k + size] for k in range(0, len(self.records), size))


def config(work, tag, csv_path, dest):
    return {
        "name": "python_boundary_bench",
        "state": str(work / ("state-" + tag)),
        "source": {"connector": "files", "options": {"objects": {"contacts": {
            "path": str(csv_path), "format": "csv", "id": "id", "updated_at": "updated_at"}}}},
        "destination": {"connector": "sandbox", "options": {"path": str(dest)}},
        "owners": {"match": ["email", "name"]},
        "dedup": {"phone_region": "US"},
        "objects": [{
            "name": "contacts", "source": "contacts", "destination": "contacts",
            "fields": {"first_name": "firstname", "last_name": "lastname", "email": "email", "phone": "phone",
                       "owner": {"to": "hubspot_owner_id", "owner": True}},
            "drop": ["updated_at"],
            "defaults": {"lifecyclestage": "lead"},
            "dedup": {"keys": ["external_id", "email", "phone"]},
        }],
    }


def dry_run(cfg, source=None):
    with crmmigrate.Migration(cfg, source=source) as m:
        t0 = time.perf_counter()
        c0 = time.thread_time()
        report = m.run(dry_run=True)
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    return report, wall, cpu


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    with tempfile.TemporaryDirectory(prefix="cmg-pybench-") as tmp:
        work = pathlib.Path(tmp)
        print("generating %d contacts" % n, file=sys.stderr)
        rows = generate(n)
        csv_path = work / "contacts.csv"
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            w.writerows(rows)
        # Same values as the CSV gives (strings), plus updated_at in Unix ms as the files source sets it.
        records = [{"id": r[0], "updated_at": 1704103200000 + int(r[0]),
                    "fields": dict(zip(HEADER[1:], r[1:]))} for r in rows]
        dest = work / "hubspot"
        with Sandbox.create(str(dest), "hubspot") as sb:
            for oid, email, name in OWNERS:
                sb.set_user(oid, email, name)

        results = {}
        for tag, src in (("native_csv", None), ("python_per_record", ListSource(records, False)),
                         ("python_batched", ListSource(records, True))):
            print("dry run: %s" % tag, file=sys.stderr)
            report, wall, cpu = dry_run(config(work, tag, csv_path, dest), src)
            c = report["objects"]["contacts"]
            if c["source"] != n:
                raise SystemExit("%s: read %d records, expected %d" % (tag, c["source"], n))
            results[tag] = {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                            "records_per_s": round(n / wall), "queued": c["queued"], "state": report["state"]}
        base = results["native_csv"]
        for tag in ("python_per_record", "python_batched"):
            r = results[tag]
            r["ratio_to_native"] = round(r["records_per_s"] / base["records_per_s"], 3)
            r["overhead_us_per_record"] = round((r["seconds"] - base["seconds"]) / n * 1e6, 3)
            # The pipeline runs on the calling thread: its CPU time is free of the waiting for a
            # core that a shared machine adds to the wall time.
            r["cpu_overhead_us_per_record"] = round((r["cpu_seconds"] - base["cpu_seconds"]) / n * 1e6, 3)
        print(json.dumps({"benchmark": "python_boundary", "records": n,
                          "python": sys.version.split()[0], **results}))


if __name__ == "__main__":
    main()
