"""Python plugins: Source, Destination, MergeRule, Validator and Normalizer subclasses adapted to the
C++ interfaces; an exception inside any of them reaches the caller as a clear error chained to the
original, and nothing is queued or written wrongly."""
import gc

import pytest

import crmmigrate
from crmmigrate.sandbox import Sandbox

PEOPLE = [
    {"id": "1", "updated_at": 1700000000000, "fields": {"email": "a.nn@example.com", "first": "Ann", "last": "Lee"}},
    {"id": "2", "updated_at": 1700000000000, "fields": {"email": "bob@example.com", "first": "Bob", "last": "Ray"}},
    {"id": "3", "updated_at": 1700000000000, "fields": {"email": "cy@example.com", "first": "Cy", "last": "Fox"}},
]


class PeopleSource(crmmigrate.Source):
    """Three people; optionally fails in schema() or after the first record of read()."""

    def __init__(self, people=PEOPLE, fail_schema=None, fail_read=None, reported=None):
        super().__init__()
        self.people = people
        self.fail_schema = fail_schema
        self.fail_read = fail_read
        self.reported = reported

    def schema(self):
        if self.fail_schema:
            raise self.fail_schema
        fields = [{"name": n, "type": "string"} for n in ("email", "first", "last")]
        return {"objects": {"people": {"fields": fields}}, "users": []}

    def count(self, object):
        assert object == "people"
        return len(self.people) if self.reported is None else self.reported

    def read(self, object, options):
        assert options["batch_size"] > 0
        for i, p in enumerate(self.people):
            if self.fail_read and i == 1:
                raise self.fail_read
            yield p


def config(tmp_path, destination="sandbox", dedup_keys=("external_id", "email")):
    dest = {"connector": "sandbox", "options": {"path": str(tmp_path / "dest")}} if destination == "sandbox" \
        else {"connector": "python"}
    return {
        "name": "python-plugins",
        "state": str(tmp_path / "state"),
        "source": {"connector": "python"},
        "destination": dest,
        "objects": [{
            "name": "contacts", "source": "people", "destination": "contacts",
            "fields": {"email": "email", "first": "firstname", "last": "lastname"},
            "defaults": {"lifecyclestage": "lead"},
            "dedup": {"keys": list(dedup_keys)},
        }],
    }


@pytest.fixture
def hubspot(tmp_path):
    """A HubSpot-preset sandbox that already holds Ann (without her last name)."""
    with Sandbox.create(str(tmp_path / "dest"), "hubspot") as sb:
        ann = sb.insert("contacts", {"email": "ann@example.com", "firstname": "Ann", "lastname": ""}, 1600000000000)
    return {"dir": str(tmp_path / "dest"), "ann": ann}


def dest_count(hubspot):
    with Sandbox.open(hubspot["dir"]) as sb:
        return sb.count("contacts")


class DotlessEmail(crmmigrate.Normalizer):
    """Email key without dots in the local part: a.nn@example.com matches ann@example.com."""

    def normalize(self, value):
        local, _, domain = value.strip().lower().partition("@")
        return local.replace(".", "") + "@" + domain if domain else None


class FillLastName(crmmigrate.MergeRule):
    def __init__(self):
        super().__init__()
        self.calls = []

    def name(self):
        return "fill_last_name"

    def merge(self, source, destination):
        self.calls.append((source["id"], destination["id"]))
        if destination["fields"].get("lastname"):
            return {"kind": "skip", "reason": "already complete"}
        return {"kind": "merged", "changes": {"lastname": source["fields"]["lastname"]},
                "rules_applied": ["lastname:fill"]}


class NoCy(crmmigrate.Validator):
    def validate(self, object, fields, is_create):
        if fields.get("firstname") == "Cy":
            return [{"reason": "invalid_value", "field": "firstname", "value": "Cy", "rule": "custom:no_cy",
                     "message": "Cy is not allowed", "suggestion": "Cyrus"}]
        return None


def test_a_python_source_merge_rule_validator_and_normalizer_migrate_into_the_sandbox(tmp_path, hubspot):
    rule = FillLastName()
    with crmmigrate.Migration(config(tmp_path), source=PeopleSource()) as m:
        m.set_normalizer("contacts", "email", DotlessEmail())
        m.set_merge_rule("contacts", rule)
        m.add_validator(NoCy(), "contacts")
        m.plan(approve=True, reviewer="Avery")
        report = m.run()
        c = report["objects"]["contacts"]
        assert (c["source"], c["written"], c["merged"], c["queued"], c["skipped"]) == (3, 1, 1, 1, 0)
        assert rule.calls == [("1", hubspot["ann"])]
        (item,) = m.queue_list()
        assert item["id"] == "contacts/3"
        assert item["problems"][0]["rule"] == "custom:no_cy"
        assert item["problems"][0]["suggestion"] == "Cyrus"
        merged = [e for e in m.audit("contacts/1") if e.get("action") == "merged"]
        assert merged and "fill_last_name" in str(merged[-1])
    with Sandbox.open(hubspot["dir"]) as sb:
        assert sb.count("contacts") == 2
        (ann,) = sb.read("contacts", [hubspot["ann"]])
        assert ann["fields"]["lastname"] == "Lee"


def test_an_exception_in_a_python_source_fails_the_run_with_pluginerror_and_queues_nothing(tmp_path, hubspot):
    src = PeopleSource()
    with crmmigrate.Migration(config(tmp_path), source=src) as m:
        m.plan(approve=True, reviewer="Avery")  # plan reads the source too: break it afterwards
        src.fail_read = ValueError("source broke")
        with pytest.raises(crmmigrate.PluginError) as e:
            m.run()
        assert e.value.code == "plugin"
        assert "Python source read('people'): ValueError: source broke" in str(e.value)
        assert isinstance(e.value.__cause__, ValueError)
        assert str(e.value.__cause__) == "source broke"
        assert m.queue_list() == []
        c = m.status()["objects"]["contacts"]
        assert c["written"] == c["merged"] == c["queued"] == c["skipped"] == 0
    assert dest_count(hubspot) == 1


def test_a_crmmigrate_error_raised_by_a_plugin_keeps_its_code(tmp_path, hubspot):
    src = PeopleSource(fail_schema=crmmigrate.UnavailableError("legacy CRM is down"))
    with crmmigrate.Migration(config(tmp_path), source=src) as m:
        with pytest.raises(crmmigrate.UnavailableError, match="legacy CRM is down") as e:
            m.plan()
        assert isinstance(e.value.__cause__, crmmigrate.UnavailableError)
        # The next call starts clean: the source works again.
        src.fail_schema = None
        assert m.plan()["blocking"] == []


def test_an_exception_in_a_python_merge_rule_queues_nothing_and_names_the_rule_and_record(tmp_path, hubspot):
    class Exploding(crmmigrate.MergeRule):
        def merge(self, source, destination):
            raise RuntimeError("rule broke")

    with crmmigrate.Migration(config(tmp_path), source=PeopleSource()) as m:
        m.set_normalizer("contacts", "email", DotlessEmail())
        m.set_merge_rule("contacts", Exploding())
        m.plan(approve=True, reviewer="Avery")
        with pytest.raises(crmmigrate.PluginError) as e:
            m.run()
        msg = str(e.value)
        assert "merge rule 'Exploding' failed on contacts/1" in msg
        assert "RuntimeError: rule broke" in msg
        assert isinstance(e.value.__cause__, RuntimeError)
        assert m.queue_list() == []
        assert m.status()["objects"]["contacts"]["merged"] == 0
    with Sandbox.open(hubspot["dir"]) as sb:
        (ann,) = sb.read("contacts", [hubspot["ann"]])
        assert ann["fields"]["lastname"] == ""


def test_an_exception_in_a_python_validator_stops_the_run_and_writes_nothing_unchecked(tmp_path, hubspot):
    class Broken(crmmigrate.Validator):
        def validate(self, object, fields, is_create):
            raise KeyError("no such rule")

    with crmmigrate.Migration(config(tmp_path), source=PeopleSource()) as m:
        m.add_validator(Broken())
        m.plan(approve=True, reviewer="Avery")
        with pytest.raises(crmmigrate.PluginError, match="KeyError") as e:
            m.run()
        assert isinstance(e.value.__cause__, KeyError)
        assert m.status()["objects"]["contacts"]["written"] == 0
        # Whatever the validator could not check is queued for a person with the failure named,
        # never written; nothing else is queued.
        for item in m.queue_list():
            assert item["problems"][0]["rule"] == "plugin_error"
            assert "KeyError" in item["problems"][0]["message"]
    assert dest_count(hubspot) == 1


def test_an_exception_in_a_python_normalizer_stops_the_run(tmp_path, hubspot):
    class Broken(crmmigrate.Normalizer):
        def normalize(self, value):
            raise ValueError("cannot normalise " + value)

    with crmmigrate.Migration(config(tmp_path), source=PeopleSource()) as m:
        m.set_normalizer("contacts", "email", Broken())
        m.plan(approve=True, reviewer="Avery")
        with pytest.raises(crmmigrate.PluginError, match="ValueError: cannot normalise") as e:
            m.run()
        assert isinstance(e.value.__cause__, ValueError)
        assert m.queue_list() == []
    assert dest_count(hubspot) == 1


def test_registering_on_an_unknown_object_or_key_raises_notfounderror(tmp_path, hubspot):
    with crmmigrate.Migration(config(tmp_path), source=PeopleSource()) as m:
        with pytest.raises(crmmigrate.NotFoundError):
            m.set_merge_rule("nope", FillLastName())
        with pytest.raises(crmmigrate.NotFoundError):
            m.set_normalizer("contacts", "nope", DotlessEmail())
        with pytest.raises(TypeError):
            m.set_merge_rule("contacts", DotlessEmail())


def test_bad_records_from_a_python_source_are_named(tmp_path, hubspot):
    src = PeopleSource(people=[{"id": "1", "fields": {"email": {1, 2}}}])
    with crmmigrate.Migration(config(tmp_path), source=src) as m:
        with pytest.raises(crmmigrate.PluginError, match=r"record 1\.fields\.email.*set") as e:
            m.plan()
        assert isinstance(e.value.__cause__, TypeError)
        assert m.queue_list() == []


def test_the_library_keeps_python_plugins_alive(tmp_path, hubspot):
    m = crmmigrate.Migration(config(tmp_path), source=PeopleSource())
    m.set_merge_rule("contacts", FillLastName())
    m.set_normalizer("contacts", "email", DotlessEmail())
    gc.collect()
    m.plan(approve=True, reviewer="Avery")
    report = m.run()
    assert report["objects"]["contacts"]["merged"] == 1
    m.close()
    m.close()  # idempotent


def test_a_count_mismatch_is_a_paused_report_and_an_alert(tmp_path, hubspot):
    alerts = []
    with crmmigrate.Migration(config(tmp_path), source=PeopleSource(reported=5)) as m:
        m.set_alert_callback(alerts.append)
        m.plan(approve=True, reviewer="Avery")
        report = m.run()
        assert report["state"] == "paused"
        assert alerts and alerts[0]["kind"] == "count_mismatch"
        assert alerts[0]["object"] == "contacts"
        resumed = m.run(accept_counts=True, reviewer="Avery")
        assert resumed["objects"]["contacts"]["written"] == 3


def test_an_exception_in_the_progress_callback_is_reraised(tmp_path, hubspot):
    class Stop(Exception):
        pass

    def progress(p):
        raise Stop("enough")

    with crmmigrate.Migration(config(tmp_path), source=PeopleSource()) as m:
        m.plan(approve=True, reviewer="Avery")
        with pytest.raises(Stop, match="enough"):
            m.run(progress=progress)


class MemoryDestination(crmmigrate.Destination):
    """A destination held in a dict: upserts by the "source_id" idempotency property."""

    def __init__(self):
        super().__init__()
        self.records = {}
        self.write_calls = 0

    def schema(self):
        fields = [{"name": "source_id", "type": "string", "unique": True},
                  {"name": "email", "type": "email", "unique": True},
                  {"name": "firstname", "type": "string"}, {"name": "lastname", "type": "string"},
                  {"name": "lifecyclestage", "type": "string"}]
        return {"objects": {"contacts": {"fields": fields, "id_property": "source_id"}}, "users": []}

    def count(self, object):
        return len(self.records)

    def _record(self, rid):
        return {"id": rid, "fields": dict(self.records[rid])}

    def list(self, object, options):
        return [self._record(r) for r in sorted(self.records)]

    def find(self, object, field, values):
        return [self._record(r) for r, f in self.records.items() if f.get(field) in values]

    def write(self, object, ops):
        self.write_calls += 1
        out = []
        for op in ops:
            if op["kind"] == "upsert":
                rid = next((r for r, f in self.records.items() if f.get("source_id") == op["idempotency_key"]), None)
                if rid is None:
                    rid = "m%d" % (len(self.records) + 1)
                    self.records[rid] = {"source_id": op["idempotency_key"]}
                    outcome = "created"
                else:
                    outcome = "updated"
            else:
                rid, outcome = op["id"], "updated"
            self.records[rid].update(op["fields"])
            out.append({"outcome": outcome, "id": rid})
        return out

    def read(self, object, ids):
        return [self._record(i) if i in self.records else None for i in ids]


def test_a_python_destination_receives_the_records_and_reconciles(tmp_path):
    dest = MemoryDestination()
    with crmmigrate.Migration(config(tmp_path, destination="python"), source=PeopleSource(), destination=dest) as m:
        m.plan(approve=True, reviewer="Avery")
        report = m.run()
        assert report["objects"]["contacts"]["written"] == 3
        assert sorted(f["email"] for f in dest.records.values()) == ["a.nn@example.com", "bob@example.com",
                                                                      "cy@example.com"]
        assert dest.write_calls >= 1
        rec = m.reconcile()
        assert rec["state"] == "complete", rec
        assert rec["readback_mismatches"] == 0
        # Run again: nothing is written twice.
        again = m.run()
        assert again["objects"]["contacts"]["written"] == 3
        assert len(dest.records) == 3


def test_a_failing_python_destination_write_queues_the_records_as_retries_exhausted(tmp_path):
    # A write call that fails is a whole-call failure for the pipeline: it retries, then queues the
    # batch for a person with the exception named; nothing is written, nothing is lost.
    class Down(MemoryDestination):
        def write(self, object, ops):
            raise OSError("disk full")

    dest = Down()
    with crmmigrate.Migration(config(tmp_path, destination="python"), source=PeopleSource(), destination=dest) as m:
        m.plan(approve=True, reviewer="Avery")
        report = m.run()
        assert report["state"] == "incomplete"
        assert report["objects"]["contacts"]["queued"] == 3
        items = m.queue_list()
        assert [i["reason"] for i in items] == ["retries_exhausted"] * 3
        assert "Python destination write('contacts'): OSError: disk full" in items[0]["problems"][0]["message"]
        assert dest.records == {}


def test_a_keyboardinterrupt_inside_a_plugin_reaches_the_caller_as_itself(tmp_path, hubspot):
    src = PeopleSource()
    with crmmigrate.Migration(config(tmp_path), source=src) as m:
        m.plan(approve=True, reviewer="Avery")
        src.fail_read = KeyboardInterrupt()
        with pytest.raises(KeyboardInterrupt):
            m.run()
        assert m.queue_list() == []
        src.fail_read = None
        assert m.run()["objects"]["contacts"]["written"] == 3  # the next call starts clean


def test_a_callback_re_entering_its_migration_is_refused(tmp_path, hubspot):
    with crmmigrate.Migration(config(tmp_path), source=PeopleSource()) as m:
        m.plan(approve=True, reviewer="Avery")
        with pytest.raises(crmmigrate.InvalidArgumentError, match="in progress"):
            m.run(progress=lambda p: m.status())
        with pytest.raises(crmmigrate.InvalidArgumentError, match="in progress"):
            m.run(progress=lambda p: m.set_merge_rule("contacts", FillLastName()))
        assert m.status()["objects"]["contacts"]["source"] == 3
