"""The same migration gives the same report from Python as from the CLI's --json (the Python leg of
the CLI / C / C++ / Python parity check): two copies of the reference scenario seeded alike, one
driven by the CLI, one by crmmigrate.Migration."""
import json
import os
import subprocess

import pytest

import crmmigrate
from conftest import Reference, check_against_manifest, dumps

CLI = os.environ.get("CMG_CLI")


def cli(config, *args):
    """Runs the CLI; returns (exit code, parsed --json stdout or None)."""
    p = subprocess.run([CLI, *args, "-c", str(config)], capture_output=True, text=True, timeout=600)
    out = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
    return p.returncode, out, p.stderr


@pytest.mark.skipif(not CLI, reason="CMG_CLI (the crmmigrate CLI) is not set")
def test_python_and_the_cli_give_the_same_reports_for_the_same_migration(tmp_path):
    a = Reference(tmp_path / "cli")
    b = Reference(tmp_path / "python")
    assert a.manifest == b.manifest  # same seed, same scenario

    rc, plan_cli, err = cli(a.config, "plan", "--json", "--approve", "--reviewer", "Avery")
    assert rc == 0, err
    rc, run_cli, err = cli(a.config, "run", "--json")
    assert rc == 1, err  # finished but incomplete: open queue items
    rc, status_cli, err = cli(a.config, "status", "--json")
    assert rc == 1, err
    rc, reconcile_cli, err = cli(a.config, "reconcile", "--json")
    assert rc == 1, err

    with crmmigrate.Migration(str(b.config)) as m:
        plan_py = m.plan(approve=True, reviewer="Avery")
        run_py = m.run()
        status_py = m.status()
        reconcile_py = m.reconcile()

    check_against_manifest(run_py, b.manifest)
    # Whole documents, not selected fields: any difference shows in the assertion message.
    assert dumps(run_py) == dumps(run_cli)
    assert dumps(status_py) == dumps(status_cli)
    assert dumps(reconcile_py) == dumps(reconcile_cli)
    # The plan embeds the sign-off (reviewer, time): compare what the migration will do.
    assert dumps(plan_py["objects"]) == dumps(plan_cli["objects"])
    assert plan_py["blocking"] == plan_cli["blocking"]
