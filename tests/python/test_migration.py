"""crmmigrate.Migration over the reference scenario: plan, run, queue, fixes, reprocess, reconcile,
audit, errors as exceptions, and the GIL released while the pipeline runs."""
import threading

import pytest

import crmmigrate
from conftest import check_against_manifest


def test_the_reference_scenario_runs_end_to_end_from_python(reference):
    man = reference.manifest
    with crmmigrate.Migration(str(reference.config)) as m:
        assert m.name == "reference"
        plan = m.plan()
        assert plan["blocking"] == []
        deals_plan = plan["objects"]["deals"]
        assert [(u["value"], u["count"]) for u in deals_plan["untranslated_values"]] == [("2/9", 140)]
        assert plan["objects"]["contacts"]["unresolved_owners"][0]["records"] == 34

        # No sign-off yet: refused, as an exception with its code.
        with pytest.raises(crmmigrate.InvalidArgumentError) as refused:
            m.run()
        assert refused.value.code == "invalid_argument"
        assert isinstance(refused.value, crmmigrate.Error)

        m.plan(approve=True, reviewer="Avery")
        phases = set()
        report = m.run(progress=lambda p: phases.add(p["phase"]))
        assert report["state"] == "incomplete"  # open queue items: a state, not an exception
        assert report["complete"] is False
        check_against_manifest(report, man)
        assert report["objects"]["contacts"]["written"] == 3716
        assert report["objects"]["contacts"]["merged"] == 450
        assert {"extract", "write"} <= phases

        assert len(m.queue_list(object="deals", reason="unmapped_value")) == 140
        assert len(m.queue_list(object="contacts", reason="owner_unprovisioned")) == 34
        assert len(m.queue_list(reason="orphan_reference")) == 12
        assert len(m.queue_list(object="deals", limit=5)) == 5

        deal_id = "deals/" + man["unmapped_stage_deal_ids"][0]
        item = m.queue_show(deal_id)
        prob = item["problems"][0]
        assert (prob["field"], prob["value"], prob["rule"], prob["reason"]) == (
            "dealstage", "2/9 (On Hold)", "translation:stage", "unmapped_value")
        with pytest.raises(crmmigrate.NotFoundError):
            m.queue_show("deals/does-not-exist")

        status = m.status()
        assert status["objects"] == report["objects"]

        # audit() is an iterator of dicts, optionally for one record.
        events = m.audit(deal_id)
        assert iter(events) is events
        first = next(events)
        assert isinstance(first, dict)
        assert all(e.get("object") in (None, "deals") for e in events)
        # At least one event per source record (13,000 of them).
        assert sum(1 for _ in m.audit()) >= sum(c["source"] for c in report["objects"].values())
    assert m.closed
    with pytest.raises(crmmigrate.InvalidArgumentError, match="closed"):
        m.status()

    # The reviewer's fixes: the stage translation in a new config version (signed off again), a
    # provisioned owner for the 34 contacts, the orphan notes skipped.
    reference.write_config(with_on_hold=True)
    with crmmigrate.Migration(reference.config) as m:  # a PathLike works too
        with pytest.raises(crmmigrate.InvalidArgumentError):
            m.run()
        m.plan(approve=True, reviewer="Avery")
        with pytest.raises(crmmigrate.InvalidArgumentError, match="reviewer"):
            m.queue_fix({"hubspot_owner_id": man["reassign_owner_id"]}, reviewer="", reason="owner_unprovisioned")
        assert m.queue_fix({"hubspot_owner_id": man["reassign_owner_id"]}, reviewer="Sam", note="reassigned",
                           reason="owner_unprovisioned", object="contacts") == 34
        assert m.queue_skip(reviewer="Sam", note="person deleted in the source", reason="orphan_reference") == 12
        rr = m.reprocess()
        assert rr["queue_open"] == 0
        assert rr["objects"]["deals"]["written"] == 1800
        assert rr["objects"]["contacts"]["written"] == 3716 + 34
        assert rr["objects"]["notes"]["skipped"] == 12
        rec = m.reconcile()
        assert rec["state"] == "complete" and rec["complete"] is True
        assert rec["readback_mismatches"] == 0
        for name, c in rec["objects"].items():
            assert c["source"] == c["written"] + c["merged"] + c["queued"] + c["skipped"], name
            assert c["pending"] == 0
        skipped = m.queue_show(m.queue_list(status="skipped", limit=1)[0]["id"])
        assert skipped["status"] == "skipped"


def test_a_second_run_on_the_same_migration_is_refused_with_lockederror(reference):
    # Two handles on one state: the lock is per run, held while one runs. Run the first in a
    # thread (the GIL is released) and try the second while it holds the lock.
    with crmmigrate.Migration(str(reference.config)) as m1, crmmigrate.Migration(str(reference.config)) as m2:
        m1.plan(approve=True, reviewer="Avery")
        started = threading.Event()
        release = threading.Event()
        outcome = {}

        def progress(_p):
            started.set()
            release.wait(30)

        def first():
            outcome["report"] = m1.run(progress=progress)

        t = threading.Thread(target=first)
        t.start()
        assert started.wait(60)
        try:
            with pytest.raises(crmmigrate.LockedError) as locked:
                m2.run()
            assert locked.value.code == "locked"
        finally:
            release.set()
            t.join()
        assert outcome["report"]["state"] == "incomplete"


def test_the_gil_is_released_while_the_pipeline_runs(reference):
    with crmmigrate.Migration(str(reference.config)) as m:
        m.plan(approve=True, reviewer="Avery")
        done = threading.Event()
        out = {}

        def work():
            out["report"] = m.run(dry_run=True)
            done.set()

        t = threading.Thread(target=work)
        t.start()
        ticks = 0
        while not done.is_set():
            ticks += 1
            done.wait(0.001)
        t.join()
        # Had run() kept the GIL, this loop could not have turned while the dry run took seconds.
        assert ticks >= 20
        assert out["report"]["objects"]["contacts"]["source"] == 4200


def test_config_errors_are_configerror_and_name_the_path(tmp_path):
    with pytest.raises(crmmigrate.ConfigError) as e:
        crmmigrate.Migration({"name": "x", "objects": "nope"}, base_dir=str(tmp_path))
    assert e.value.code == "config"
    assert "$.source" in str(e.value)  # the message names the JSON path
    with pytest.raises(crmmigrate.NotFoundError):
        crmmigrate.Migration(str(tmp_path / "missing.json"))
    with pytest.raises(TypeError, match=r"\$\.config|config"):
        crmmigrate.Migration({"name": object()})


def test_the_error_classes_have_one_code_each():
    classes = [crmmigrate.InvalidArgumentError, crmmigrate.ConfigError, crmmigrate.ParseError,
               crmmigrate.NotFoundError, crmmigrate.AlreadyExistsError, crmmigrate.LockedError,
               crmmigrate.UnavailableError, crmmigrate.PermissionDeniedError, crmmigrate.StorageIOError,
               crmmigrate.StorageError, crmmigrate.CancelledError, crmmigrate.PluginError,
               crmmigrate.InternalError]
    codes = [c.code for c in classes]
    assert len(set(codes)) == len(classes)
    assert "plugin" in codes and "locked" in codes and "io" in codes
    assert all(issubclass(c, crmmigrate.Error) for c in classes)
    assert crmmigrate.PluginError.__module__ == "crmmigrate"


def test_seeding_twice_raises_alreadyexistserror(reference):
    with pytest.raises(crmmigrate.AlreadyExistsError):
        crmmigrate.sandbox.seed_reference(str(reference.root / "sandbox" / "source"),
                                          str(reference.root / "sandbox" / "x"))


def test_help_shows_the_docstrings():
    assert "context manager" in crmmigrate.Migration.__doc__
    assert "halt" in crmmigrate.Migration.run.__doc__
    assert "schema()" in crmmigrate.Source.__doc__
    assert "merge(source, destination)" in crmmigrate.MergeRule.__doc__
    assert "__cause__" in crmmigrate.PluginError.__doc__
    import pydoc
    text = pydoc.render_doc(crmmigrate.Migration, renderer=pydoc.plaintext)
    assert "queue_fix" in text and "reconcile" in text


def test_the_package_ships_type_stubs():
    import pathlib
    pkg = pathlib.Path(crmmigrate.__file__).parent
    assert (pkg / "py.typed").exists()
    stub = (pkg / "__init__.pyi").read_text()
    for name in ("class Migration", "def queue_fix", "class PluginError(Error)", "class Normalizer"):
        assert name in stub
