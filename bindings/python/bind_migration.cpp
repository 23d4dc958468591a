// crmmigrate.Migration: a context manager over cmg::Migration. Reports come back as dicts (the
// JSON of docs/json.md); every call that may block or call plugins releases the GIL.
#include <atomic>
#include <filesystem>
#include <optional>

#include "crmmigrate/core/config.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "py_internal.hpp"

namespace json = boost::json;

namespace cmg::python {

namespace {

// A Python callable kept by C++ code that may drop it without the GIL.
std::shared_ptr<py::object> keep(py::object o) {
  return std::shared_ptr<py::object>(new py::object(std::move(o)), [](py::object* p) {
    if (!Py_IsInitialized()) return;
    py::gil_scoped_acquire gil;
    delete p;
  });
}

class PyMigration {
 public:
  PyMigration(py::object config, py::object source, py::object destination, py::object base_dir, py::object state_dir) {
    MigrationConfig cfg = load(config, base_dir);
    if (!state_dir.is_none())
      cfg.state_dir = std::filesystem::absolute(py::str(state_dir).cast<std::string>()).lexically_normal().string();
    std::shared_ptr<Source> src;
    std::shared_ptr<Destination> dst;
    if (!source.is_none()) {
      src = hold<Source>(source);
      attach(src, failures_);
    }
    if (!destination.is_none()) {
      dst = hold<Destination>(destination);
      attach(dst, failures_);
    }
    failures_->reset();
    Result<std::unique_ptr<Migration>> r = [&] {
      py::gil_scoped_release release;
      return Migration::open(std::move(cfg), std::move(src), std::move(dst));
    }();
    finish(r.status());
    m_ = std::move(r).value();
  }

  void close() {
    if (!m_) return;
    if (busy_) raise_status(invalid_argument("Migration.close: a call on this migration is in progress"));
    failures_->reset();
    std::unique_ptr<Migration> m = std::move(m_);
    // Closing drops the plugins and waits for nothing else; their Python references are released
    // by their deleters, which take the GIL themselves.
    py::gil_scoped_release release;
    m.reset();
  }
  bool closed() const { return !m_; }

  py::dict plan(bool approve, const std::string& reviewer) {
    if (approve && reviewer.empty())
      raise_status(invalid_argument("plan: approving needs a reviewer (plan(approve=True, reviewer=NAME))"));
    return to_py(call<json::object>([&] { return m().plan(approve, reviewer); }));
  }

  using RunFn = Result<Report> (Migration::*)(const RunOptions&);
  py::dict run_like(RunFn fn, bool dry_run, const std::string& object, std::optional<std::int64_t> limit,
                    bool accept_counts, bool ack_halt, const std::string& reviewer, py::object progress) {
    RunOptions opts;
    opts.dry_run = dry_run;
    opts.only_object = object;
    opts.limit = limit;
    opts.accept_counts = accept_counts;
    opts.ack_halt = ack_halt;
    opts.reviewer = reviewer;
    return run_with(fn, opts, std::move(progress));
  }

  py::dict status() {
    return to_py(call<Report>([&] { return m().status(); }).to_json());
  }
  py::dict reconcile(py::object progress) { return run_with(&Migration::reconcile, RunOptions{}, std::move(progress)); }

  py::list queue_list(const QueueFilter& f, std::size_t offset, std::optional<std::size_t> limit) {
    auto items = call<std::vector<json::object>>([&] { return m().queue_list(f, offset, limit ? *limit : SIZE_MAX); });
    py::list out;
    for (const auto& i : items) out.append(to_py(i));
    return out;
  }

  py::dict queue_show(const std::string& id) {
    if (id.empty()) raise_status(invalid_argument("queue_show: an item id (\"contacts/123\") is required"));
    for (const char* st : {"", "resolved", "skipped"}) {
      QueueFilter f;
      f.id = id;
      f.status = st;
      auto items = call<std::vector<json::object>>([&] { return m().queue_list(f, 0, 1); });
      if (!items.empty()) return to_py(items.front());
    }
    raise_status(not_found("queue_show: no queue item '" + id + "'"));
  }

  std::int64_t queue_fix(const QueueFilter& f, py::handle set, const std::string& reviewer, const std::string& note) {
    if (reviewer.empty()) raise_status(invalid_argument("queue_fix: a reviewer is required"));
    json::object fields = to_json_object(set, "set");
    return call<std::int64_t>([&] { return m().queue_fix(f, fields, reviewer, note); });
  }

  std::int64_t queue_skip(const QueueFilter& f, const std::string& reviewer, const std::string& note) {
    if (reviewer.empty()) raise_status(invalid_argument("queue_skip: a reviewer is required"));
    if (note.empty()) raise_status(invalid_argument("queue_skip: a note is required"));
    return call<std::int64_t>([&] { return m().queue_skip(f, reviewer, note); });
  }

  // The C++ API pushes events inside one read transaction: take that snapshot (GIL released), then
  // hand the events out one dict at a time.
  std::shared_ptr<std::vector<json::object>> audit(const std::string& record) {
    auto events = std::make_shared<std::vector<json::object>>();
    auto r = call<bool>([&]() -> Result<bool> {
      Status st = m().audit(record, [&](const json::object& e) {
        events->push_back(e);
        return true;
      });
      if (!st.is_ok()) return st;
      return true;
    });
    (void)r;
    return events;
  }

  void set_merge_rule(const std::string& object, py::handle rule) {
    auto r = hold<MergeRule>(rule);
    attach(r, failures_);
    if (Status st = idle().set_merge_rule(object, std::move(r)); !st.is_ok()) raise_status(st);
  }
  void add_validator(py::handle validator, const std::string& object) {
    auto v = hold<RecordValidator>(validator);
    attach(v, failures_);
    if (Status st = idle().add_validator(object, std::move(v)); !st.is_ok()) raise_status(st);
  }
  void set_normalizer(const std::string& object, const std::string& key, py::handle normalizer) {
    auto n = hold<Normalizer>(normalizer);
    attach(n, failures_);
    if (Status st = idle().set_normalizer(object, key, std::move(n)); !st.is_ok()) raise_status(st);
  }

  // An alert is a notification: an exception in the callback is reported as unraisable and the
  // call goes on.
  void set_alert_callback(py::object cb) {
    if (cb.is_none()) {
      idle().set_alert_callback(nullptr);
      return;
    }
    auto held = keep(std::move(cb));
    idle().set_alert_callback([held](const Alert& a) {
      py::gil_scoped_acquire gil;
      try {
        py::dict d;
        d["kind"] = a.kind;
        d["object"] = a.object;
        d["message"] = a.message;
        (*held)(d);
      } catch (py::error_already_set& e) {
        e.discard_as_unraisable("crmmigrate alert callback");
      }
    });
  }

  std::string name() { return m().config().name; }
  std::string state_dir() { return m().config().state_dir; }

 private:
  static MigrationConfig load(py::handle config, py::handle base_dir) {
    Result<MigrationConfig> cfg = Status(Code::kInternal, "unset");
    if (PyDict_Check(config.ptr())) {
      std::string text = json::serialize(to_json_object(config, "config"));
      std::string base = base_dir.is_none() ? std::filesystem::current_path().string()
                                            : py::str(base_dir).cast<std::string>();
      py::gil_scoped_release release;
      cfg = parse_config(text, "config", base);
    } else {
      py::object os = py::module_::import("os");
      std::string path = os.attr("fspath")(config).cast<std::string>();
      py::gil_scoped_release release;
      cfg = load_config(path);
    }
    if (!cfg.is_ok()) raise_status(cfg.status());
    return std::move(cfg).value();
  }

  Migration& m() {
    if (!m_) raise_status(invalid_argument("the migration is closed"));
    return *m_;
  }
  // For changes to the migration (plugins, callbacks): refused while a call runs.
  Migration& idle() {
    Migration& mig = m();
    if (busy_) raise_status(invalid_argument("cannot change plugins while a call on this Migration is in progress"));
    return mig;
  }

  // Raises what the call (or a plugin during it) produced; returns when all is well. The recorded
  // exception is taken out first: a traceback kept here could hold this object alive through a
  // cycle Python's collector cannot see.
  void finish(const Status& st) {
    const bool stop = failures_->stop_requested();
    const bool reraise = failures_->reraise();
    const std::string message = failures_->message();
    py::object exc = failures_->take_exception();
    failures_->reset();
    if (stop) {
      if (reraise && exc) {
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
        throw py::error_already_set();
      }
      raise_status(Status(Code::kPlugin, message), exc);
    }
    if (!st.is_ok()) raise_status(st, exc);
  }

  // One call at a time per object (cmg::Migration is not thread-safe, and a callback re-entering
  // the same object mid-run would corrupt it): a second concurrent call is refused.
  template <typename T, typename F>
  T call(F&& body) {
    Migration& mig = m();
    (void)mig;
    if (busy_.exchange(true))
      raise_status(invalid_argument("another call on this Migration is in progress (use one Migration object per "
                                    "thread, and do not call it from its own callbacks or plugins)"));
    struct Idle {
      std::atomic<bool>& b;
      ~Idle() { b = false; }
    } idle{busy_};
    failures_->reset();
    Result<T> r = [&]() -> Result<T> {
      py::gil_scoped_release release;
      return body();
    }();
    finish(r.status());
    return std::move(r).value();
  }

  py::dict run_with(RunFn fn, RunOptions opts, py::object progress) {
    auto f = failures_;
    if (!progress.is_none()) {
      auto held = keep(std::move(progress));
      opts.progress = [held, f](const Progress& p) {
        if (f->stop_requested()) return;
        py::gil_scoped_acquire gil;
        try {
          py::dict d;
          d["object"] = p.object;
          d["phase"] = p.phase;
          d["done"] = p.done;
          d["total"] = p.total;
          (*held)(d);
        } catch (py::error_already_set& e) {
          f->record("progress callback: " + describe_exception(e), e.value(), true, true);
        }
      };
    }
    // Polled between batches: a plugin that asked to stop, or Ctrl-C (KeyboardInterrupt).
    opts.cancelled = [f] {
      if (f->stop_requested()) return true;
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) {
        py::error_already_set e;
        f->record("interrupted: " + describe_exception(e), e.value(), true, true);
        return true;
      }
      return false;
    };
    Migration& mig = m();
    Report report = call<Report>([&] { return (mig.*fn)(opts); });
    return to_py(report.to_json());
  }

  std::unique_ptr<Migration> m_;
  std::shared_ptr<Failures> failures_ = std::make_shared<Failures>();
  std::atomic<bool> busy_{false};
};

QueueFilter make_filter(const std::string& id, const std::string& reason, const std::string& object,
                        const std::string& status, const std::string& field, const std::string& text) {
  QueueFilter f;
  f.id = id;
  f.reason = reason;
  f.object = object;
  f.status = status;
  f.field = field;
  f.text = text;
  return f;
}

struct AuditIterator {
  std::shared_ptr<std::vector<json::object>> events;
  std::size_t next = 0;
};

}  // namespace

void bind_migration(py::module_& m) {
  py::class_<AuditIterator>(m, "AuditIterator",
                            "Audit events (dicts, oldest first) from a snapshot taken when audit() was called.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__",
           [](AuditIterator& it) -> py::dict {
             if (it.next >= it.events->size()) throw py::stop_iteration();
             // Each event is handed out once: free it as it goes.
             json::object e = std::move((*it.events)[it.next++]);
             return to_py(e);
           })
      .def("__length_hint__", [](const AuditIterator& it) { return it.events->size() - it.next; });

  const char* run_doc = R"doc(Runs (or resumes) the migration and returns its report as a dict:
{"state": "complete"|"incomplete"|"halted"|"paused"|"running", "complete": bool,
 "objects": {name: {"source", "written", "merged", "queued", "skipped", "pending"}}, "queue_open",
 "readback_mismatches", "discrepancies", "alerts", "message"} (docs/json.md). A halt or a pause
is a state of the report, not an exception.

dry_run: extract -> map -> dedup -> validate only, in scratch state. object: only this config
object. limit: at most this many records written by this call. accept_counts / ack_halt (with
reviewer): continue after a count-mismatch pause / an error-rate halt. progress: called with
{"object", "phase", "done", "total"}; an exception in it stops the call and is re-raised.
Ctrl-C stops the call between batches (KeyboardInterrupt). The GIL is released while it runs.

Raises LockedError when another run holds the lock, InvalidArgumentError without a matching plan
sign-off, PluginError when a Python plugin raised (chained to its exception).)doc";

  py::class_<PyMigration>(m, "Migration", R"doc(
One configured migration over its durable state (an LMDB environment). Use it as a context manager:

    with crmmigrate.Migration("migration.json") as m:
        m.plan(approve=True, reviewer="Avery")
        report = m.run()

``config`` is a path to a migration config file, or the config itself as a dict (relative paths in
it are resolved against ``base_dir``, default: the current directory). ``source`` /
``destination`` replace the configured connectors with a crmmigrate.Source / Destination subclass
instance. ``state_dir`` overrides the config's "state" directory.

One Migration is used by one thread at a time. Several processes may open the same migration;
only one of them may run/reprocess/delta at a time (LockedError for the others).)doc")
      .def(py::init<py::object, py::object, py::object, py::object, py::object>(), py::arg("config"), py::kw_only(),
           py::arg("source") = py::none(), py::arg("destination") = py::none(), py::arg("base_dir") = py::none(),
           py::arg("state_dir") = py::none())
      .def("close", &PyMigration::close, "Closes the state and releases the plugins. Idempotent.")
      .def_property_readonly("closed", &PyMigration::closed)
      .def("__enter__", [](py::object self) { return self; })
      .def(
          "__exit__", [](PyMigration& self, py::handle, py::handle, py::handle) { self.close(); }, py::arg("exc_type"),
          py::arg("exc_value"), py::arg("traceback"))
      .def_property_readonly("name", &PyMigration::name, "The config's migration name.")
      .def_property_readonly("state_dir", &PyMigration::state_dir, "The state directory (absolute).")
      .def("plan", &PyMigration::plan, py::kw_only(), py::arg("approve") = false, py::arg("reviewer") = "",
           R"doc(The coverage report as a dict (zero writes to the destination): per object the source count,
mapped/dropped fields, translations, owners, required fields, expected queue items, and the
"blocking" gaps. With approve=True, records a sign-off by ``reviewer`` of this config + schemas
(refused with InvalidArgumentError while the plan has blocking gaps).)doc")
      .def(
          "run",
          [](PyMigration& self, bool dry_run, const std::string& object, std::optional<std::int64_t> limit,
             bool accept_counts, bool ack_halt, const std::string& reviewer, py::object progress) {
            return self.run_like(&Migration::run, dry_run, object, limit, accept_counts, ack_halt, reviewer,
                                 std::move(progress));
          },
          py::kw_only(), py::arg("dry_run") = false, py::arg("object") = "", py::arg("limit") = py::none(),
          py::arg("accept_counts") = false, py::arg("ack_halt") = false, py::arg("reviewer") = "",
          py::arg("progress") = py::none(), run_doc)
      .def(
          "reprocess",
          [](PyMigration& self, const std::string& object, std::optional<std::int64_t> limit, const std::string& reviewer,
             py::object progress) {
            return self.run_like(&Migration::reprocess, false, object, limit, false, false, reviewer, std::move(progress));
          },
          py::kw_only(), py::arg("object") = "", py::arg("limit") = py::none(), py::arg("reviewer") = "",
          py::arg("progress") = py::none(),
          "Reprocesses fixed queue items (and children whose parent is resolved) through map -> dedup ->\n"
          "validate -> write, never the whole batch. Returns the report dict, as run().")
      .def(
          "delta",
          [](PyMigration& self, const std::string& object, std::optional<std::int64_t> limit, bool accept_counts,
             bool ack_halt, const std::string& reviewer, py::object progress) {
            return self.run_like(&Migration::delta, false, object, limit, accept_counts, ack_halt, reviewer,
                                 std::move(progress));
          },
          py::kw_only(), py::arg("object") = "", py::arg("limit") = py::none(), py::arg("accept_counts") = false,
          py::arg("ack_halt") = false, py::arg("reviewer") = "", py::arg("progress") = py::none(),
          "The delta pass: applies source records changed since the main extraction; a record changed on\n"
          "both sides is queued as both_sides_changed, one deleted in the source as deleted_in_source.\n"
          "Returns the report dict, as run().")
      .def("status", &PyMigration::status, "Counts from the state (no source or destination calls), as a report dict.")
      .def("reconcile", &PyMigration::reconcile, py::kw_only(), py::arg("progress") = py::none(),
           "The accounting equation per object and a read-back of every confirmed record, as a report dict\n"
           "whose \"discrepancies\" list every discrepant record. \"complete\" is True only when the\n"
           "equation holds, no queue item is open and the read-back shows no difference.")
      .def(
          "queue_list",
          [](PyMigration& self, const std::string& id, const std::string& reason, const std::string& object,
             const std::string& status, const std::string& field, const std::string& text, std::size_t offset,
             std::optional<std::size_t> limit) {
            return self.queue_list(make_filter(id, reason, object, status, field, text), offset, limit);
          },
          py::kw_only(), py::arg("id") = "", py::arg("reason") = "", py::arg("object") = "", py::arg("status") = "",
          py::arg("field") = "", py::arg("text") = "", py::arg("offset") = 0, py::arg("limit") = py::none(),
          "Queue items (dicts) matching the filter, oldest first. status \"\" means open and fixed items;\n"
          "reason is a queue reason (\"unmapped_value\", \"owner_unprovisioned\", ...).")
      .def("queue_show", &PyMigration::queue_show, py::arg("id"),
           "One queue item by id (\"contacts/123\"), whatever its status. NotFoundError when there is none.")
      .def(
          "queue_fix",
          [](PyMigration& self, py::dict set, const std::string& reviewer, const std::string& note, const std::string& id,
             const std::string& reason, const std::string& object, const std::string& field, const std::string& text) {
            return self.queue_fix(make_filter(id, reason, object, "", field, text), set, reviewer, note);
          },
          py::arg("set"), py::kw_only(), py::arg("reviewer"), py::arg("note") = "", py::arg("id") = "",
          py::arg("reason") = "", py::arg("object") = "", py::arg("field") = "", py::arg("text") = "",
          "Records a correction ``set`` ({destination field: value}) on every matching open item, applied\n"
          "by the next reprocess(). Returns how many items were fixed.")
      .def(
          "queue_skip",
          [](PyMigration& self, const std::string& reviewer, const std::string& note, const std::string& id,
             const std::string& reason, const std::string& object, const std::string& field, const std::string& text) {
            return self.queue_skip(make_filter(id, reason, object, "", field, text), reviewer, note);
          },
          py::kw_only(), py::arg("reviewer"), py::arg("note"), py::arg("id") = "", py::arg("reason") = "",
          py::arg("object") = "", py::arg("field") = "", py::arg("text") = "",
          "Marks every matching open/fixed item skipped by ``reviewer`` with ``note`` (required).\n"
          "Returns how many items were skipped.")
      .def(
          "audit",
          [](PyMigration& self, const std::string& record) {
            return AuditIterator{self.audit(record), 0};
          },
          py::arg("record") = "",
          "An iterator over audit events (dicts, oldest first), optionally of one record (\"contacts/123\"\n"
          "or a bare source id). The events are a snapshot taken when audit() is called.")
      .def("set_merge_rule", &PyMigration::set_merge_rule, py::arg("object"), py::arg("rule"),
           "Replaces the merge rule of config object ``object`` with a crmmigrate.MergeRule instance.\n"
           "NotFoundError for an unknown object. Register plugins before plan/run.")
      .def("add_validator", &PyMigration::add_validator, py::arg("validator"), py::arg("object") = "",
           "Adds a crmmigrate.Validator run after the schema validator on every record of ``object``\n"
           "(\"\" = all objects).")
      .def("set_normalizer", &PyMigration::set_normalizer, py::arg("object"), py::arg("key"), py::arg("normalizer"),
           "Replaces the normaliser of dedup key ``key`` of ``object`` with a crmmigrate.Normalizer.\n"
           "NotFoundError for an unknown object or key.")
      .def("set_alert_callback", &PyMigration::set_alert_callback, py::arg("callback"),
           "Alerts (count mismatch, halt, pause) are passed to ``callback({\"kind\", \"object\", \"message\"})``\n"
           "as they are raised (None removes it). An exception in the callback is reported as unraisable.");
}

}  // namespace cmg::python
