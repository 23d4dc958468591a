// Custom C sources and destinations: each method turns its C++ arguments into C strings/JSON,
// calls the vtable, and turns the plugin's JSON (or its failure) back into Results. Nothing here
// throws into the pipeline: every method catches and returns a Status.
#include "capi/connectors_c.hpp"

#include <algorithm>
#include <tuple>

namespace json = boost::json;

namespace cmg::capi {
namespace {

template <typename F>
auto plugin_guard(const std::string& who, F&& body) -> decltype(body()) {
  try {
    clear_error();
    return body();
  } catch (const std::bad_alloc&) {
    return Status(Code::kInternal, who + ": out of memory");
  } catch (const std::exception& e) {
    return Status(Code::kInternal, who + ": " + e.what());
  } catch (...) {
    return Status(Code::kInternal, who + ": unknown exception");
  }
}

Status plugin_error(const std::string& who, const std::string& message) { return Status(Code::kPlugin, who + ": " + message); }

Result<json::array> parse_array(const std::string& who, std::string_view text, const char* what) {
  json::value v;
  std::string err;
  if (!parse_json(text, v, err)) return plugin_error(who, std::string(what) + ": " + err);
  if (!v.is_array()) return plugin_error(who, std::string(what) + ": expected a JSON array");
  return std::move(v.get_array());
}

Result<Schema> schema_from_plugin(const std::string& who, int (*fn)(cmg_buf*, void*), void* ud) {
  ScopedBuf out;
  if (int rc = fn(&out.b, ud)) return Status(Code::kPlugin, plugin_message(who + " schema", rc, nullptr));
  json::value v;
  std::string err;
  if (!parse_json(out.view(), v, err)) return plugin_error(who, "schema: " + err);
  Schema s;
  if (!schema_from_json(v, s, err)) return plugin_error(who, "schema: " + err);
  return s;
}

Result<std::int64_t> count_from_plugin(const std::string& who, int (*fn)(std::int64_t*, const char*, void*),
                                       std::string_view object, void* ud) {
  std::int64_t n = -1;
  std::string obj(object);
  if (int rc = fn(&n, obj.c_str(), ud)) return Status(Code::kPlugin, plugin_message(who + " count", rc, nullptr));
  return n;
}

json::array strings_to_json(const std::vector<std::string>& xs) {
  json::array a;
  for (const auto& x : xs) a.emplace_back(x);
  return a;
}

// A cmg_record_stream as a RecordReader. Owns the stream (released exactly once) and keeps the
// plugin's user data alive while the stream exists.
class CStreamReader final : public RecordReader {
 public:
  CStreamReader(cmg_record_stream s, std::string object, std::string who, std::shared_ptr<UserData> ud,
                ReadOptions opts)
      : s_(s), object_(std::move(object)), who_(std::move(who)), ud_(std::move(ud)), opts_(std::move(opts)) {}
  ~CStreamReader() override {
    if (s_.release) s_.release(&s_);
  }

  Result<bool> next(RecordBatch& out) override {
    return plugin_guard(who_, [&]() -> Result<bool> {
      out.clear();
      // The plugin has no "since" argument: read it all once and serve it from the cursor here.
      if (opts_.since_updated_at) return replay_.next(opts_, [this](RecordBatch& b) { return pull(b); }, out);
      return pull(out);
    });
  }

 private:
  Result<bool> pull(RecordBatch& out) {
    if (done_) return false;
    const char* batch = nullptr;
    if (int rc = s_.next(&s_, &batch)) {
      const char* le = s_.last_error ? s_.last_error(&s_) : nullptr;
      return Status(Code::kPlugin, plugin_message(who_ + " stream of '" + object_ + "'", rc, le));
    }
    if (!batch) {
      done_ = true;
      return false;
    }
    CMG_ASSIGN_OR_RETURN(json::array arr, parse_array(who_, batch, "record batch"));
    out.reserve(arr.size());
    for (const auto& v : arr) {
      Record r;
      std::string err;
      if (!record_from_plugin_json(v, object_, r, err)) return plugin_error(who_, "record batch of '" + object_ + "': " + err);
      project(r);
      out.push_back(std::move(r));
    }
    return true;
  }


  void project(Record& r) const {
    if (opts_.fields.empty()) return;
    json::object kept;
    for (const auto& f : opts_.fields)
      if (const auto* v = r.fields.if_contains(f)) kept[f] = *v;
    r.fields = std::move(kept);
  }

  cmg_record_stream s_;
  std::string object_;
  std::string who_;
  std::shared_ptr<UserData> ud_;
  ReadOptions opts_;
  bool done_ = false;
  CursorReplay replay_;
};

Result<std::unique_ptr<RecordReader>> open_stream(const std::string& who,
                                                  int (*fn)(cmg_record_stream*, const char*, void*),
                                                  std::string_view object, const std::shared_ptr<UserData>& ud,
                                                  const ReadOptions& opts) {
  cmg_record_stream s{};
  std::string obj(object);
  int rc = fn(&s, obj.c_str(), ud->get());
  if (rc != 0) {
    std::string msg = plugin_message(who + " open stream of '" + obj + "'", rc, nullptr);
    if (s.release) s.release(&s);
    return Status(Code::kPlugin, msg);
  }
  if (!s.next) {
    if (s.release) s.release(&s);
    return plugin_error(who, "the stream of '" + obj + "' has no next method");
  }
  return std::unique_ptr<RecordReader>(new CStreamReader(s, obj, who, ud, opts));
}

class CSource final : public Source {
 public:
  CSource(const cmg_source_vtable& vt, std::shared_ptr<UserData> ud) : vt_(vt), ud_(std::move(ud)) {}

  Result<Schema> schema() override {
    return plugin_guard(who_, [&] { return schema_from_plugin(who_, vt_.schema, ud_->get()); });
  }
  Result<std::int64_t> count(std::string_view object) override {
    return plugin_guard(who_, [&] { return count_from_plugin(who_, vt_.count, object, ud_->get()); });
  }
  Result<std::unique_ptr<RecordReader>> read(std::string_view object, const ReadOptions& opts) override {
    return plugin_guard(who_, [&] { return open_stream(who_, vt_.open_stream, object, ud_, opts); });
  }

 private:
  cmg_source_vtable vt_;
  std::shared_ptr<UserData> ud_;
  std::string who_ = "C source";
};

const char* outcome_names[] = {"created", "updated", "failed"};

class CDestination final : public Destination {
 public:
  CDestination(const cmg_destination_vtable& vt, std::shared_ptr<UserData> ud) : vt_(vt), ud_(std::move(ud)) {}

  Result<Schema> schema() override {
    return plugin_guard(who_, [&] { return schema_from_plugin(who_, vt_.schema, ud_->get()); });
  }
  Result<std::int64_t> count(std::string_view object) override {
    return plugin_guard(who_, [&] { return count_from_plugin(who_, vt_.count, object, ud_->get()); });
  }
  Result<std::unique_ptr<RecordReader>> list(std::string_view object, const ReadOptions& opts) override {
    return plugin_guard(who_, [&] { return open_stream(who_, vt_.list, object, ud_, opts); });
  }

  Result<std::vector<Record>> find(std::string_view object, std::string_view field,
                                   const std::vector<std::string>& values) override {
    return plugin_guard(who_, [&]() -> Result<std::vector<Record>> {
      std::string obj(object), fld(field), vals = json::serialize(strings_to_json(values));
      ScopedBuf out;
      if (int rc = vt_.find(&out.b, obj.c_str(), fld.c_str(), vals.c_str(), ud_->get()))
        return Status(Code::kPlugin, plugin_message(who_ + " find in '" + obj + "'", rc, nullptr));
      std::vector<Record> found;
      if (out.empty()) return found;
      CMG_ASSIGN_OR_RETURN(json::array arr, parse_array(who_, out.view(), "find result"));
      for (const auto& v : arr) {
        Record r;
        std::string err;
        if (!record_from_plugin_json(v, obj, r, err)) return plugin_error(who_, "find result: " + err);
        found.push_back(std::move(r));
      }
      return found;
    });
  }

  Result<std::vector<WriteResult>> write(std::string_view object, const std::vector<WriteOp>& ops) override {
    return plugin_guard(who_, [&]() -> Result<std::vector<WriteResult>> {
      json::array in;
      for (const auto& op : ops) {
        json::object o{{"kind", op.kind == WriteOp::Kind::kUpsert ? "upsert" : "update"}, {"fields", op.fields}};
        if (op.kind == WriteOp::Kind::kUpdate) o["id"] = op.id;
        else o["idempotency_key"] = op.idempotency_key;
        in.push_back(std::move(o));
      }
      std::string obj(object), text = json::serialize(in);
      ScopedBuf out;
      if (int rc = vt_.write(&out.b, obj.c_str(), text.c_str(), ud_->get()))
        return Status(Code::kPlugin, plugin_message(who_ + " write to '" + obj + "'", rc, nullptr));
      CMG_ASSIGN_OR_RETURN(json::array arr, parse_array(who_, out.view(), "write results"));
      if (arr.size() != ops.size())
        return plugin_error(who_, "write to '" + obj + "' returned " + std::to_string(arr.size()) + " results for " +
                                      std::to_string(ops.size()) + " ops");
      std::vector<WriteResult> results;
      for (const auto& v : arr) {
        CMG_ASSIGN_OR_RETURN(WriteResult r, result_from_json(v));
        results.push_back(std::move(r));
      }
      return results;
    });
  }

  Result<std::vector<std::optional<Record>>> read(std::string_view object, const std::vector<std::string>& ids) override {
    return plugin_guard(who_, [&]() -> Result<std::vector<std::optional<Record>>> {
      std::string obj(object), text = json::serialize(strings_to_json(ids));
      ScopedBuf out;
      if (int rc = vt_.read(&out.b, obj.c_str(), text.c_str(), ud_->get()))
        return Status(Code::kPlugin, plugin_message(who_ + " read from '" + obj + "'", rc, nullptr));
      CMG_ASSIGN_OR_RETURN(json::array arr, parse_array(who_, out.view(), "read result"));
      if (arr.size() != ids.size())
        return plugin_error(who_, "read from '" + obj + "' returned " + std::to_string(arr.size()) + " entries for " +
                                      std::to_string(ids.size()) + " ids");
      std::vector<std::optional<Record>> records;
      for (const auto& v : arr) {
        if (v.is_null()) {
          records.emplace_back();
          continue;
        }
        Record r;
        std::string err;
        if (!record_from_plugin_json(v, obj, r, err)) return plugin_error(who_, "read result: " + err);
        records.emplace_back(std::move(r));
      }
      return records;
    });
  }

 private:
  static std::string str(const json::object& o, const char* k) {
    const auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  }

  Result<WriteResult> result_from_json(const json::value& v) const {
    const auto* o = v.if_object();
    if (!o) return plugin_error(who_, "write result: expected a JSON object");
    WriteResult r;
    std::string outcome = str(*o, "outcome");
    auto it = std::find(std::begin(outcome_names), std::end(outcome_names), outcome);
    if (it == std::end(outcome_names))
      return plugin_error(who_, "write result: \"outcome\" must be \"created\", \"updated\" or \"failed\", got \"" +
                                    outcome + "\"");
    r.outcome = static_cast<WriteResult::Outcome>(it - std::begin(outcome_names));
    r.id = str(*o, "id");
    r.message = str(*o, "message");
    r.existing_id = str(*o, "existing_id");
    if (const auto* s = o->if_contains("status"); s && s->is_int64()) r.status = static_cast<int>(s->get_int64());
    else r.status = r.outcome == WriteResult::Outcome::kCreated ? 201 : r.outcome == WriteResult::Outcome::kUpdated ? 200 : 400;
    if (const auto* rt = o->if_contains("retryable"); rt && rt->is_bool()) r.retryable = rt->get_bool();
    if (const auto* es = o->if_contains("errors"); es && es->is_array())
      for (const auto& e : es->get_array())
        if (const auto* eo = e.if_object())
          r.errors.push_back({str(*eo, "field"), str(*eo, "value"), str(*eo, "code"), str(*eo, "message")});
    if (r.outcome != WriteResult::Outcome::kFailed && r.id.empty())
      return plugin_error(who_, "write result: a created or updated record needs its \"id\"");
    return r;
  }

  cmg_destination_vtable vt_;
  std::shared_ptr<UserData> ud_;
  std::string who_ = "C destination";
};

Status check_version(unsigned int version, unsigned int known, const char* what) {
  if (version == 0 || version > known)
    return invalid_argument(std::string(what) + ": unknown vtable version " + std::to_string(version) +
                            " (this library knows up to " + std::to_string(known) + ")");
  return Status::ok();
}

}  // namespace

Result<std::shared_ptr<Source>> make_c_source(const cmg_source_vtable* vt, std::unique_ptr<UserData> user_data) {
  std::shared_ptr<UserData> ud(std::move(user_data));
  CMG_RETURN_IF_ERROR(check_version(vt->version, CMG_SOURCE_VTABLE_VERSION, "cmg_source_vtable"));
  if (!vt->schema || !vt->count || !vt->open_stream)
    return invalid_argument("cmg_source_vtable: schema, count and open_stream are required");
  return std::shared_ptr<Source>(std::make_shared<CSource>(*vt, std::move(ud)));
}

Result<std::shared_ptr<Destination>> make_c_destination(const cmg_destination_vtable* vt,
                                                        std::unique_ptr<UserData> user_data) {
  std::shared_ptr<UserData> ud(std::move(user_data));
  CMG_RETURN_IF_ERROR(check_version(vt->version, CMG_DESTINATION_VTABLE_VERSION, "cmg_destination_vtable"));
  if (!vt->schema || !vt->count || !vt->list || !vt->find || !vt->write || !vt->read)
    return invalid_argument("cmg_destination_vtable: schema, count, list, find, write and read are required");
  return std::shared_ptr<Destination>(std::make_shared<CDestination>(*vt, std::move(ud)));
}

}  // namespace cmg::capi
