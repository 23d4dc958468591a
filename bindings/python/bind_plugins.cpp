// Python subclasses of crmmigrate.Source, Destination, MergeRule, Validator and Normalizer, adapted
// to the C++ interfaces (the same JSON shapes as the C plugins of include/crmmigrate/sys/*.h, as
// dicts). Each adapter method takes the GIL for the Python call only; a Python exception becomes a
// Status (kPlugin, or the code of a crmmigrate.Error the plugin raised on purpose) whose message
// names the plugin and the exception, and is kept to be chained onto what the caller gets.
#include <algorithm>
#include <tuple>

#include "crmmigrate/core/problem.hpp"
#include "py_internal.hpp"

namespace json = boost::json;

namespace cmg::python {

// ---- Failures ----

Failures::~Failures() {
  if (exc_ && Py_IsInitialized()) {
    py::gil_scoped_acquire gil;
    Py_CLEAR(exc_);
  }
}

void Failures::record(const std::string& message, py::handle exc_value, bool stop, bool reraise) {
  if (!any()) {
    message_ = message;
    if (exc_value) exc_ = py::reinterpret_borrow<py::object>(exc_value).release().ptr();
    reraise_ = reraise;
  }
  if (stop) cancel_.store(true, std::memory_order_relaxed);
}

void Failures::reset() {
  Py_CLEAR(exc_);
  message_.clear();
  reraise_ = false;
  cancel_.store(false, std::memory_order_relaxed);
}

namespace {

Status plugin_failure(const std::shared_ptr<Failures>& f, const std::string& who, py::error_already_set& e, bool stop) {
  std::string msg = who + ": " + describe_exception(e);
  // KeyboardInterrupt, SystemExit: not a plugin's failure but a request to stop; the caller gets
  // the exception itself.
  const bool interrupt = !PyErr_GivenExceptionMatches(e.type().ptr(), PyExc_Exception);
  if (f) f->record(msg, e.value(), stop || interrupt, interrupt);
  return Status(code_of_exception(e.value()), msg);
}

Status not_implemented(const std::string& who, const char* method) {
  return Status(Code::kPlugin, who + ": " + method + "() is not implemented by the Python subclass");
}

// Runs `body` (returning Status or Result<T>) with the GIL held; exceptions become Statuses.
template <typename F>
auto with_gil(const std::shared_ptr<Failures>& f, const std::string& who, F&& body) -> decltype(body()) {
  py::gil_scoped_acquire gil;
  try {
    return body();
  } catch (py::error_already_set& e) {
    return plugin_failure(f, who, e, false);
  } catch (const std::exception& e) {  // pybind11 cast errors
    return Status(Code::kPlugin, who + ": " + e.what());
  }
}

std::string str_of(const json::object& o, const char* k) {
  const auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

py::dict read_options_to_py(const ReadOptions& o) {
  py::dict d;
  d["batch_size"] = o.batch_size;
  d["since_updated_at"] = o.since_updated_at ? py::object(py::int_(*o.since_updated_at)) : py::object(py::none());
  d["since_id"] = o.since_id;
  py::list fields;
  for (const auto& f : o.fields) fields.append(f);
  d["fields"] = fields;
  return d;
}

py::list strings_to_py(const std::vector<std::string>& xs) {
  py::list l;
  for (const auto& x : xs) l.append(py::str(x));
  return l;
}

// A Python iterable of records (dicts, or lists of dicts as whole batches) as a RecordReader.
class PyReader final : public RecordReader {
 public:
  PyReader(py::object iter, std::string object, std::string who, ReadOptions opts, std::shared_ptr<Failures> f)
      : iter_(std::move(iter)), object_(std::move(object)), who_(std::move(who)), opts_(std::move(opts)),
        failures_(std::move(f)) {}
  ~PyReader() override {
    if (!Py_IsInitialized()) {
      (void)iter_.release();  // the interpreter is gone: nothing to release
      return;
    }
    py::gil_scoped_acquire gil;
    iter_ = py::object();
  }

  Result<bool> next(RecordBatch& out) override {
    out.clear();
    return with_gil(failures_, who_, [&]() -> Result<bool> {
      // The plugin has no "since" argument: read it all once and serve it from the cursor here.
      if (opts_.since_updated_at) return replay_.next(opts_, [this](RecordBatch& b) { return pull(b); }, out);
      return pull(out);
    });
  }

 private:
  void add(py::handle item, RecordBatch& out) const {
    Record r = record_from_py(item, object_);
    if (!opts_.fields.empty()) {
      json::object kept;
      for (const auto& f : opts_.fields)
        if (const auto* v = r.fields.if_contains(f)) kept[f] = *v;
      r.fields = std::move(kept);
    }
    out.push_back(std::move(r));
  }

  Result<bool> pull(RecordBatch& out) {
    if (done_) return false;
    const std::size_t n = std::max<std::size_t>(opts_.batch_size, 1);
    while (out.size() < n) {
      PyObject* item = PyIter_Next(iter_.ptr());
      if (!item) {
        if (PyErr_Occurred()) throw py::error_already_set();
        done_ = true;
        break;
      }
      auto obj = py::reinterpret_steal<py::object>(item);
      if (PyList_Check(item)) {
        for (auto rec : obj) add(rec, out);
      } else {
        add(obj, out);
      }
    }
    return !out.empty();
  }


  py::object iter_;
  std::string object_;
  std::string who_;
  ReadOptions opts_;
  std::shared_ptr<Failures> failures_;
  bool done_ = false;
  CursorReplay replay_;
};

Result<Schema> schema_from_py(const std::string& who, py::handle h) {
  json::value v = to_json(h, "schema()");
  Schema s;
  std::string err;
  if (!schema_from_json(v, s, err)) return Status(Code::kPlugin, who + ": schema(): " + err);
  return s;
}

Result<std::int64_t> count_from_py(py::handle h) {
  if (h.is_none()) return std::int64_t{-1};
  return h.cast<std::int64_t>();
}

Result<std::unique_ptr<RecordReader>> reader_from_py(const std::shared_ptr<Failures>& f, const std::string& who,
                                                     py::handle iterable, std::string_view object,
                                                     const ReadOptions& opts) {
  py::object it = py::iter(iterable);
  return std::unique_ptr<RecordReader>(new PyReader(std::move(it), std::string(object), who, opts, f));
}

// ---- Source ----

class PySource final : public Source, public PluginBase {
 public:
  Result<Schema> schema() override {
    return with_gil(failures(), who_ + " schema()", [&]() -> Result<Schema> {
      py::function fn = py::get_override(static_cast<const Source*>(this), "schema");
      if (!fn) return not_implemented(who_, "schema");
      return schema_from_py(who_, fn());
    });
  }
  Result<std::int64_t> count(std::string_view object) override {
    std::string w = who_ + " count('" + std::string(object) + "')";
    return with_gil(failures(), w, [&]() -> Result<std::int64_t> {
      py::function fn = py::get_override(static_cast<const Source*>(this), "count");
      if (!fn) return not_implemented(who_, "count");
      return count_from_py(fn(py::str(object.data(), object.size())));
    });
  }
  Result<std::unique_ptr<RecordReader>> read(std::string_view object, const ReadOptions& opts) override {
    std::string w = who_ + " read('" + std::string(object) + "')";
    auto f = failures();
    return with_gil(f, w, [&]() -> Result<std::unique_ptr<RecordReader>> {
      py::function fn = py::get_override(static_cast<const Source*>(this), "read");
      if (!fn) return not_implemented(who_, "read");
      return reader_from_py(f, w, fn(py::str(object.data(), object.size()), read_options_to_py(opts)), object, opts);
    });
  }
  Result<std::optional<Record>> get(std::string_view object, std::string_view id) override {
    std::string w = who_ + " get('" + std::string(object) + "', '" + std::string(id) + "')";
    bool overridden = true;
    auto r = with_gil(failures(), w, [&]() -> Result<std::optional<Record>> {
      py::function fn = py::get_override(static_cast<const Source*>(this), "get");
      if (!fn) {
        overridden = false;
        return std::optional<Record>();
      }
      py::object got = fn(py::str(object.data(), object.size()), py::str(id.data(), id.size()));
      if (got.is_none()) return std::optional<Record>();
      return std::optional<Record>(record_from_py(got, object));
    });
    if (!overridden) return Source::get(object, id);
    return r;
  }

 private:
  std::string who_ = "Python source";
};

// ---- Destination ----

const char* const kOutcomes[] = {"created", "updated", "failed"};

Result<WriteResult> write_result_from_json(const std::string& who, const json::value& v) {
  const auto* o = v.if_object();
  if (!o) return Status(Code::kPlugin, who + ": each write result must be a dict");
  WriteResult r;
  std::string outcome = str_of(*o, "outcome");
  auto it = std::find(std::begin(kOutcomes), std::end(kOutcomes), outcome);
  if (it == std::end(kOutcomes))
    return Status(Code::kPlugin, who + ": write result \"outcome\" must be \"created\", \"updated\" or \"failed\", got \"" +
                                     outcome + "\"");
  r.outcome = static_cast<WriteResult::Outcome>(it - std::begin(kOutcomes));
  r.id = str_of(*o, "id");
  r.message = str_of(*o, "message");
  r.existing_id = str_of(*o, "existing_id");
  if (const auto* s = o->if_contains("status"); s && s->is_int64()) r.status = static_cast<int>(s->get_int64());
  else r.status = r.outcome == WriteResult::Outcome::kCreated ? 201 : r.outcome == WriteResult::Outcome::kUpdated ? 200 : 400;
  if (const auto* b = o->if_contains("retryable"); b && b->is_bool()) r.retryable = b->get_bool();
  if (const auto* b = o->if_contains("outcome_unknown"); b && b->is_bool()) r.outcome_unknown = b->get_bool();
  if (const auto* ra = o->if_contains("retry_after_ms"); ra && ra->is_int64()) r.retry_after_ms = static_cast<int>(ra->get_int64());
  if (const auto* es = o->if_contains("errors"); es && es->is_array())
    for (const auto& e : es->get_array())
      if (const auto* eo = e.if_object())
        r.errors.push_back({str_of(*eo, "field"), str_of(*eo, "value"), str_of(*eo, "code"), str_of(*eo, "message")});
  if (r.outcome != WriteResult::Outcome::kFailed && r.id.empty())
    return Status(Code::kPlugin, who + ": a created or updated write result needs its \"id\"");
  return r;
}

class PyDestination final : public Destination, public PluginBase {
 public:
  Result<Schema> schema() override {
    return with_gil(failures(), who_ + " schema()", [&]() -> Result<Schema> {
      py::function fn = override_of("schema");
      if (!fn) return not_implemented(who_, "schema");
      return schema_from_py(who_, fn());
    });
  }
  Result<std::int64_t> count(std::string_view object) override {
    return with_gil(failures(), who_ + " count('" + std::string(object) + "')", [&]() -> Result<std::int64_t> {
      py::function fn = override_of("count");
      if (!fn) return not_implemented(who_, "count");
      return count_from_py(fn(py::str(object.data(), object.size())));
    });
  }
  Result<std::unique_ptr<RecordReader>> list(std::string_view object, const ReadOptions& opts) override {
    std::string w = who_ + " list('" + std::string(object) + "')";
    auto f = failures();
    return with_gil(f, w, [&]() -> Result<std::unique_ptr<RecordReader>> {
      py::function fn = override_of("list");
      if (!fn) return not_implemented(who_, "list");
      return reader_from_py(f, w, fn(py::str(object.data(), object.size()), read_options_to_py(opts)), object, opts);
    });
  }
  Result<std::vector<Record>> find(std::string_view object, std::string_view field,
                                   const std::vector<std::string>& values) override {
    std::string w = who_ + " find('" + std::string(object) + "', '" + std::string(field) + "')";
    return with_gil(failures(), w, [&]() -> Result<std::vector<Record>> {
      py::function fn = override_of("find");
      if (!fn) return not_implemented(who_, "find");
      py::object got = fn(py::str(object.data(), object.size()), py::str(field.data(), field.size()), strings_to_py(values));
      std::vector<Record> out;
      if (got.is_none()) return out;
      for (auto item : py::iter(got)) out.push_back(record_from_py(item, object));
      return out;
    });
  }
  Result<std::vector<WriteResult>> write(std::string_view object, const std::vector<WriteOp>& ops) override {
    std::string w = who_ + " write('" + std::string(object) + "')";
    return with_gil(failures(), w, [&]() -> Result<std::vector<WriteResult>> {
      py::function fn = override_of("write");
      if (!fn) return not_implemented(who_, "write");
      py::list in;
      for (const auto& op : ops) {
        py::dict d;
        d["kind"] = op.kind == WriteOp::Kind::kUpsert ? "upsert" : "update";
        if (op.kind == WriteOp::Kind::kUpdate) d["id"] = op.id;
        else d["idempotency_key"] = op.idempotency_key;
        d["fields"] = to_py(op.fields);
        in.append(std::move(d));
      }
      json::value got = to_json(fn(py::str(object.data(), object.size()), in), "write()");
      if (!got.is_array()) return Status(Code::kPlugin, w + ": expected a list of write results");
      const auto& arr = got.get_array();
      if (arr.size() != ops.size())
        return Status(Code::kPlugin, w + ": returned " + std::to_string(arr.size()) + " results for " +
                                         std::to_string(ops.size()) + " ops");
      std::vector<WriteResult> results;
      results.reserve(arr.size());
      for (const auto& v : arr) {
        CMG_ASSIGN_OR_RETURN(WriteResult r, write_result_from_json(w, v));
        results.push_back(std::move(r));
      }
      return results;
    });
  }
  Result<std::vector<std::optional<Record>>> read(std::string_view object, const std::vector<std::string>& ids) override {
    std::string w = who_ + " read('" + std::string(object) + "')";
    return with_gil(failures(), w, [&]() -> Result<std::vector<std::optional<Record>>> {
      py::function fn = override_of("read");
      if (!fn) return not_implemented(who_, "read");
      py::object got = fn(py::str(object.data(), object.size()), strings_to_py(ids));
      std::vector<std::optional<Record>> out;
      for (auto item : py::iter(got)) {
        if (item.is_none()) out.emplace_back();
        else out.emplace_back(record_from_py(item, object));
      }
      if (out.size() != ids.size())
        return Status(Code::kPlugin, w + ": returned " + std::to_string(out.size()) + " entries for " +
                                         std::to_string(ids.size()) + " ids");
      return out;
    });
  }
  // No error channel: a failing quota() is reported as unraisable and the defaults apply.
  Quota quota() const override {
    py::gil_scoped_acquire gil;
    Quota q;
    try {
      py::function fn = py::get_override(static_cast<const Destination*>(this), "quota");
      if (!fn) return q;
      py::object got = fn();
      if (got.is_none()) return q;
      json::object o = to_json_object(got, "quota()");
      auto num = [&](const char* k, auto& field) {
        if (const auto* v = o.if_contains(k); v && v->is_int64()) field = static_cast<std::decay_t<decltype(field)>>(v->get_int64());
      };
      num("burst_requests", q.burst_requests);
      num("burst_window_ms", q.burst_window_ms);
      num("daily_requests", q.daily_requests);
      num("max_batch", q.max_batch);
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("crmmigrate: Python destination quota()");
    }
    return q;
  }

 private:
  py::function override_of(const char* name) const { return py::get_override(static_cast<const Destination*>(this), name); }
  std::string who_ = "Python destination";
};

// ---- MergeRule ----

class PyMergeRule final : public MergeRule, public PluginBase {
 public:
  std::string name() const override {
    py::gil_scoped_acquire gil;
    try {
      py::function fn = py::get_override(static_cast<const MergeRule*>(this), "name");
      if (fn) return fn().cast<std::string>();
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("crmmigrate: Python merge rule name()");
    } catch (const std::exception&) {  // name() returned something else than str: use the class name
    }
    return py_class_name();
  }

  // The pipeline prefixes "merge rule '<name>' failed on <object>/<id>: ".
  Status merge(const MergeInput& input, MergeOutcome* output) const override {
    if (!output) return invalid_argument("merge: output is null");
    return with_gil(failures(), "Python merge rule", [&]() -> Status {
      py::function fn = py::get_override(static_cast<const MergeRule*>(this), "merge");
      if (!fn) return Status(Code::kPlugin, "merge() is not implemented by the Python subclass");
      json::value got = to_json(fn(record_to_py(input.source), record_to_py(input.destination)), "merge()");
      if (got.is_null()) return Status::ok();  // None: merged, nothing changes
      return merge_outcome_from_json(got, py_class_name(), output);
    });
  }

 private:
  std::string py_class_name() const {
    py::handle self = py::detail::get_object_handle(static_cast<const MergeRule*>(this), py::detail::get_type_info(typeid(MergeRule)));
    if (!self) return "python_merge_rule";
    return py::str(py::type::handle_of(self).attr("__name__"));
  }
};

// ---- Validator ----

// No error channel in RecordValidator: a failing Python validator queues the record (so nothing
// unchecked is written) and stops the running call, which then raises PluginError.
class PyValidator final : public RecordValidator, public PluginBase {
 public:
  void validate(const ObjectSchema& object, const Schema&, const json::object& fields, bool is_create,
                std::vector<Problem>& problems) const override {
    py::gil_scoped_acquire gil;
    std::string who = "Python validator '" + class_name() + "'";
    std::string failure;
    try {
      py::function fn = py::get_override(static_cast<const RecordValidator*>(this), "validate");
      if (!fn) {
        failure = who + ": validate() is not implemented by the Python subclass";
      } else {
        py::object got = fn(object.name, to_py(fields), is_create);
        if (!got.is_none()) failure = add_problems(who, to_json(got, "validate()"), problems);
      }
    } catch (py::error_already_set& e) {
      Status st = plugin_failure(failures(), who, e, true);
      problems.push_back({Reason::kInvalidValue, "", "", "plugin_error", st.message(), ""});
      return;
    } catch (const std::exception& e) {
      failure = who + ": " + e.what();
    }
    if (failure.empty()) return;
    problems.push_back({Reason::kInvalidValue, "", "", "plugin_error", failure, ""});
    if (auto f = failures()) f->record(failure, py::handle(), true);
  }

 private:
  std::string class_name() const {
    py::handle self = py::detail::get_object_handle(static_cast<const RecordValidator*>(this),
                                                     py::detail::get_type_info(typeid(RecordValidator)));
    return self ? std::string(py::str(py::type::handle_of(self).attr("__name__"))) : std::string("validator");
  }

  std::string add_problems(const std::string& who, const json::value& v, std::vector<Problem>& problems) const {
    if (!v.is_array()) return who + ": validate() must return a list of problem dicts or None";
    for (const auto& pv : v.get_array()) {
      const auto* po = pv.if_object();
      if (!po) return who + ": each problem must be a dict";
      Problem p;
      std::string reason = str_of(*po, "reason");
      if (!reason.empty() && !reason_from_name(reason, p.reason)) return who + ": unknown queue reason \"" + reason + "\"";
      p.field = str_of(*po, "field");
      p.value = str_of(*po, "value");
      p.rule = str_of(*po, "rule");
      if (p.rule.empty()) p.rule = "custom:" + class_name();
      p.message = str_of(*po, "message");
      p.suggestion = str_of(*po, "suggestion");
      problems.push_back(std::move(p));
    }
    return {};
  }
};

// ---- Normalizer ----

// A failing Python normaliser yields no key for the value (never a false match) and stops the call.
class PyNormalizer final : public Normalizer, public PluginBase {
 public:
  std::optional<std::string> normalize(std::string_view value) const override {
    py::gil_scoped_acquire gil;
    std::string who = "Python normalizer";
    try {
      py::function fn = py::get_override(static_cast<const Normalizer*>(this), "normalize");
      if (!fn) {
        if (auto f = failures()) f->record(who + ": normalize() is not implemented by the Python subclass", py::handle(), true);
        return std::nullopt;
      }
      py::object got = fn(py::str(value.data(), value.size()));
      if (got.is_none()) return std::nullopt;
      std::string s = got.cast<std::string>();
      if (s.empty()) return std::nullopt;
      return s;
    } catch (py::error_already_set& e) {
      (void)plugin_failure(failures(), who, e, true);
    } catch (const std::exception& e) {
      if (auto f = failures()) f->record(who + ": normalize() must return str or None (" + e.what() + ")", py::handle(), true);
    }
    return std::nullopt;
  }
};

[[noreturn]] void abstract_method(const char* cls, const char* method) {
  PyErr_SetString(PyExc_NotImplementedError,
                  (std::string(cls) + "." + method + "() must be implemented by the subclass").c_str());
  throw py::error_already_set();
}

}  // namespace

void bind_plugins(py::module_& m) {
  py::class_<Source, PySource, std::shared_ptr<Source>>(m, "Source", R"doc(
Base class of custom sources written in Python. Subclass it, call ``super().__init__()``, and pass an
instance as ``Migration(config, source=...)``; it replaces the config's "source" connector.

Implement:
  schema() -> dict     {"objects": {name: {"fields": [{"name", "type", "required"?, ...}],
                        "id_property"?}}, "users": [{"id", "email", "name", "active"}]}
  count(object) -> int number of records of ``object`` now (-1 or None: cannot tell)
  read(object, options) -> iterable of records, ordered by id. A record is a dict
                        {"id": str|int, "fields": dict, "updated_at": int (Unix ms)?}; an item may
                        also be a list of records (a whole batch). ``options`` is a dict with
                        "batch_size", "since_updated_at", "since_id" and "fields" (the library
                        itself keeps and orders the records changed since its cursor).
Optional:
  get(object, id) -> dict | None   one record (None: deleted)

Methods are called with the GIL held, from the thread running the migration call. An exception
raised here fails that call with crmmigrate.PluginError (the exception is its __cause__), or with
the matching error when it is a crmmigrate.Error (e.g. UnavailableError).)doc")
      .def(py::init<>())
      .def("schema", [](Source&) -> py::object { abstract_method("Source", "schema"); },
           "The source's objects, fields and users as a dict (see the class docstring).")
      .def("count", [](Source&, const std::string&) -> py::object { abstract_method("Source", "count"); },
           py::arg("object"), "Number of records of `object` the source holds now; -1 or None when unknown.")
      .def("read", [](Source&, const std::string&, py::dict) -> py::object { abstract_method("Source", "read"); },
           py::arg("object"), py::arg("options"), "An iterable of record dicts (or lists of them), ordered by id.")
      .def("get", [](Source&, const std::string&, const std::string&) -> py::object { abstract_method("Source", "get"); },
           py::arg("object"), py::arg("id"), "Optional: one record dict by id, or None when it was deleted.");

  py::class_<Destination, PyDestination, std::shared_ptr<Destination>>(m, "Destination", R"doc(
Base class of custom destinations written in Python. Subclass it, call ``super().__init__()``, and
pass an instance as ``Migration(config, destination=...)``.

Implement:
  schema() -> dict                 as Source.schema(); "id_property" names the unique field used for
                                   idempotent upserts
  count(object) -> int
  list(object, options) -> iterable of records already in the destination (for dedup)
  find(object, field, values) -> list of records whose ``field`` equals one of ``values``
  write(object, ops) -> list of results, one per op, in order. An op is
        {"kind": "upsert", "idempotency_key": str, "fields": dict} (create, or update the record
        whose id_property equals the key) or {"kind": "update", "id": str, "fields": dict}.
        A result is {"outcome": "created"|"updated"|"failed", "id"?, "status"?, "retryable"?,
        "existing_id"?, "errors"?: [{"field", "value", "code", "message"}], "message"?,
        "retry_after_ms"?, "outcome_unknown"?}.
  read(object, ids) -> list with one record dict or None per id
Optional:
  quota() -> dict  {"burst_requests", "burst_window_ms", "daily_requests", "max_batch"}

Raise crmmigrate.UnavailableError for a transient failure of a whole call; any other exception
fails the migration call with crmmigrate.PluginError chained to it.)doc")
      .def(py::init<>())
      .def("schema", [](Destination&) -> py::object { abstract_method("Destination", "schema"); })
      .def("count", [](Destination&, const std::string&) -> py::object { abstract_method("Destination", "count"); },
           py::arg("object"))
      .def("list", [](Destination&, const std::string&, py::dict) -> py::object { abstract_method("Destination", "list"); },
           py::arg("object"), py::arg("options"))
      .def("find",
           [](Destination&, const std::string&, const std::string&, py::list) -> py::object {
             abstract_method("Destination", "find");
           },
           py::arg("object"), py::arg("field"), py::arg("values"))
      .def("write", [](Destination&, const std::string&, py::list) -> py::object { abstract_method("Destination", "write"); },
           py::arg("object"), py::arg("ops"))
      .def("read", [](Destination&, const std::string&, py::list) -> py::object { abstract_method("Destination", "read"); },
           py::arg("object"), py::arg("ids"))
      .def("quota", [](Destination&) -> py::object { return py::none(); },
           "Optional: the platform's request limits as a dict; None means no limits.");

  py::class_<MergeRule, PyMergeRule, std::shared_ptr<MergeRule>>(m, "MergeRule", R"doc(
Base class of merge rules written in Python: when dedup matched a source record to exactly one
destination record, the rule decides what changes on the destination. Register it with
``Migration.set_merge_rule(object, rule)``.

Implement:
  merge(source, destination) -> dict | None
      ``source`` (already mapped: destination field names) and ``destination`` are record dicts
      {"object", "id", "updated_at", "fields"}. Return
      {"kind": "merged", "changes": {field: new value}} (only the fields that change; None means
      merged with no changes), {"kind": "skip", "reason": str} or
      {"kind": "conflict", "reason": str, "conflicts": [{"field", "source", "destination"}]}
      (queued as merge_conflict). "rules_applied": [str] is recorded in the audit log.
Optional:
  name() -> str   recorded with each decision (default: the class name)

An exception fails the run with crmmigrate.PluginError naming the rule and the record; the record's
batch is not committed, so nothing is queued or written for it.)doc")
      .def(py::init<>())
      .def("merge", [](MergeRule&, py::dict, py::dict) -> py::object { abstract_method("MergeRule", "merge"); },
           py::arg("source"), py::arg("destination"))
      .def("name", [](MergeRule& r) { return r.name(); }, "Name recorded in the audit log (default: the class name).");

  py::class_<RecordValidator, PyValidator, std::shared_ptr<RecordValidator>>(m, "Validator", R"doc(
Base class of validators written in Python, run after the schema validator on every record about
to be written. Register with ``Migration.add_validator(validator, object="")``.

Implement:
  validate(object, fields, is_create) -> list of problems | None
      ``object`` is the destination object name, ``fields`` the destination fields to be sent,
      ``is_create`` False for updates (merges). A problem is a dict {"reason"? (a queue reason,
      default "invalid_value"), "field", "value", "rule", "message", "suggestion"?}; a record with
      problems is queued with them instead of being written.

An exception queues the record (nothing unchecked is written) and stops the call with
crmmigrate.PluginError chained to it.)doc")
      .def(py::init<>())
      .def("validate",
           [](RecordValidator&, const std::string&, py::dict, bool) -> py::object { abstract_method("Validator", "validate"); },
           py::arg("object"), py::arg("fields"), py::arg("is_create"));

  py::class_<Normalizer, PyNormalizer, std::shared_ptr<Normalizer>>(m, "Normalizer", R"doc(
Base class of dedup key normalisers written in Python. Register with
``Migration.set_normalizer(object, key, normalizer)`` for a key named in the object's "dedup" list.

Implement:
  normalize(value: str) -> str | None   the form compared for equality; None (or "") when the value
                                        cannot serve as a key. Must be pure.

An exception gives no key for that value (never a false match) and stops the call with
crmmigrate.PluginError chained to it.)doc")
      .def(py::init<>())
      .def("normalize", [](Normalizer&, const std::string&) -> py::object { abstract_method("Normalizer", "normalize"); },
           py::arg("value"));
}

}  // namespace cmg::python
