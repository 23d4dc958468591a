#include "crmmigrate/sandbox/sandbox.hpp"

#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>

#include <boost/json.hpp>

#include "crmmigrate/core/time.hpp"
#include "crmmigrate/store/lmdb_env.hpp"
#include "sandbox/faults.hpp"
#include "sandbox/sandbox_internal.hpp"

namespace cmg::sandbox {

namespace json = boost::json;
using store::Txn;

namespace {

constexpr std::string_view kMeta = "meta";
constexpr std::string_view kUnique = "unique";
constexpr unsigned kMaxDbs = 64;

std::string records_db(std::string_view object) { return "records." + std::string(object); }
std::string updated_db(std::string_view object) { return "by_updated." + std::string(object); }
std::string next_id_key(std::string_view object) { return store::key_of({"next_id", object}); }

// Flipping the sign bit makes big-endian order match signed order.
std::string sortable_time(std::int64_t ms) { return store::be64(static_cast<std::uint64_t>(ms) ^ (1ULL << 63)); }
std::string updated_key(std::int64_t updated_at, std::uint64_t id) { return sortable_time(updated_at) + store::be64(id); }

// The key immediately before `key` in byte order among keys of the same length ("" before the first),
// so that an exclusive scan start includes `key` itself.
std::string predecessor(std::string key) {
  for (std::size_t i = key.size(); i-- > 0;) {
    auto b = static_cast<unsigned char>(key[i]);
    if (b != 0) {
      key[i] = static_cast<char>(b - 1);
      return key;
    }
    key[i] = static_cast<char>(0xff);
  }
  return {};
}

std::optional<std::uint64_t> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v == 0) return std::nullopt;
  return v;
}

// One stored record: {"id","created_at","updated_at","fields"} as compact JSON.
struct Stored {
  std::uint64_t id = 0;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  json::object fields;
};

std::string encode(const Stored& s) {
  json::object o;
  o["id"] = std::to_string(s.id);
  o["created_at"] = s.created_at;
  o["updated_at"] = s.updated_at;
  o["fields"] = s.fields;
  return json::serialize(o);
}

std::int64_t int_of(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  if (!v) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return 0;
}

Result<Stored> decode(std::string_view text, std::string_view object) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  auto* o = ec ? nullptr : v.if_object();
  const json::value* id = o ? o->if_contains("id") : nullptr;
  json::value* fields = o ? o->if_contains("fields") : nullptr;
  std::optional<std::uint64_t> n = id && id->is_string() ? parse_id(id->get_string()) : std::nullopt;
  if (!n || !fields || !fields->is_object())
    return parse_error("sandbox record of " + std::string(object) + " is damaged: " + std::string(text.substr(0, 80)));
  Stored s;
  s.id = *n;
  s.created_at = int_of(*o, "created_at");
  s.updated_at = int_of(*o, "updated_at");
  s.fields = std::move(fields->get_object());
  return s;
}

Record to_record(std::string_view object, Stored s, const std::vector<std::string>& only) {
  Record r;
  r.object = std::string(object);
  r.id = std::to_string(s.id);
  r.updated_at = s.updated_at;
  if (only.empty()) {
    r.fields = std::move(s.fields);
  } else {
    for (const auto& f : only)
      if (const auto* v = s.fields.if_contains(f)) r.fields[f] = *v;
  }
  return r;
}

Result<std::optional<Stored>> load(Txn& t, std::string_view object, std::uint64_t id) {
  CMG_ASSIGN_OR_RETURN(auto raw, t.get(records_db(object), store::be64(id)));
  if (!raw) return std::optional<Stored>();
  CMG_ASSIGN_OR_RETURN(auto s, decode(*raw, object));
  return std::optional<Stored>(std::move(s));
}

Result<std::optional<Stored>> load_text_id(Txn& t, std::string_view object, std::string_view id) {
  auto n = parse_id(id);
  if (!n) return std::optional<Stored>();
  return load(t, object, *n);
}

json::value field_or_null(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v ? *v : json::value();
}

std::string unique_index_key(std::string_view object, std::string_view field, std::string_view text) {
  return store::key_of({object, field, text});
}

Result<std::optional<std::uint64_t>> index_get(Txn& t, std::string_view object, std::string_view field,
                                               std::string_view text) {
  CMG_ASSIGN_OR_RETURN(auto raw, t.get(kUnique, unique_index_key(object, field, text)));
  if (!raw) return std::optional<std::uint64_t>();
  return parse_id(*raw);
}

Status put_json(Txn& t, std::string_view key, const json::value& v) { return t.put(kMeta, key, json::serialize(v)); }

Result<std::optional<json::value>> get_json(Txn& t, std::string_view key) {
  CMG_ASSIGN_OR_RETURN(auto raw, t.get(kMeta, key));
  if (!raw) return std::optional<json::value>();
  boost::system::error_code ec;
  json::value v = json::parse(*raw, ec);
  if (ec) return parse_error("sandbox meta '" + std::string(key) + "' is not JSON: " + ec.message());
  return std::optional<json::value>(std::move(v));
}

json::value counters_to_json(const Counters& c) {
  return json::object{{"write_calls", c.write_calls},
                      {"records_created", c.records_created},
                      {"records_updated", c.records_updated},
                      {"records_failed", c.records_failed}};
}

Counters counters_from_json(const json::value& v) {
  Counters c;
  if (const auto* o = v.if_object()) {
    c.write_calls = static_cast<std::uint64_t>(int_of(*o, "write_calls"));
    c.records_created = static_cast<std::uint64_t>(int_of(*o, "records_created"));
    c.records_updated = static_cast<std::uint64_t>(int_of(*o, "records_updated"));
    c.records_failed = static_cast<std::uint64_t>(int_of(*o, "records_failed"));
  }
  return c;
}

std::int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool has_data_file(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(dir) / "data.mdb", ec);
}

WriteResult failed(int status, std::vector<FieldError> errors, std::string message = {}) {
  WriteResult r;
  r.outcome = WriteResult::Outcome::kFailed;
  r.status = status;
  if (message.empty()) {
    message = errors.size() == 1 ? errors.front().message
                                 : std::to_string(errors.size()) + " properties are invalid";
  }
  r.message = std::move(message);
  r.errors = std::move(errors);
  return r;
}

}  // namespace

struct SandboxCrm::Impl {
  std::unique_ptr<store::Env> env;
  std::string dir;
  std::string preset;
  internal::PresetTraits traits;
  std::vector<Pipeline> pipelines;
  Quota quota;

  mutable std::mutex mu;
  std::shared_ptr<const Schema> schema;  // guarded by mu; replaced (never mutated) by set_user
  std::function<std::int64_t()> clock = system_now_ms;  // guarded by mu
  std::shared_ptr<internal::FaultInjector> faults = std::make_shared<internal::FaultInjector>();

  std::shared_ptr<const Schema> schema_snapshot() const {
    std::lock_guard<std::mutex> lock(mu);
    return schema;
  }

  std::int64_t now() const {
    std::function<std::int64_t()> c;
    {
      std::lock_guard<std::mutex> lock(mu);
      c = clock;
    }
    return c();
  }

  Result<const ObjectSchema*> object_schema(const Schema& s, std::string_view object) const {
    const ObjectSchema* o = s.object(object);
    if (!o) return invalid_argument("sandbox " + dir + " (" + preset + ") has no object '" + std::string(object) + "'");
    return o;
  }

  Result<std::uint64_t> allocate_ids(Txn& t, std::string_view object, std::uint64_t n) const {
    CMG_ASSIGN_OR_RETURN(auto raw, t.get(kMeta, next_id_key(object)));
    std::uint64_t next = traits.first_id;
    if (raw) {
      auto parsed = parse_id(*raw);
      if (!parsed) return parse_error("sandbox id counter of " + std::string(object) + " is damaged");
      next = *parsed;
    }
    CMG_RETURN_IF_ERROR(t.put(kMeta, next_id_key(object), std::to_string(next + n)));
    return next;
  }

  // Sets the fields the platform maintains: the id and the created/modified times.
  void set_system_fields(const ObjectSchema& obj, Stored& s, bool creating) const {
    auto fmt = traits.iso_times ? format_timestamp_ms : internal::format_pipedrive_time;
    if (creating) {
      // Ids first and times last, in the order the platform lists them.
      json::object out;
      if (obj.field(traits.id_field)) {
        if (traits.numeric_id_value) {
          out[traits.id_field] = static_cast<std::int64_t>(s.id);
        } else {
          out[traits.id_field] = std::to_string(s.id);
        }
      }
      for (auto& [k, v] : s.fields)
        if (k != traits.id_field && k != traits.created_field && k != traits.updated_field) out[k] = std::move(v);
      s.fields = std::move(out);
      if (obj.field(traits.created_field)) s.fields[traits.created_field] = fmt(s.created_at);
    }
    if (obj.field(traits.updated_field)) s.fields[traits.updated_field] = fmt(s.updated_at);
  }

  // Writes `next` (replacing `old` when given) and keeps the unique and updated-time indexes in step.
  Status store(Txn& t, const ObjectSchema& obj, const Stored* old, const Stored& next) const {
    const std::string id_text = std::to_string(next.id);
    for (const auto& f : obj.fields) {
      if (!f.unique || f.name == traits.id_field) continue;
      std::string before = old ? internal::unique_key_text(f, field_or_null(old->fields, f.name)) : std::string();
      std::string after = internal::unique_key_text(f, field_or_null(next.fields, f.name));
      if (before == after) continue;
      if (!before.empty()) {
        CMG_ASSIGN_OR_RETURN(auto holder, index_get(t, obj.name, f.name, before));
        if (holder && *holder == next.id) {
          CMG_ASSIGN_OR_RETURN(bool gone, t.del(kUnique, unique_index_key(obj.name, f.name, before)));
          (void)gone;
        }
      }
      if (!after.empty()) CMG_RETURN_IF_ERROR(t.put(kUnique, unique_index_key(obj.name, f.name, after), id_text));
    }
    if (old && old->updated_at != next.updated_at) {
      CMG_ASSIGN_OR_RETURN(bool gone, t.del(updated_db(obj.name), updated_key(old->updated_at, old->id)));
      (void)gone;
    }
    CMG_RETURN_IF_ERROR(t.put(updated_db(obj.name), updated_key(next.updated_at, next.id), ""));
    return t.put(records_db(obj.name), store::be64(next.id), encode(next));
  }

  Status erase(Txn& t, const ObjectSchema& obj, const Stored& old) const {
    for (const auto& f : obj.fields) {
      if (!f.unique || f.name == traits.id_field) continue;
      std::string text = internal::unique_key_text(f, field_or_null(old.fields, f.name));
      if (text.empty()) continue;
      CMG_ASSIGN_OR_RETURN(auto holder, index_get(t, obj.name, f.name, text));
      if (holder && *holder == old.id) {
        CMG_ASSIGN_OR_RETURN(bool gone, t.del(kUnique, unique_index_key(obj.name, f.name, text)));
        (void)gone;
      }
    }
    CMG_ASSIGN_OR_RETURN(bool gone, t.del(updated_db(obj.name), updated_key(old.updated_at, old.id)));
    CMG_ASSIGN_OR_RETURN(gone, t.del(records_db(obj.name), store::be64(old.id)));
    (void)gone;
    return Status::ok();
  }

  // One op of a write() batch, validated and applied inside the batch's transaction. Only storage
  // failures are returned as a Status; everything the platform would reject is a kFailed result.
  Result<WriteResult> apply(Txn& t, const Schema& schema, const ObjectSchema& obj, const WriteOp& op,
                            std::int64_t now) const {
    std::optional<Stored> existing;
    json::object changes = op.fields;
    if (op.kind == WriteOp::Kind::kUpdate) {
      CMG_ASSIGN_OR_RETURN(existing, load_text_id(t, obj.name, op.id));
      if (!existing) {
        std::string msg = "No " + obj.name + " record with id \"" + op.id + "\"";
        return failed(404, {FieldError{"id", op.id, "OBJECT_NOT_FOUND", msg}}, msg);
      }
    } else if (!obj.id_property.empty()) {
      const std::string& key = op.idempotency_key;
      if (key.empty()) {
        return failed(400, {FieldError{obj.id_property, "", "REQUIRED",
                                       "an upsert needs a value for the id property \"" + obj.id_property + "\""}});
      }
      if (const auto* given = changes.if_contains(obj.id_property); given && value_to_text(*given) != key) {
        return failed(400, {FieldError{obj.id_property, value_to_text(*given), "INVALID_VALUE",
                                       "\"" + obj.id_property + "\" differs from the upsert id \"" + key + "\""}});
      }
      changes[obj.id_property] = key;
      if (const FieldSchema* idf = obj.field(obj.id_property)) {
        CMG_ASSIGN_OR_RETURN(auto holder, index_get(t, obj.name, obj.id_property,
                                                    internal::unique_key_text(*idf, json::value(key))));
        if (holder) {
          CMG_ASSIGN_OR_RETURN(existing, load(t, obj.name, *holder));
        }
      }
    }
    const bool creating = !existing;
    json::object merged = creating ? json::object() : existing->fields;
    for (const auto& [k, v] : changes) merged[k] = v;

    internal::ExistsFn exists = [&t](std::string_view object, std::string_view id) -> Result<bool> {
      CMG_ASSIGN_OR_RETURN(auto rec, load_text_id(t, object, id));
      return rec.has_value();
    };
    CMG_ASSIGN_OR_RETURN(auto errors, internal::validate_changes(schema, obj, changes, merged, creating, exists));
    if (!errors.empty()) return failed(400, std::move(errors));

    const std::uint64_t self = existing ? existing->id : 0;
    for (const auto& f : obj.fields) {
      if (!f.unique || f.name == traits.id_field) continue;
      std::string after = internal::unique_key_text(f, field_or_null(merged, f.name));
      if (after.empty()) continue;
      CMG_ASSIGN_OR_RETURN(auto holder, index_get(t, obj.name, f.name, after));
      if (holder && *holder != self) {
        std::string value = value_to_text(field_or_null(merged, f.name));
        WriteResult r = failed(409, {FieldError{f.name, value, "DUPLICATE_VALUE",
                                                "A " + obj.name + " record already has " + f.name + " \"" + value +
                                                    "\" (id " + std::to_string(*holder) + ")"}});
        r.existing_id = std::to_string(*holder);
        return r;
      }
    }

    Stored next;
    if (creating) {
      CMG_ASSIGN_OR_RETURN(next.id, allocate_ids(t, obj.name, 1));
      next.created_at = now;
    } else {
      next.id = existing->id;
      next.created_at = existing->created_at;
    }
    next.updated_at = now;
    next.fields = std::move(merged);
    set_system_fields(obj, next, creating);
    CMG_RETURN_IF_ERROR(store(t, obj, existing ? &*existing : nullptr, next));

    WriteResult r;
    r.outcome = creating ? WriteResult::Outcome::kCreated : WriteResult::Outcome::kUpdated;
    r.status = creating ? 201 : 200;
    r.id = std::to_string(next.id);
    return r;
  }
};

namespace {

Request make_request(std::string_view call, std::string_view object, std::int64_t at, std::size_t n,
                     internal::FaultKind kind) {
  Request r;
  r.call = std::string(call);
  r.object = std::string(object);
  r.at_ms = at;
  r.ops = n;
  r.fault = internal::fault_name(kind);
  return r;
}

// Pages through `records.<object>` (id order) or `by_updated.<object>` ((updated_at, id) order),
// one read transaction per batch.
class SandboxReader : public RecordReader {
 public:
  SandboxReader(std::shared_ptr<const SandboxCrm::Impl> impl, std::string object, ReadOptions opts,
                bool by_updated, std::string start_after)
      : impl_(std::move(impl)),
        object_(std::move(object)),
        opts_(std::move(opts)),
        by_updated_(by_updated),
        cursor_(std::move(start_after)) {}

  // Destination listings page like an HTTP API, so each page may fault; the cursor stays put.
  void set_faulty() { faults_ = impl_->faults; }

  Result<bool> next(RecordBatch& out) override {
    out.clear();
    if (done_) return false;
    if (faults_) {
      internal::FaultKind k = faults_->draw_read();
      faults_->count_request(k != internal::FaultKind::kNone);
      Request req = make_request("list_page", object_, impl_->now(), opts_.batch_size, k);
      if (k != internal::FaultKind::kNone) {
        Status st = faults_->read_failure(k, "list", object_);
        req.retry_after_ms = static_cast<int>(faults_->last_retry_after_.load());
        faults_->log(std::move(req));
        return st;
      }
      faults_->log(std::move(req));
    }
    const std::size_t limit = opts_.batch_size;
    Status st = impl_->env->read([&](Txn& t) -> Status {
      Status inner;
      if (!by_updated_) {
        CMG_RETURN_IF_ERROR(t.scan(
            records_db(object_), "",
            [&](std::string_view key, std::string_view value) {
              auto s = decode(value, object_);
              if (!s.is_ok()) {
                inner = s.status();
                return false;
              }
              out.push_back(to_record(object_, std::move(s).value(), opts_.fields));
              cursor_.assign(key.data(), key.size());
              return out.size() < limit;
            },
            cursor_));
        return inner;
      }
      std::vector<std::uint64_t> ids;
      CMG_RETURN_IF_ERROR(t.scan(
          updated_db(object_), "",
          [&](std::string_view key, std::string_view) {
            ids.push_back(store::from_be64(key.substr(8)));
            cursor_.assign(key.data(), key.size());
            return ids.size() < limit;
          },
          cursor_));
      for (std::uint64_t id : ids) {
        CMG_ASSIGN_OR_RETURN(auto s, load(t, object_, id));
        if (s) out.push_back(to_record(object_, std::move(*s), opts_.fields));
      }
      return Status::ok();
    });
    if (!st.is_ok()) return st;
    if (out.empty()) {
      done_ = true;
      return false;
    }
    return true;
  }

 private:
  std::shared_ptr<const SandboxCrm::Impl> impl_;
  std::string object_;
  ReadOptions opts_;
  bool by_updated_;
  std::string cursor_;  // last key returned (exclusive start of the next batch)
  bool done_ = false;
  std::shared_ptr<internal::FaultInjector> faults_;  // null: a Source read, which never faults
};

// Draws a read fault for a Destination call and logs it; a non-OK Status is the injected failure.
Status read_call(internal::FaultInjector& f, std::int64_t now, std::string_view call, std::string_view object,
                 std::size_t values) {
  internal::FaultKind k = f.draw_read();
  f.count_request(k != internal::FaultKind::kNone);
  Request req = make_request(call, object, now, values, k);
  Status st;
  if (k != internal::FaultKind::kNone) {
    st = f.read_failure(k, call, object);
    req.retry_after_ms = static_cast<int>(f.last_retry_after_.load());
  }
  f.log(std::move(req));
  return st;
}

// Records by id, without faults (the Source side and get() use it too).
Result<std::vector<std::optional<Record>>> read_ids(const SandboxCrm::Impl& impl, std::string_view object,
                                                    const std::vector<std::string>& ids) {
  auto schema = impl.schema_snapshot();
  CMG_ASSIGN_OR_RETURN(auto obj, impl.object_schema(*schema, object));
  std::vector<std::optional<Record>> out;
  CMG_RETURN_IF_ERROR(impl.env->read([&](Txn& t) -> Status {
    out.clear();
    for (const auto& id : ids) {
      CMG_ASSIGN_OR_RETURN(auto s, load_text_id(t, obj->name, id));
      if (s) {
        out.emplace_back(to_record(obj->name, std::move(*s), {}));
      } else {
        out.emplace_back(std::nullopt);
      }
    }
    return Status::ok();
  }));
  return out;
}

}  // namespace

// ---- construction ----

std::vector<std::string> preset_names() { return {"hubspot", "pipedrive"}; }

Result<Schema> preset_schema(std::string_view preset) {
  auto p = internal::make_preset(preset);
  if (!p) return invalid_argument("unknown sandbox preset '" + std::string(preset) + "' (known: hubspot, pipedrive)");
  return std::move(p->schema);
}

SandboxCrm::SandboxCrm(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
SandboxCrm::~SandboxCrm() = default;

Result<std::shared_ptr<SandboxCrm>> SandboxCrm::create(const std::string& dir, std::string_view preset_name) {
  auto preset = internal::make_preset(preset_name);
  if (!preset)
    return invalid_argument("unknown sandbox preset '" + std::string(preset_name) + "' (known: hubspot, pipedrive)");
  store::EnvOptions eo;
  eo.max_dbs = kMaxDbs;
  CMG_ASSIGN_OR_RETURN(auto env, store::Env::open(dir, eo));
  Status st = env->write([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto existing, t.get(kMeta, "preset"));
    if (existing)
      return Status(Code::kAlreadyExists, "sandbox directory " + dir + " already holds a sandbox (" +
                                              std::string(*existing) + ")");
    CMG_RETURN_IF_ERROR(put_json(t, "format", json::object{{"version", 1}}));
    CMG_RETURN_IF_ERROR(put_json(t, "preset", json::string(preset->traits.name)));
    CMG_RETURN_IF_ERROR(put_json(t, "schema", schema_to_json(preset->schema)));
    CMG_RETURN_IF_ERROR(put_json(t, "pipelines", internal::pipelines_to_json(preset->pipelines)));
    CMG_RETURN_IF_ERROR(put_json(t, "quota", internal::quota_to_json(preset->quota)));
    return put_json(t, "counters", counters_to_json({}));
  });
  CMG_RETURN_IF_ERROR(st);
  auto impl = std::make_shared<Impl>();
  impl->env = std::move(env);
  impl->dir = dir;
  impl->preset = preset->traits.name;
  impl->traits = preset->traits;
  impl->pipelines = std::move(preset->pipelines);
  impl->quota = preset->quota;
  impl->schema = std::make_shared<const Schema>(std::move(preset->schema));
  return std::shared_ptr<SandboxCrm>(new SandboxCrm(std::move(impl)));
}

Result<std::shared_ptr<SandboxCrm>> SandboxCrm::open(const std::string& dir) {
  if (!has_data_file(dir)) return not_found("no sandbox CRM in " + dir);
  store::EnvOptions eo;
  eo.max_dbs = kMaxDbs;
  CMG_ASSIGN_OR_RETURN(auto env, store::Env::open(dir, eo));
  auto impl = std::make_shared<Impl>();
  Status st = env->read([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto preset, get_json(t, "preset"));
    if (!preset) return not_found("no sandbox CRM in " + dir);
    if (!preset->is_string()) return parse_error("sandbox " + dir + ": meta 'preset' is not a string");
    impl->preset = std::string(preset->get_string());
    auto traits = internal::preset_traits(impl->preset);
    if (!traits) return parse_error("sandbox " + dir + ": unknown preset '" + impl->preset + "'");
    impl->traits = *traits;
    CMG_ASSIGN_OR_RETURN(auto schema_json, get_json(t, "schema"));
    Schema schema;
    std::string error;
    if (!schema_json || !schema_from_json(*schema_json, schema, error))
      return parse_error("sandbox " + dir + ": stored schema is damaged: " + error);
    impl->schema = std::make_shared<const Schema>(std::move(schema));
    CMG_ASSIGN_OR_RETURN(auto pipelines, get_json(t, "pipelines"));
    if (pipelines) impl->pipelines = internal::pipelines_from_json(*pipelines);
    CMG_ASSIGN_OR_RETURN(auto quota, get_json(t, "quota"));
    if (quota) impl->quota = internal::quota_from_json(*quota);
    CMG_ASSIGN_OR_RETURN(auto faults, get_json(t, "faults"));
    if (faults) {
      CMG_ASSIGN_OR_RETURN(auto plan, fault_plan_from_json(json::serialize(*faults), "sandbox " + dir + " meta 'faults'"));
      impl->faults->set(plan);
    }
    return Status::ok();
  });
  CMG_RETURN_IF_ERROR(st);
  CMG_ASSIGN_OR_RETURN(auto env_plan, internal::fault_plan_from_env());
  if (env_plan) impl->faults->set(*env_plan);
  impl->env = std::move(env);
  impl->dir = dir;
  return std::shared_ptr<SandboxCrm>(new SandboxCrm(std::move(impl)));
}

// ---- Source / Destination ----

Result<Schema> SandboxCrm::schema() { return *impl_->schema_snapshot(); }

Result<std::int64_t> SandboxCrm::count(std::string_view object) {
  auto schema = impl_->schema_snapshot();
  CMG_ASSIGN_OR_RETURN(auto obj, impl_->object_schema(*schema, object));
  std::uint64_t n = 0;
  CMG_RETURN_IF_ERROR(impl_->env->read([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(n, t.count(records_db(obj->name)));
    return Status::ok();
  }));
  return static_cast<std::int64_t>(n);
}

Result<std::unique_ptr<RecordReader>> SandboxCrm::read(std::string_view object, const ReadOptions& opts) {
  auto schema = impl_->schema_snapshot();
  CMG_ASSIGN_OR_RETURN(auto obj, impl_->object_schema(*schema, object));
  if (opts.batch_size == 0) return invalid_argument("read of " + obj->name + ": batch_size must be at least 1");
  std::string start;
  bool by_updated = opts.since_updated_at.has_value();
  if (by_updated) {
    std::uint64_t since_id = 0;
    if (!opts.since_id.empty()) {
      auto n = parse_id(opts.since_id);
      if (!n) return invalid_argument("read of " + obj->name + ": since_id '" + opts.since_id + "' is not a record id");
      since_id = *n;
    }
    start = predecessor(updated_key(*opts.since_updated_at, since_id));
  }
  return std::unique_ptr<RecordReader>(new SandboxReader(impl_, obj->name, opts, by_updated, std::move(start)));
}

Result<std::unique_ptr<RecordReader>> SandboxCrm::list(std::string_view object, const ReadOptions& opts) {
  ReadOptions all = opts;
  all.since_updated_at.reset();
  all.since_id.clear();
  {
    auto schema = impl_->schema_snapshot();
    CMG_ASSIGN_OR_RETURN(auto obj, impl_->object_schema(*schema, object));
    CMG_RETURN_IF_ERROR(read_call(*impl_->faults, impl_->now(), "list", obj->name, 0));
  }
  CMG_ASSIGN_OR_RETURN(auto reader, read(object, all));
  static_cast<SandboxReader*>(reader.get())->set_faulty();
  return reader;
}

Result<std::optional<Record>> SandboxCrm::get(std::string_view object, std::string_view id) {
  CMG_ASSIGN_OR_RETURN(auto records, read_ids(*impl_, object, std::vector<std::string>{std::string(id)}));
  return std::move(records.front());
}

Result<std::vector<std::optional<Record>>> SandboxCrm::read(std::string_view object,
                                                            const std::vector<std::string>& ids) {
  {
    auto schema = impl_->schema_snapshot();
    CMG_ASSIGN_OR_RETURN(auto obj, impl_->object_schema(*schema, object));
    CMG_RETURN_IF_ERROR(read_call(*impl_->faults, impl_->now(), "read", obj->name, ids.size()));
  }
  return read_ids(*impl_, object, ids);
}


Result<std::vector<Record>> SandboxCrm::find(std::string_view object, std::string_view field,
                                             const std::vector<std::string>& values) {
  auto schema = impl_->schema_snapshot();
  CMG_ASSIGN_OR_RETURN(auto obj, impl_->object_schema(*schema, object));
  const FieldSchema* f = obj->field(field);
  if (!f) return invalid_argument("find on " + obj->name + ": no field '" + std::string(field) + "'");
  CMG_RETURN_IF_ERROR(read_call(*impl_->faults, impl_->now(), "find", obj->name, values.size()));
  const std::string& id_field = impl_->traits.id_field;
  std::vector<Record> out;
  CMG_RETURN_IF_ERROR(impl_->env->read([&](Txn& t) -> Status {
    out.clear();
    std::set<std::uint64_t> ids;
    if (f->name == id_field || f->unique) {
      for (const auto& v : values) {
        if (f->name == id_field) {
          if (auto n = parse_id(v)) ids.insert(*n);
          continue;
        }
        std::string text = internal::unique_key_text(*f, json::value(v));
        if (text.empty()) continue;
        CMG_ASSIGN_OR_RETURN(auto holder, index_get(t, obj->name, f->name, text));
        if (holder) ids.insert(*holder);
      }
      for (std::uint64_t id : ids) {
        CMG_ASSIGN_OR_RETURN(auto s, load(t, obj->name, id));
        if (s) out.push_back(to_record(obj->name, std::move(*s), {}));
      }
      return Status::ok();
    }
    Status inner;
    CMG_RETURN_IF_ERROR(t.scan(records_db(obj->name), "", [&](std::string_view, std::string_view value) {
      auto s = decode(value, obj->name);
      if (!s.is_ok()) {
        inner = s.status();
        return false;
      }
      const json::value* v = s->fields.if_contains(f->name);
      if (!v) return true;
      for (const auto& want : values) {
        if (internal::value_matches(*f, *v, want)) {
          out.push_back(to_record(obj->name, std::move(s).value(), {}));
          break;
        }
      }
      return true;
    }));
    return inner;
  }));
  return out;
}

Result<std::vector<WriteResult>> SandboxCrm::write(std::string_view object, const std::vector<WriteOp>& ops) {
  auto schema = impl_->schema_snapshot();
  CMG_ASSIGN_OR_RETURN(auto obj, impl_->object_schema(*schema, object));
  const std::int64_t now = impl_->now();
  internal::FaultInjector& faults = *impl_->faults;
  internal::WriteFault fault = faults.draw_write(ops.size());
  faults.count_request(fault.kind != internal::FaultKind::kNone);
  Request req = make_request("write", obj->name, now, ops.size(), fault.kind);
  req.applied = fault.apply;
  std::vector<WriteResult> results;
  if (fault.apply) {
    CMG_RETURN_IF_ERROR(impl_->env->write([&](Txn& t) -> Status {
      results.clear();
      results.reserve(ops.size());
      CMG_ASSIGN_OR_RETURN(auto cj, get_json(t, "counters"));
      Counters c = cj ? counters_from_json(*cj) : Counters{};
      ++c.write_calls;
      for (std::size_t i = 0; i < ops.size(); ++i) {
        const WriteOp& op = ops[i];
        if (!fault.reject.empty() && fault.reject[i]) {
          // Rejected as the platform rejects a value it no longer accepts: the op is not applied.
          std::string field = obj->id_property;
          std::string value = op.idempotency_key;
          for (const auto& [k, v] : op.fields) {
            if (k == obj->id_property) continue;
            field = std::string(k);
            value = value_to_text(v);
            break;
          }
          ++c.records_failed;
          results.push_back(failed(400, {FieldError{field, value, "INVALID_VALUE",
                                                    "Property values were not valid: \"" + field +
                                                        "\" was rejected (injected partial batch failure)"}}));
          continue;
        }
        CMG_ASSIGN_OR_RETURN(auto r, impl_->apply(t, *schema, *obj, op, now));
      switch (r.outcome) {
        case WriteResult::Outcome::kCreated: ++c.records_created; break;
        case WriteResult::Outcome::kUpdated: ++c.records_updated; break;
          case WriteResult::Outcome::kFailed: ++c.records_failed; break;
        }
        results.push_back(std::move(r));
      }
      return put_json(t, "counters", counters_to_json(c));
    }));
  }
  if (fault.kind == internal::FaultKind::kPartial) {
    for (std::size_t i = 0; i < ops.size(); ++i)
      if (fault.reject[i])
        req.rejected.push_back(ops[i].kind == WriteOp::Kind::kUpsert ? ops[i].idempotency_key : ops[i].id);
  } else if (fault.kind != internal::FaultKind::kNone) {
    results = faults.whole_call_results(fault.kind, ops.size());
    req.retry_after_ms = results.empty() ? 0 : results.front().retry_after_ms;
    if (req.retry_after_ms > 0) faults.last_retry_after_ = req.retry_after_ms;
  }
  faults.log(std::move(req));
  return results;
}

Quota SandboxCrm::quota() const { return impl_->quota; }

// ---- introspection ----

const std::string& SandboxCrm::preset() const { return impl_->preset; }
const std::string& SandboxCrm::dir() const { return impl_->dir; }
std::vector<Pipeline> SandboxCrm::pipelines() const { return impl_->pipelines; }

Result<Counters> SandboxCrm::counters() const {
  Counters c;
  CMG_RETURN_IF_ERROR(impl_->env->read([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto cj, get_json(t, "counters"));
    if (cj) c = counters_from_json(*cj);
    return Status::ok();
  }));
  c.requests = impl_->faults->requests_.load();
  c.faults = impl_->faults->faults_.load();
  return c;
}

void SandboxCrm::set_faults(const FaultPlan& plan) { impl_->faults->set(plan); }

FaultPlan SandboxCrm::faults() const { return impl_->faults->plan(); }

Status SandboxCrm::store_faults(const std::optional<FaultPlan>& plan) {
  CMG_RETURN_IF_ERROR(impl_->env->write([&](Txn& t) -> Status {
    if (!plan) return t.del(kMeta, "faults").status();
    boost::system::error_code ec;
    return put_json(t, "faults", json::parse(fault_plan_to_json(*plan), ec));
  }));
  impl_->faults->set(plan ? *plan : FaultPlan{});
  return Status::ok();
}

void SandboxCrm::set_request_log(bool on) { impl_->faults->set_log(on); }

std::vector<Request> SandboxCrm::requests() const { return impl_->faults->requests(); }

std::int64_t SandboxCrm::last_retry_after_ms() const { return impl_->faults->last_retry_after_.load(); }

void SandboxCrm::set_clock(std::function<std::int64_t()> now_ms) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->clock = now_ms ? std::move(now_ms) : std::function<std::int64_t()>(system_now_ms);
}

void SandboxCrm::set_commit_hook(store::CommitHook hook) { impl_->env->set_commit_hook(std::move(hook)); }

// ---- admin ----

Result<std::string> SandboxCrm::insert(std::string_view object, json::object fields, std::int64_t updated_at,
                                       std::int64_t created_at) {
  std::vector<NewRecord> one(1);
  one[0].fields = std::move(fields);
  one[0].updated_at = updated_at;
  one[0].created_at = created_at;
  CMG_ASSIGN_OR_RETURN(auto ids, insert_many(object, one));
  return std::move(ids.front());
}

Result<std::vector<std::string>> SandboxCrm::insert_many(std::string_view object, const std::vector<NewRecord>& records) {
  auto schema = impl_->schema_snapshot();
  CMG_ASSIGN_OR_RETURN(auto obj, impl_->object_schema(*schema, object));
  std::vector<std::string> ids;
  CMG_RETURN_IF_ERROR(impl_->env->write([&](Txn& t) -> Status {
    ids.clear();
    ids.reserve(records.size());
    CMG_ASSIGN_OR_RETURN(std::uint64_t next, impl_->allocate_ids(t, obj->name, records.size()));
    for (const auto& nr : records) {
      Stored s;
      s.id = next++;
      s.updated_at = nr.updated_at;
      s.created_at = nr.created_at ? nr.created_at : nr.updated_at;
      s.fields = nr.fields;
      impl_->set_system_fields(*obj, s, true);
      CMG_RETURN_IF_ERROR(impl_->store(t, *obj, nullptr, s));
      ids.push_back(std::to_string(s.id));
    }
    return Status::ok();
  }));
  return ids;
}

Status SandboxCrm::update_fields(std::string_view object, std::string_view id, const json::object& fields,
                                 std::int64_t updated_at) {
  auto schema = impl_->schema_snapshot();
  CMG_ASSIGN_OR_RETURN(auto obj, impl_->object_schema(*schema, object));
  return impl_->env->write([&](Txn& t) -> Status {
    CMG_ASSIGN_OR_RETURN(auto old, load_text_id(t, obj->name, id));
    if (!old) return not_found("no " + obj->name + " record " + std::string(id) + " in sandbox " + impl_->dir);
    Stored next = *old;
    for (const auto& [k, v] : fields) next.fields[k] = v;
    next.updated_at = updated_at;
    impl_->set_system_fields(*obj, next, false);
    return impl_->store(t, *obj, &*old, next);
  });
}

Result<bool> SandboxCrm::remove(std::string_view object, std::string_view id) {
  auto schema = impl_->schema_snapshot();
  CMG_ASSIGN_OR_RETURN(auto obj, impl_->object_schema(*schema, object));
  bool removed = false;
  CMG_RETURN_IF_ERROR(impl_->env->write([&](Txn& t) -> Status {
    removed = false;
    CMG_ASSIGN_OR_RETURN(auto old, load_text_id(t, obj->name, id));
    if (!old) return Status::ok();
    removed = true;
    return impl_->erase(t, *obj, *old);
  }));
  return removed;
}

Status SandboxCrm::set_user(const User& user) {
  if (user.id.empty()) return invalid_argument("set_user: the user needs an id");
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto next = std::make_shared<Schema>(*impl_->schema);
  bool replaced = false;
  for (auto& u : next->users) {
    if (u.id == user.id) {
      u = user;
      replaced = true;
    }
  }
  if (!replaced) next->users.push_back(user);
  CMG_RETURN_IF_ERROR(impl_->env->write([&](Txn& t) { return put_json(t, "schema", schema_to_json(*next)); }));
  impl_->schema = std::move(next);
  return Status::ok();
}

}  // namespace cmg::sandbox
