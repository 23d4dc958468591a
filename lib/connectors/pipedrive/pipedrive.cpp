// The Pipedrive connector (include/crmmigrate/connectors/pipedrive.hpp): HTTP calls, paging, the
// schema cache and the write protocol. Response parsing lives in pipedrive_parse.cpp.
#include "crmmigrate/connectors/pipedrive.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "connectors/pipedrive/pipedrive_parse.hpp"

namespace cmg::pipedrive {

namespace json = boost::json;

namespace {

// ---- the objects and their built-in fields ----

FieldSchema fld(std::string name, FieldType type, std::string label) {
  FieldSchema f;
  f.name = std::move(name);
  f.label = std::move(label);
  f.type = type;
  return f;
}
FieldSchema ro(FieldSchema f) {
  f.read_only = true;
  return f;
}
FieldSchema req(FieldSchema f) {
  f.required = true;
  return f;
}
FieldSchema ref(std::string name, std::string object, std::string label) {
  FieldSchema f = fld(std::move(name), FieldType::kReference, std::move(label));
  f.references = std::move(object);
  return f;
}

struct ObjectSpec {
  std::string name;
  bool v2 = true;
  std::string path;         // list / create
  std::string fields_path;  // *Fields
  std::string search_path;  // "" when the object has no search endpoint
  bool custom = false;      // has custom fields
  std::vector<FieldSchema> builtin;
  std::map<std::string, std::string> search_field;  // record field -> search `fields` value
};

std::vector<FieldSchema> head() {
  FieldSchema id = ro(fld("id", FieldType::kInteger, "ID"));
  id.unique = true;
  return {id};
}
void tail(std::vector<FieldSchema>& f) {
  f.push_back(ro(fld("add_time", FieldType::kDateTime, "Add time")));
  f.push_back(ro(fld("update_time", FieldType::kDateTime, "Update time")));
}
FieldSchema visible_to() {
  FieldSchema f = fld("visible_to", FieldType::kEnum, "Visible to");
  f.options = {{"1", "Owner & followers"}, {"3", "Entire company"}, {"5", "Owner's visibility group"},
               {"7", "Owner's group and sub-groups"}};
  return f;
}

const std::vector<ObjectSpec>& specs() {
  static const std::vector<ObjectSpec> all = [] {
    std::vector<ObjectSpec> v;
    {
      ObjectSpec o{"organizations", true, "/api/v2/organizations", "/api/v2/organizationFields",
                   "/api/v2/organizations/search", true, head(), {{"name", "name"}}};
      o.builtin.push_back(req(fld("name", FieldType::kString, "Name")));
      o.builtin.push_back(fld("address", FieldType::kString, "Address"));
      o.builtin.push_back(ref("owner_id", "users", "Owner"));
      o.builtin.push_back(visible_to());
      o.builtin.push_back(fld("label_ids", FieldType::kJson, "Labels"));
      tail(o.builtin);
      v.push_back(std::move(o));
    }
    {
      ObjectSpec o{"persons", true, "/api/v2/persons", "/api/v2/personFields", "/api/v2/persons/search", true, head(),
                   {{"name", "name"}, {"emails", "email"}, {"phones", "phone"}}};
      o.builtin.push_back(req(fld("name", FieldType::kString, "Name")));
      o.builtin.push_back(fld("first_name", FieldType::kString, "First name"));
      o.builtin.push_back(fld("last_name", FieldType::kString, "Last name"));
      o.builtin.push_back(fld("emails", FieldType::kJson, "Email"));  // [{"value","primary","label"}]
      o.builtin.push_back(fld("phones", FieldType::kJson, "Phone"));
      o.builtin.push_back(ref("org_id", "organizations", "Organization"));
      o.builtin.push_back(ref("owner_id", "users", "Owner"));
      o.builtin.push_back(fld("label_ids", FieldType::kJson, "Labels"));
      o.builtin.push_back(visible_to());
      tail(o.builtin);
      v.push_back(std::move(o));
    }
    {
      ObjectSpec o{"deals", true, "/api/v2/deals", "/api/v2/dealFields", "/api/v2/deals/search", true, head(),
                   {{"title", "title"}}};
      o.builtin.push_back(req(fld("title", FieldType::kString, "Title")));
      o.builtin.push_back(fld("value", FieldType::kNumber, "Value"));
      o.builtin.push_back(fld("currency", FieldType::kString, "Currency"));
      FieldSchema status = fld("status", FieldType::kEnum, "Status");
      status.options = {{"open", "Open"}, {"won", "Won"}, {"lost", "Lost"}};
      o.builtin.push_back(status);
      o.builtin.push_back(fld("pipeline_id", FieldType::kEnum, "Pipeline"));
      FieldSchema stage = fld("stage_id", FieldType::kEnum, "Stage");
      stage.options_by = "pipeline_id";
      o.builtin.push_back(stage);
      o.builtin.push_back(ref("person_id", "persons", "Contact person"));
      o.builtin.push_back(ref("org_id", "organizations", "Organization"));
      o.builtin.push_back(ref("owner_id", "users", "Owner"));
      o.builtin.push_back(fld("expected_close_date", FieldType::kDate, "Expected close date"));
      o.builtin.push_back(fld("probability", FieldType::kInteger, "Probability"));
      tail(o.builtin);
      v.push_back(std::move(o));
    }
    {
      ObjectSpec o{"notes", false, "/v1/notes", "/v1/noteFields", "", false, head(), {}};
      o.builtin.push_back(req(fld("content", FieldType::kText, "Content")));
      o.builtin.push_back(ref("person_id", "persons", "Person"));
      o.builtin.push_back(ref("deal_id", "deals", "Deal"));
      o.builtin.push_back(ref("org_id", "organizations", "Organization"));
      o.builtin.push_back(ref("user_id", "users", "User"));
      tail(o.builtin);
      v.push_back(std::move(o));
    }
    {
      ObjectSpec o{"activities", true, "/api/v2/activities", "/api/v2/activityFields", "", false, head(), {}};
      o.builtin.push_back(req(fld("type", FieldType::kString, "Type")));
      o.builtin.push_back(fld("subject", FieldType::kString, "Subject"));
      o.builtin.push_back(fld("note", FieldType::kText, "Note"));
      o.builtin.push_back(fld("due_date", FieldType::kDate, "Due date"));
      o.builtin.push_back(fld("due_time", FieldType::kString, "Due time"));
      o.builtin.push_back(fld("done", FieldType::kBool, "Done"));
      o.builtin.push_back(ref("person_id", "persons", "Person"));
      o.builtin.push_back(ref("deal_id", "deals", "Deal"));
      o.builtin.push_back(ref("org_id", "organizations", "Organization"));
      o.builtin.push_back(ref("owner_id", "users", "Owner"));
      tail(o.builtin);
      v.push_back(std::move(o));
    }
    return v;
  }();
  return all;
}

const ObjectSpec* spec_of(std::string_view object) {
  for (const auto& s : specs())
    if (s.name == object) return &s;
  return nullptr;
}

Status unknown_object(std::string_view object) {
  return invalid_argument("pipedrive: unknown object '" + std::string(object) +
                          "' (available: organizations, persons, deals, notes, activities)");
}

FieldSchema custom_field_schema(const parse::FieldDef& d, std::string name) {
  FieldSchema f;
  f.name = std::move(name);
  f.label = d.label;
  f.required = d.required;
  const std::string& t = d.type;
  if (t == "double" || t == "monetary") f.type = FieldType::kNumber;
  else if (t == "int") f.type = FieldType::kInteger;
  else if (t == "boolean") f.type = FieldType::kBool;
  else if (t == "text") f.type = FieldType::kText;
  else if (t == "date") f.type = FieldType::kDate;
  else if (t == "enum") f.type = FieldType::kEnum;
  else if (t == "user") f.type = FieldType::kReference, f.references = "users";
  else if (t == "org") f.type = FieldType::kReference, f.references = "organizations";
  else if (t == "people") f.type = FieldType::kReference, f.references = "persons";
  else if (t == "deal") f.type = FieldType::kReference, f.references = "deals";
  else if (t == "varchar" || t == "varchar_auto" || t == "phone" || t == "address" || t == "time" || t.empty())
    f.type = FieldType::kString;
  else f.type = FieldType::kJson;  // set, daterange, timerange, …
  if (f.type == FieldType::kEnum) f.options = d.options;
  return f;
}

// What the connector learnt from the *Fields endpoints, per object.
struct ObjectInfo {
  std::vector<std::string> builtin;  // names
  parse::CustomFields custom;
  std::string source_id_hash;        // "" when the object has no source-ID field
  std::string source_id_name;
  std::vector<std::string> known;    // every field name (for error messages)
};

// ---- the connector ----

class PipedriveConnector;

class PageReader : public RecordReader {
 public:
  PageReader(PipedriveConnector* c, std::shared_ptr<void> keep, const ObjectSpec* spec, const ObjectInfo* info,
             ReadOptions opts)
      : c_(c), keep_(std::move(keep)), spec_(spec), info_(info), opts_(std::move(opts)) {}
  Result<bool> next(RecordBatch& out) override;

 private:
  std::string target() const;
  bool keep(const Record& r) const;

  PipedriveConnector* c_;
  std::shared_ptr<void> keep_;  // keeps the connector alive
  const ObjectSpec* spec_;
  const ObjectInfo* info_;
  ReadOptions opts_;
  bool done_ = false;
  std::string cursor_;
  std::int64_t start_ = 0;
  RecordBatch pending_;  // since mode: records of the newest second seen, not yet safe to emit
};

std::uint64_t id_num(const std::string& id) {
  return id.empty() || id.size() > 18 ? 0 : std::strtoull(id.c_str(), nullptr, 10);
}

class PipedriveConnector : public Connector, public std::enable_shared_from_this<PipedriveConnector> {
 public:
  PipedriveConnector(Options o, std::shared_ptr<net::HttpClient> client)
      : opts_(std::move(o)), client_(std::move(client)), quota_(opts_.limits) {}

  // ---- plumbing ----

  std::uint64_t requests_sent() const override { return sent_.load(); }
  net::QuotaStats quota_stats() const override { return quota_.stats(); }
  std::int64_t last_retry_after_ms() const override { return last_retry_after_.load(); }
  Quota quota() const override { return net::to_quota(opts_.limits, 1); }

  // One request through the quota. `maybe_sent` as HttpClient::send.
  Result<net::HttpResponse> send(const std::string& method, const std::string& target, const std::string& body,
                                 bool* maybe_sent = nullptr) {
    if (maybe_sent) *maybe_sent = false;
    std::uint64_t ticket = 0;
    CMG_RETURN_IF_ERROR(quota_.acquire(&ticket));
    net::HttpRequest req;
    req.method = method;
    req.target = target;
    if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") {
      req.headers.emplace_back("Content-Type", "application/json");
      req.body = body;
    }
    ++sent_;
    auto r = client_->send(req, maybe_sent);
    if (r.is_ok()) quota_.observe(r->status, r->headers, ticket);
    return r;
  }

  static std::string what(const std::string& method, const std::string& target) {
    return method + " " + target.substr(0, target.find('?'));
  }

  // A GET, sent again on transient failures (429, 5xx, no usable reply) up to get_attempts times;
  // the quota scheduler paces the retries (Retry-After, or a doubling backoff deferred on it).
  // Returns the final response (2xx, 404 or another 4xx for the caller); kUnavailable when every
  // attempt failed transiently; kPermissionDenied for 401/403.
  Result<net::HttpResponse> get(const std::string& target) {
    std::string last;
    std::int64_t backoff = 250;
    for (int attempt = 1; attempt <= std::max(1, opts_.get_attempts); ++attempt) {
      auto r = send("GET", target, "");
      int ra = 0;
      if (!r.is_ok()) {
        if (r.status().code() != Code::kUnavailable) return r.status();
        last = r.status().message();
      } else if (r->status == 401 || r->status == 403) {
        return Status(Code::kPermissionDenied,
                      "pipedrive: " + what("GET", target) + " refused the credentials (HTTP " +
                          std::to_string(r->status) + "); check the token named by token_env");
      } else if (r->status == 429 || r->status >= 500) {
        ra = parse::retry_after_ms(r->headers);
        last = "pipedrive: " + what("GET", target) + ": HTTP " + std::to_string(r->status);
      } else {
        last_retry_after_.store(0);
        return r;
      }
      last_retry_after_.store(ra);
      if (attempt < opts_.get_attempts) {
        quota_.defer(std::max<std::int64_t>(ra, backoff));
        backoff = std::min<std::int64_t>(backoff * 2, 8000);
      }
    }
    return Status(Code::kUnavailable, last + " (after " + std::to_string(opts_.get_attempts) + " attempts)");
  }

  // GET that must answer 2xx; the parsed page.
  Result<parse::ListPage> get_page(const std::string& target) {
    CMG_ASSIGN_OR_RETURN(auto r, get(target));
    if (r.status < 200 || r.status >= 300) return http_error("GET", target, r);
    return parse::parse_list_page(r.body, what("GET", target));
  }

  // Every item of a list: v2 pages by cursor; the v1 lists used here (users, noteFields) take no
  // paging parameters at all, so none are sent (the spec declares none).
  Result<std::vector<json::object>> get_all(const std::string& path, bool v2) {
    std::vector<json::object> all;
    std::string cursor;
    std::int64_t start = 0;
    for (int guard = 0; guard < 100000; ++guard) {
      std::string t = v2 ? path + "?limit=" + std::to_string(opts_.page_size) : path;
      if (v2 && !cursor.empty()) t += "&cursor=" + net::url_encode(cursor);
      if (!v2 && start > 0) t += "?start=" + std::to_string(start);
      CMG_ASSIGN_OR_RETURN(auto page, get_page(t));
      for (auto& it : page.items) all.push_back(std::move(it));
      if (!page.more) return all;
      if (v2) cursor = page.next_cursor;
      else start = page.next_start;
    }
    return internal_error("pipedrive: " + path + ": paging did not end");
  }

  static Status http_error(const std::string& method, const std::string& target, const net::HttpResponse& r) {
    std::string m = parse::error_message(r.body);
    Code code = r.status == 404 ? Code::kNotFound : r.status == 401 || r.status == 403 ? Code::kPermissionDenied
                                                                                        : Code::kInvalidArgument;
    return Status(code, "pipedrive: " + what(method, target) + ": HTTP " + std::to_string(r.status) +
                            (m.empty() ? std::string() : ": " + m));
  }

  // GET /v1/users/me: the cheapest call that needs a valid token (2 tokens).
  Status check_access() override {
    auto r = get("/v1/users/me");
    if (!r.is_ok()) {
      if (r.status().code() == Code::kPermissionDenied)
        return Status(Code::kPermissionDenied, "pipedrive: " + opts_.base_url + " refused the API token" +
                                                   (opts_.token_env.empty() ? std::string()
                                                                            : " in $" + opts_.token_env));
      return r.status();
    }
    if (r->status < 200 || r->status >= 300) return http_error("GET", "/v1/users/me", *r);
    return Status::ok();
  }

  // ---- schema ----

  Status ensure_schema() {
    std::lock_guard<std::mutex> lock(schema_mu_);
    if (schema_loaded_) return Status::ok();
    Schema s;
    CMG_ASSIGN_OR_RETURN(auto user_items, get_all("/v1/users", false));
    CMG_ASSIGN_OR_RETURN(s.users, parse::users_from_items(user_items, "GET /v1/users"));
    CMG_ASSIGN_OR_RETURN(auto pl_items, get_all("/api/v2/pipelines", true));
    CMG_ASSIGN_OR_RETURN(auto pipelines, parse::pipelines_from_items(pl_items, "GET /api/v2/pipelines"));
    CMG_ASSIGN_OR_RETURN(auto st_items, get_all("/api/v2/stages", true));
    CMG_ASSIGN_OR_RETURN(auto stages, parse::stages_from_items(st_items, "GET /api/v2/stages"));
    std::map<std::string, ObjectInfo> infos;
    for (const auto& spec : specs()) {
      ObjectSchema os;
      os.name = spec.name;
      ObjectInfo info;
      std::set<std::string> taken;
      for (const auto& f : spec.builtin) taken.insert(f.name);
      CMG_ASSIGN_OR_RETURN(auto items, get_all(spec.fields_path, spec.v2));
      std::map<std::string, parse::FieldDef> builtin_defs;
      std::vector<parse::FieldDef> custom_defs;
      for (const auto& it : items) {
        CMG_ASSIGN_OR_RETURN(auto d, parse::field_def_from_item(it, "GET " + spec.fields_path));
        if (d.custom && spec.custom) custom_defs.push_back(std::move(d));
        else builtin_defs.emplace(d.code, std::move(d));
      }
      for (FieldSchema f : spec.builtin) {
        if (f.name == "pipeline_id") {
          f.options = pipelines;
        } else if (f.name == "stage_id") {
          for (const auto& st : stages) f.options_by_value[st.pipeline_id].push_back({st.id, st.label});
        } else if (auto d = builtin_defs.find(f.name); d != builtin_defs.end() && !d->second.options.empty() &&
                                                         f.type == FieldType::kEnum) {
          f.options = d->second.options;
        } else if (f.name == "type" && spec.name == "activities") {
          if (auto t = builtin_defs.find("type"); t != builtin_defs.end() && !t->second.options.empty()) {
            f.type = FieldType::kEnum;
            f.options = t->second.options;
          }
        }
        info.builtin.push_back(f.name);
        info.known.push_back(f.name);
        os.fields.push_back(std::move(f));
      }
      for (const auto& d : custom_defs) {
        std::string name = d.label.empty() || taken.count(d.label) ? d.code : d.label;
        if (!taken.insert(name).second) name = d.code;
        info.custom.name_by_hash[d.code] = name;
        info.custom.hash_by_name[name] = d.code;
        info.known.push_back(name);
        FieldSchema f = custom_field_schema(d, name);
        if (d.code == opts_.source_id_field || d.label == opts_.source_id_field) {
          info.source_id_hash = d.code;
          info.source_id_name = name;
          f.unique = true;
          os.id_property = name;
        }
        os.fields.push_back(std::move(f));
      }
      infos.emplace(spec.name, std::move(info));
      s.objects.emplace(spec.name, std::move(os));
    }
    schema_ = std::move(s);
    infos_ = std::move(infos);
    schema_loaded_ = true;
    return Status::ok();
  }

  Result<const ObjectInfo*> info_of(std::string_view object) {
    if (!spec_of(object)) return unknown_object(object);
    CMG_RETURN_IF_ERROR(ensure_schema());
    return &infos_.at(std::string(object));
  }

  Result<Schema> schema() override {
    CMG_RETURN_IF_ERROR(ensure_schema());
    return schema_;
  }

  // Of the objects read, only deals have a count in the v1/v2 APIs: GET /v1/deals/summary →
  // data.total_count (the not-archived deals, which is what GET /api/v2/deals lists — archived ones
  // have their own /deals/archived endpoint). The others (persons, organizations, notes, activities:
  // no summary endpoint, no total in cursor or v1 pagination) report -1 = unknown, and the extract
  // count check is skipped for them. A server without the endpoint (4xx) also gives -1.
  Result<std::int64_t> count(std::string_view object) override {
    if (!spec_of(object)) return unknown_object(object);
    if (object != "deals") return std::int64_t{-1};
    CMG_ASSIGN_OR_RETURN(auto r, get("/v1/deals/summary"));
    if (r.status < 200 || r.status >= 300) return std::int64_t{-1};
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    const json::value* data = o ? o->if_contains("data") : nullptr;
    const json::value* total = data && data->is_object() ? data->get_object().if_contains("total_count") : nullptr;
    if (!total || !(total->is_int64() || total->is_uint64()) || (total->is_int64() && total->get_int64() < 0))
      return parse_error("pipedrive: GET /v1/deals/summary: no data.total_count (a whole number) in the reply");
    return total->to_number<std::int64_t>();
  }

  // ---- Source ----

  Result<std::unique_ptr<RecordReader>> read(std::string_view object, const ReadOptions& opts) override {
    const ObjectSpec* spec = spec_of(object);
    if (!spec) return unknown_object(object);
    if (opts.batch_size == 0) return invalid_argument("pipedrive: batch_size 0");
    if (opts.since_updated_at && !opts.since_id.empty() && id_num(opts.since_id) == 0 && opts.since_id != "0")
      return invalid_argument("pipedrive: since_id '" + opts.since_id + "' is not a Pipedrive id");
    CMG_ASSIGN_OR_RETURN(const ObjectInfo* info, info_of(object));
    return std::unique_ptr<RecordReader>(new PageReader(this, shared_from_this(), spec, info, opts));
  }

  Result<Record> to_record(const ObjectSpec& spec, const ObjectInfo& info, const json::object& item,
                           const std::vector<std::string>& only) {
    CMG_ASSIGN_OR_RETURN(Record r, parse::item_to_record(spec.name, item, info.builtin, info.custom, "GET " + spec.path));
    if (!only.empty()) {
      json::object kept;
      for (const auto& f : only)
        if (const auto* v = r.fields.if_contains(f)) kept[f] = *v;
      r.fields = std::move(kept);
    }
    return r;
  }

  static bool deleted(const json::object& item) {
    const auto* d = item.if_contains("is_deleted");
    if (d && d->is_bool() && d->get_bool()) return true;
    const auto* a = item.if_contains("active_flag");
    return a && a->is_bool() && !a->get_bool();
  }

  Result<std::optional<Record>> get(std::string_view object, std::string_view id) override {
    const ObjectSpec* spec = spec_of(object);
    if (!spec) return unknown_object(object);
    CMG_ASSIGN_OR_RETURN(const ObjectInfo* info, info_of(object));
    if (id_num(std::string(id)) == 0) return std::optional<Record>();
    std::string t = spec->path + "/" + std::string(id);
    CMG_ASSIGN_OR_RETURN(auto r, get(t));
    if (r.status == 404 || r.status == 410) return std::optional<Record>();
    if (r.status < 200 || r.status >= 300) return http_error("GET", t, r);
    CMG_ASSIGN_OR_RETURN(auto item, parse::parse_item(r.body, what("GET", t)));
    if (!item || deleted(*item)) return std::optional<Record>();
    CMG_ASSIGN_OR_RETURN(Record rec, to_record(*spec, *info, *item, {}));
    return std::optional<Record>(std::move(rec));
  }

  // ---- Destination ----

  Result<std::unique_ptr<RecordReader>> list(std::string_view object, const ReadOptions& opts) override {
    ReadOptions o = opts;
    o.since_updated_at.reset();
    o.since_id.clear();
    return read(object, o);
  }

  Result<std::vector<std::optional<Record>>> read(std::string_view object,
                                                  const std::vector<std::string>& ids) override {
    const ObjectSpec* spec = spec_of(object);
    if (!spec) return unknown_object(object);
    CMG_ASSIGN_OR_RETURN(const ObjectInfo* info, info_of(object));
    std::map<std::string, Record> found;
    if (spec->v2) {
      // `ids` takes up to 100 ids per request; absent ones are simply not listed.
      for (std::size_t i = 0; i < ids.size(); i += 100) {
        std::string list;
        for (std::size_t j = i; j < std::min(ids.size(), i + 100); ++j)
          if (id_num(ids[j]) != 0) list += (list.empty() ? "" : ",") + ids[j];
        if (list.empty()) continue;
        std::string t = spec->path + "?ids=" + net::url_encode(list) + "&limit=100";
        CMG_ASSIGN_OR_RETURN(auto page, get_page(t));
        for (const auto& it : page.items) {
          if (deleted(it)) continue;
          CMG_ASSIGN_OR_RETURN(Record r, to_record(*spec, *info, it, {}));
          found.emplace(r.id, std::move(r));
        }
      }
    } else {
      for (const auto& id : ids) {
        if (found.count(id)) continue;
        CMG_ASSIGN_OR_RETURN(auto r, get(object, id));
        if (r) found.emplace(id, std::move(*r));
      }
    }
    std::vector<std::optional<Record>> out;
    for (const auto& id : ids) {
      auto it = found.find(id);
      out.push_back(it == found.end() ? std::optional<Record>() : std::optional<Record>(it->second));
    }
    return out;
  }

  // Ids of records whose `search_field` matches `term` exactly (case-insensitively, as Pipedrive's
  // exact_match does; callers compare exactly afterwards).
  Result<std::vector<std::string>> search(const ObjectSpec& spec, const std::string& search_field,
                                          const std::string& term) {
    std::vector<std::string> ids;
    std::string cursor;
    for (int guard = 0; guard < 1000; ++guard) {
      std::string t = spec.search_path + "?term=" + net::url_encode(term) + "&fields=" + search_field +
                      "&exact_match=true&limit=100";
      if (!cursor.empty()) t += "&cursor=" + net::url_encode(cursor);
      CMG_ASSIGN_OR_RETURN(auto r, get(t));
      if (r.status < 200 || r.status >= 300) return http_error("GET", t, r);
      CMG_ASSIGN_OR_RETURN(auto page, parse::parse_search_page(r.body, what("GET", t)));
      for (auto& id : page.ids) ids.push_back(std::move(id));
      if (page.next_cursor.empty()) return ids;
      cursor = page.next_cursor;
    }
    return ids;
  }

  static bool field_matches(const json::value* v, const std::set<std::string>& values, bool ci) {
    if (!v) return false;
    auto norm = [&](std::string s) {
      if (ci) std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
      return s;
    };
    if (v->is_array()) {
      for (const auto& e : v->get_array()) {
        const json::value* x = &e;
        if (e.is_object())
          if (const auto* in = e.get_object().if_contains("value")) x = in;
        if (values.count(norm(value_to_text(*x)))) return true;
      }
      return false;
    }
    return values.count(norm(value_to_text(*v))) > 0;
  }

  Result<std::vector<Record>> find(std::string_view object, std::string_view field,
                                   const std::vector<std::string>& values) override {
    const ObjectSpec* spec = spec_of(object);
    if (!spec) return unknown_object(object);
    CMG_ASSIGN_OR_RETURN(const ObjectInfo* info, info_of(object));
    std::string f(field);
    if (std::find(info->known.begin(), info->known.end(), f) == info->known.end())
      return invalid_argument("pipedrive: " + std::string(object) + " has no field '" + f + "'");
    bool ci = f == "emails";
    std::set<std::string> wanted;
    for (auto v : values) {
      if (ci) std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
      if (!v.empty()) wanted.insert(v);
    }
    std::vector<Record> out;
    if (wanted.empty()) return out;
    if (f == "id") {
      CMG_ASSIGN_OR_RETURN(auto recs, read(object, std::vector<std::string>(wanted.begin(), wanted.end())));
      for (auto& r : recs)
        if (r) out.push_back(std::move(*r));
    } else {
      std::string sfield;
      if (!spec->search_path.empty()) {
        if (f == info->source_id_name && !f.empty()) sfield = "custom_fields";
        else if (auto it = spec->search_field.find(f); it != spec->search_field.end()) sfield = it->second;
      }
      std::vector<Record> candidates;
      if (!sfield.empty()) {
        std::set<std::string> ids;
        for (const auto& v : values) {
          if (v.empty()) continue;
          CMG_ASSIGN_OR_RETURN(auto found, search(*spec, sfield, v));
          ids.insert(found.begin(), found.end());
        }
        CMG_ASSIGN_OR_RETURN(auto recs, read(object, std::vector<std::string>(ids.begin(), ids.end())));
        for (auto& r : recs)
          if (r) candidates.push_back(std::move(*r));
      } else {
        // No search endpoint for this field: scan the list (costly, but exact).
        ReadOptions ro;
        CMG_ASSIGN_OR_RETURN(auto reader, list(object, ro));
        RecordBatch b;
        for (;;) {
          CMG_ASSIGN_OR_RETURN(bool more, reader->next(b));
          if (!more) break;
          for (auto& r : b) candidates.push_back(std::move(r));
        }
      }
      for (auto& r : candidates)
        if (field_matches(r.fields.if_contains(f), wanted, ci)) out.push_back(std::move(r));
    }
    std::sort(out.begin(), out.end(), [](const Record& a, const Record& b) { return id_num(a.id) < id_num(b.id); });
    out.erase(std::unique(out.begin(), out.end(), [](const Record& a, const Record& b) { return a.id == b.id; }),
              out.end());
    return out;
  }

  // The record holding `key` in the source-ID field, "" when none. Transient failures: kUnavailable.
  Result<std::string> find_by_source_id(const ObjectSpec& spec, const ObjectInfo& info, const std::string& key) {
    CMG_ASSIGN_OR_RETURN(auto recs, find(spec.name, info.source_id_name, {key}));
    for (const auto& r : recs) {
      const auto* v = r.fields.if_contains(info.source_id_name);
      if (v && value_to_text(*v) == key) return r.id;
    }
    return std::string();
  }

  static WriteResult transient(const std::string& message, bool unknown, int ra) {
    WriteResult w;
    w.outcome = WriteResult::Outcome::kFailed;
    w.retryable = true;
    w.outcome_unknown = unknown;
    w.retry_after_ms = ra;
    w.message = message;
    return w;
  }

  Result<std::vector<WriteResult>> write(std::string_view object, const std::vector<WriteOp>& ops) override {
    const ObjectSpec* spec = spec_of(object);
    if (!spec) return unknown_object(object);
    CMG_ASSIGN_OR_RETURN(const ObjectInfo* info, info_of(object));
    std::vector<WriteResult> out;
    std::optional<WriteResult> stop;  // after a transient failure the rest is not sent
    for (const auto& op : ops) {
      if (stop) {
        WriteResult w = *stop;
        w.outcome_unknown = false;
        w.message = "not sent: an earlier request of the call failed (" + stop->message + ")";
        out.push_back(std::move(w));
        continue;
      }
      std::map<std::string, std::string> extra;
      std::string id = op.id;
      bool create = false;
      if (op.kind == WriteOp::Kind::kUpsert) {
        if (!info->source_id_hash.empty()) {
          auto found = find_by_source_id(*spec, *info, op.idempotency_key);
          if (!found.is_ok()) {
            if (found.status().code() == Code::kPermissionDenied) return found.status();
            WriteResult w = transient("lookup before create failed: " + found.status().message(), false,
                                      static_cast<int>(last_retry_after_.load()));
            stop = w;
            out.push_back(std::move(w));
            continue;
          }
          id = *found;
          extra[info->source_id_hash] = op.idempotency_key;
        }
        create = id.empty();
      } else if (id_num(id) == 0) {
        WriteResult w;
        w.status = 404;
        w.errors.push_back({"id", id, "NOT_FOUND", "not a Pipedrive id"});
        w.message = "pipedrive: update of '" + id + "': not a Pipedrive id";
        out.push_back(std::move(w));
        continue;
      }
      json::object fields = op.fields;
      if (!info->source_id_name.empty()) fields.erase(info->source_id_name);  // sent by hash via `extra`
      auto body = parse::fields_to_body(object, fields, info->builtin, info->custom, spec->v2, extra);
      if (!body.is_ok()) {
        WriteResult w;
        w.status = 400;
        const std::string& m = body.status().message();
        w.errors.push_back({"", "", m.find("read-only") != std::string::npos ? "READ_ONLY_VALUE" : "PROPERTY_DOESNT_EXIST",
                            m});
        w.message = m;
        out.push_back(std::move(w));
        continue;
      }
      std::string method = create ? "POST" : spec->v2 ? "PATCH" : "PUT";
      std::string target = create ? spec->path : spec->path + "/" + id;
      bool maybe_sent = false;
      auto r = send(method, target, json::serialize(*body), &maybe_sent);
      if (!r.is_ok()) {
        if (r.status().code() != Code::kUnavailable) return r.status();
        WriteResult w = transient(r.status().message(), maybe_sent, 0);
        stop = w;
        out.push_back(std::move(w));
        continue;
      }
      if (r->status == 401 || r->status == 403) return http_error(method, target, *r);
      WriteResult w = parse::write_result(r->status, r->headers, r->body, create, info->known);
      if (w.outcome == WriteResult::Outcome::kFailed && w.retryable) stop = w;
      out.push_back(std::move(w));
    }
    return out;
  }

  const Options& options() const { return opts_; }

 private:
  friend class PageReader;
  Options opts_;
  std::shared_ptr<net::HttpClient> client_;
  net::QuotaScheduler quota_;
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::int64_t> last_retry_after_{0};
  std::mutex schema_mu_;
  bool schema_loaded_ = false;
  Schema schema_;
  std::map<std::string, ObjectInfo> infos_;
};

std::string PageReader::target() const {
  const auto& o = c_->options();
  std::size_t limit = std::min<std::size_t>({opts_.batch_size, o.page_size, 500});
  std::string t = spec_->path + "?limit=" + std::to_string(limit);
  if (spec_->v2) {
    if (opts_.since_updated_at)
      t += "&updated_since=" + net::url_encode(parse::rfc3339_seconds(*opts_.since_updated_at)) +
           "&sort_by=update_time&sort_direction=asc";
    else
      t += "&sort_by=id&sort_direction=asc";
    if (!cursor_.empty()) t += "&cursor=" + net::url_encode(cursor_);
  } else {
    if (opts_.since_updated_at)
      t += "&updated_since=" + net::url_encode(parse::rfc3339_seconds(*opts_.since_updated_at)) + "&sort=" +
           net::url_encode("update_time ASC");
    else
      t += "&sort=" + net::url_encode("id ASC");
    if (start_ > 0) t += "&start=" + std::to_string(start_);
  }
  return t;
}

bool PageReader::keep(const Record& r) const {
  if (!opts_.since_updated_at) return true;
  if (r.updated_at != *opts_.since_updated_at) return r.updated_at > *opts_.since_updated_at;
  return opts_.since_id.empty() || id_num(r.id) >= id_num(opts_.since_id);
}

Result<bool> PageReader::next(RecordBatch& out) {
  out.clear();
  auto less = [](const Record& a, const Record& b) {
    return a.updated_at != b.updated_at ? a.updated_at < b.updated_at : id_num(a.id) < id_num(b.id);
  };
  while (!done_) {
    std::string t = target();
    CMG_ASSIGN_OR_RETURN(auto page, c_->get_page(t));
    for (const auto& it : page.items) {
      if (PipedriveConnector::deleted(it)) continue;
      CMG_ASSIGN_OR_RETURN(Record r, c_->to_record(*spec_, *info_, it, opts_.fields));
      if (!keep(r)) continue;
      if (opts_.since_updated_at) pending_.push_back(std::move(r));
      else out.push_back(std::move(r));
    }
    if (page.more) {
      if (spec_->v2) cursor_ = page.next_cursor;
      else start_ = page.next_start;
    } else {
      done_ = true;
    }
    if (opts_.since_updated_at) {
      // Pipedrive orders by update_time only: records of the same second may come in any id order
      // and across pages. Emit everything older than the newest second seen; keep that second until
      // the next page (or the end) shows no more of it.
      std::sort(pending_.begin(), pending_.end(), less);
      if (done_) {
        out = std::move(pending_);
        pending_.clear();
      } else if (!pending_.empty()) {
        std::int64_t newest = pending_.back().updated_at;
        auto split = std::find_if(pending_.begin(), pending_.end(), [&](const Record& r) { return r.updated_at == newest; });
        out.assign(std::make_move_iterator(pending_.begin()), std::make_move_iterator(split));
        pending_.erase(pending_.begin(), split);
      }
    }
    if (!out.empty()) return true;
  }
  return false;
}

Result<std::string> str_opt(const json::object& o, const char* key, const std::string& path) {
  const auto* v = o.if_contains(key);
  if (!v) return std::string();
  if (!v->is_string()) return config_error(path + "." + key + ": must be a string");
  return std::string(v->get_string());
}

}  // namespace

Result<Options> options_from_json(const json::value& v, const std::string& json_path, const std::string& base_dir) {
  if (!v.is_object()) return config_error(json_path + ": must be an object");
  const auto& o = v.get_object();
  static const char* kAllowed[] = {"base_url", "token_env", "ca_file", "source_id_field", "page_size", "limits"};
  for (const auto& kv : o) {
    std::string k(kv.key());
    if (k == "token" || k == "api_token")
      return config_error(json_path + "." + k + ": secrets are not allowed inline; put the token in an environment "
                                                "variable and name it with token_env");
    if (std::find(std::begin(kAllowed), std::end(kAllowed), k) == std::end(kAllowed))
      return config_error(json_path + "." + k +
                          ": unknown key (allowed: base_url, token_env, ca_file, source_id_field, page_size, limits)");
  }
  Options out;
  CMG_ASSIGN_OR_RETURN(std::string base, str_opt(o, "base_url", json_path));
  if (!base.empty()) out.base_url = base;
  while (!out.base_url.empty() && out.base_url.back() == '/') out.base_url.pop_back();
  CMG_ASSIGN_OR_RETURN(std::string env, str_opt(o, "token_env", json_path));
  if (env.empty()) return config_error(json_path + ".token_env: required (the environment variable holding the API token)");
  const char* tok = std::getenv(env.c_str());
  if (!tok || !*tok) return config_error(json_path + ".token_env: environment variable " + env + " is not set or empty");
  out.token = tok;
  out.token_env = env;
  CMG_ASSIGN_OR_RETURN(std::string ca, str_opt(o, "ca_file", json_path));
  if (!ca.empty()) {
    std::filesystem::path p(ca);
    if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
    out.ca_file = p.lexically_normal().string();
  }
  CMG_ASSIGN_OR_RETURN(std::string sid, str_opt(o, "source_id_field", json_path));
  if (!sid.empty()) out.source_id_field = sid;
  if (const auto* ps = o.if_contains("page_size")) {
    if (!ps->is_int64() || ps->get_int64() < 1 || ps->get_int64() > 500)
      return config_error(json_path + ".page_size: must be an integer from 1 to 500");
    out.page_size = static_cast<std::size_t>(ps->get_int64());
  }
  if (const auto* l = o.if_contains("limits")) {
    CMG_ASSIGN_OR_RETURN(out.limits, net::quota_limits_from_json(*l, json_path + ".limits", out.limits));
  }
  return out;
}

Result<std::shared_ptr<Connector>> make_connector(Options options, std::shared_ptr<net::HttpClient> client) {
  if (!client) {
    net::ClientOptions co;
    co.base_url = options.base_url;
    co.ca_file = options.ca_file;
    co.secret_headers.emplace_back("x-api-token", options.token);
    co.default_headers.emplace_back("Accept", "application/json");
    co.default_headers.emplace_back("User-Agent", std::string("crmmigrate/") + CMG_VERSION_STRING);
    auto c = net::HttpClient::create(co);
    if (!c.is_ok()) return Status(Code::kConfig, "pipedrive: " + c.status().message());
    client = std::shared_ptr<net::HttpClient>(std::move(*c));
  }
  return std::shared_ptr<Connector>(std::make_shared<PipedriveConnector>(std::move(options), std::move(client)));
}

}  // namespace cmg::pipedrive
