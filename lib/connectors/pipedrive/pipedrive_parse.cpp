// Pure parsing and mapping functions of the Pipedrive connector (see pipedrive_parse.hpp).
#include "connectors/pipedrive/pipedrive_parse.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "crmmigrate/core/time.hpp"
#include "crmmigrate/net/quota.hpp"

namespace cmg::pipedrive::parse {

namespace json = boost::json;

namespace {

Status bad_reply(std::string_view what, std::string_view why) {
  return Status(Code::kUnavailable, "pipedrive: bad reply to " + std::string(what) + ": " + std::string(why));
}

Result<json::value> parse_json(std::string_view body, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return bad_reply(what, "not JSON (" + ec.message() + ")");
  if (!v.is_object()) return bad_reply(what, "not a JSON object");
  return v;
}

std::string str_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return {};
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_int64() || v->is_uint64()) return value_to_text(*v);
  return {};
}

bool bool_of(const json::object& o, std::string_view key, bool dflt) {
  const auto* v = o.if_contains(key);
  if (!v) return dflt;
  if (v->is_bool()) return v->get_bool();
  if (v->is_int64()) return v->get_int64() != 0;
  return dflt;
}

bool is_digits(std::string_view s) {
  return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool iequals_prefix(std::string_view text, std::string_view needle) {
  if (needle.size() > text.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= text.size(); ++i) {
    bool ok = true;
    for (std::size_t j = 0; j < needle.size() && ok; ++j)
      ok = std::tolower(static_cast<unsigned char>(text[i + j])) == std::tolower(static_cast<unsigned char>(needle[j]));
    if (ok) return true;
  }
  return false;
}

}  // namespace

Result<ListPage> parse_list_page(std::string_view body, std::string_view what) {
  CMG_ASSIGN_OR_RETURN(json::value v, parse_json(body, what));
  const auto& o = v.get_object();
  ListPage page;
  const auto* data = o.if_contains("data");
  if (data && data->is_array()) {
    for (const auto& it : data->get_array()) {
      if (!it.is_object()) return bad_reply(what, "data[] holds a non-object");
      page.items.push_back(it.get_object());
    }
  } else if (data && !data->is_null()) {
    return bad_reply(what, "data is not an array");
  } else if (!data) {
    return bad_reply(what, "no data member");
  }
  if (const auto* ad = o.if_contains("additional_data"); ad && ad->is_object()) {
    const auto& a = ad->get_object();
    if (const auto* nc = a.if_contains("next_cursor"); nc && nc->is_string() && !nc->get_string().empty()) {
      page.next_cursor = std::string(nc->get_string());
      page.more = true;
    }
    if (const auto* pg = a.if_contains("pagination"); pg && pg->is_object()) {
      const auto& p = pg->get_object();
      if (bool_of(p, "more_items_in_collection", false)) {
        const auto* ns = p.if_contains("next_start");
        if (!ns || !ns->is_int64() || ns->get_int64() < 0)
          return bad_reply(what, "pagination says more items but has no next_start");
        page.more = true;
        page.next_start = ns->get_int64();
      }
    }
  }
  return page;
}

Result<std::optional<json::object>> parse_item(std::string_view body, std::string_view what) {
  CMG_ASSIGN_OR_RETURN(json::value v, parse_json(body, what));
  const auto* data = v.get_object().if_contains("data");
  if (!data) return bad_reply(what, "no data member");
  if (data->is_null()) return std::optional<json::object>();
  if (!data->is_object()) return bad_reply(what, "data is not an object");
  return std::optional<json::object>(data->get_object());
}

Result<SearchPage> parse_search_page(std::string_view body, std::string_view what) {
  CMG_ASSIGN_OR_RETURN(json::value v, parse_json(body, what));
  const auto& o = v.get_object();
  SearchPage page;
  const auto* data = o.if_contains("data");
  if (!data) return bad_reply(what, "no data member");
  if (data->is_object()) {
    const auto* items = data->get_object().if_contains("items");
    if (items && !items->is_array() && !items->is_null()) return bad_reply(what, "data.items is not an array");
    if (items && items->is_array()) {
      for (const auto& it : items->get_array()) {
        const auto* io = it.if_object();
        const auto* item = io ? io->if_contains("item") : nullptr;
        if (!item || !item->is_object()) return bad_reply(what, "data.items[] has no item object");
        const auto* id = item->get_object().if_contains("id");
        std::string t = id ? id_text(*id) : std::string();
        if (t.empty()) return bad_reply(what, "data.items[].item has no integer id");
        page.ids.push_back(std::move(t));
      }
    }
  } else if (!data->is_null()) {
    return bad_reply(what, "data is not an object");
  }
  if (const auto* ad = o.if_contains("additional_data"); ad && ad->is_object())
    if (const auto* nc = ad->get_object().if_contains("next_cursor"); nc && nc->is_string())
      page.next_cursor = std::string(nc->get_string());
  return page;
}

Result<FieldDef> field_def_from_item(const json::object& item, std::string_view what) {
  FieldDef f;
  f.code = str_of(item, "field_code");
  if (f.code.empty()) f.code = str_of(item, "key");
  if (f.code.empty()) return bad_reply(what, "a field has neither field_code nor key");
  f.label = str_of(item, "field_name");
  if (f.label.empty()) f.label = str_of(item, "name");
  f.type = str_of(item, "field_type");
  if (item.contains("is_custom_field")) {
    f.custom = bool_of(item, "is_custom_field", false);
  } else {
    // v1: custom fields are the ones keyed by a 40-hex hash (their edit_flag is also true).
    f.custom = f.code.size() == 40 && std::all_of(f.code.begin(), f.code.end(), [](char c) {
                 return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
               });
  }
  if (const auto* rf = item.if_contains("required_fields"); rf && rf->is_object())
    f.required = bool_of(rf->get_object(), "enabled", false);
  else
    f.required = bool_of(item, "mandatory_flag", false);
  if (const auto* opts = item.if_contains("options"); opts && opts->is_array()) {
    for (const auto& ov : opts->get_array()) {
      const auto* oo = ov.if_object();
      if (!oo) continue;
      std::string id = str_of(*oo, "id");
      if (id.empty()) continue;
      std::string label = str_of(*oo, "label");
      f.options.push_back({id, label.empty() ? id : label});
    }
  }
  return f;
}

Result<std::vector<User>> users_from_items(const std::vector<json::object>& items, std::string_view what) {
  std::vector<User> out;
  for (const auto& it : items) {
    User u;
    const auto* id = it.if_contains("id");
    u.id = id ? id_text(*id) : std::string();
    if (u.id.empty()) return bad_reply(what, "a user has no integer id");
    u.email = str_of(it, "email");
    u.name = str_of(it, "name");
    u.active = bool_of(it, "active_flag", true);
    out.push_back(std::move(u));
  }
  return out;
}

Result<std::vector<Option>> pipelines_from_items(const std::vector<json::object>& items, std::string_view what) {
  std::vector<Option> out;
  for (const auto& it : items) {
    const auto* id = it.if_contains("id");
    std::string t = id ? id_text(*id) : std::string();
    if (t.empty()) return bad_reply(what, "a pipeline has no integer id");
    out.push_back({t, str_of(it, "name")});
  }
  return out;
}

Result<std::vector<StageDef>> stages_from_items(const std::vector<json::object>& items, std::string_view what) {
  std::vector<StageDef> out;
  for (const auto& it : items) {
    StageDef s;
    const auto* id = it.if_contains("id");
    s.id = id ? id_text(*id) : std::string();
    const auto* pl = it.if_contains("pipeline_id");
    s.pipeline_id = pl ? id_text(*pl) : std::string();
    if (s.id.empty() || s.pipeline_id.empty()) return bad_reply(what, "a stage has no integer id or pipeline_id");
    s.label = str_of(it, "name");
    if (const auto* o = it.if_contains("order_nr"); o && o->is_int64()) s.order = o->get_int64();
    out.push_back(std::move(s));
  }
  // Display order within each pipeline; ties by id so the result does not depend on reply order.
  std::stable_sort(out.begin(), out.end(), [](const StageDef& a, const StageDef& b) {
    if (a.pipeline_id != b.pipeline_id) return a.pipeline_id.size() != b.pipeline_id.size()
                                                   ? a.pipeline_id.size() < b.pipeline_id.size()
                                                   : a.pipeline_id < b.pipeline_id;
    if (a.order != b.order) return a.order < b.order;
    return a.id.size() != b.id.size() ? a.id.size() < b.id.size() : a.id < b.id;
  });
  return out;
}

std::string id_text(const json::value& v) {
  if (v.is_int64()) return v.get_int64() >= 0 ? std::to_string(v.get_int64()) : std::string();
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  if (v.is_string() && is_digits(v.get_string())) return std::string(v.get_string());
  // v1 shapes references as {"value": N, "name": …}.
  if (v.is_object())
    if (const auto* inner = v.get_object().if_contains("value"); inner && !inner->is_object()) return id_text(*inner);
  return {};
}

std::int64_t time_ms(const json::value* v) {
  if (!v || !v->is_string()) return 0;
  auto ms = parse_timestamp_ms(v->get_string());
  return ms ? *ms : 0;
}

std::string rfc3339_seconds(std::int64_t ms) {
  std::int64_t floored = ms >= 0 ? ms / 1000 * 1000 : (ms - 999) / 1000 * 1000;
  std::string t = format_timestamp_ms(floored);  // "...T03:04:05.000Z"
  auto dot = t.rfind('.');
  if (dot != std::string::npos) t = t.substr(0, dot) + "Z";
  return t;
}

Result<Record> item_to_record(std::string_view object, const json::object& item, const std::vector<std::string>& builtin,
                              const CustomFields& custom, std::string_view what) {
  Record r;
  r.object = std::string(object);
  const auto* id = item.if_contains("id");
  r.id = id ? id_text(*id) : std::string();
  if (r.id.empty()) return bad_reply(what, "an item has no integer id");
  r.updated_at = time_ms(item.if_contains("update_time"));
  for (const auto& name : builtin) {
    const auto* v = item.if_contains(name);
    if (!v) continue;
    if (v->is_object()) {
      // Address-like objects ({"value": "...", "country": …}) and v1 references ({"value": id,
      // "name": …}) carry the field's value in `value`.
      const auto* inner = v->get_object().if_contains("value");
      r.fields[name] = inner ? *inner : json::value();
    } else {
      r.fields[name] = *v;
    }
  }
  auto add_custom = [&](const json::object& src) {
    for (const auto& kv : src) {
      auto it = custom.name_by_hash.find(std::string(kv.key()));
      if (it == custom.name_by_hash.end()) continue;
      const json::value& v = kv.value();
      if (v.is_object() && v.get_object().contains("value") && v.get_object().size() <= 2)
        r.fields[it->second] = v.get_object().at("value");
      else
        r.fields[it->second] = v;
    }
  };
  if (const auto* cf = item.if_contains("custom_fields"); cf && cf->is_object()) add_custom(cf->get_object());
  else add_custom(item);
  return r;
}

Result<json::object> fields_to_body(std::string_view object, const json::object& fields,
                                    const std::vector<std::string>& builtin, const CustomFields& custom, bool v2,
                                    const std::map<std::string, std::string>& extra_custom) {
  json::object body;
  json::object cf;
  for (const auto& kv : fields) {
    std::string name(kv.key());
    const json::value& v = kv.value();
    if (name == "id" || name == "add_time" || name == "update_time") {
      // add_time is writable on create in Pipedrive, but the connector's schema marks it read-only;
      // refusing it here keeps a mapping mistake from silently back-dating records.
      return invalid_argument(std::string(object) + "." + name + ": read-only field");
    }
    auto hash = custom.hash_by_name.find(name);
    if (hash != custom.hash_by_name.end()) {
      (v2 ? cf : body)[hash->second] = v;
      continue;
    }
    if (std::find(builtin.begin(), builtin.end(), name) == builtin.end())
      return invalid_argument(std::string(object) + "." + name + ": no such field");
    json::value out = v;
    bool ref = name.size() > 3 && name.compare(name.size() - 3, 3, "_id") == 0;
    if (ref && v.is_string()) {
      std::string_view s = v.get_string();
      if (s.empty()) out = nullptr;
      else if (is_digits(s)) out = static_cast<std::int64_t>(std::stoll(std::string(s)));
    }
    if ((name == "emails" || name == "phones" || name == "email" || name == "phone") && v.is_string()) {
      json::array a;
      if (!v.get_string().empty()) a.push_back(json::object{{"value", v.get_string()}, {"primary", true}});
      out = std::move(a);
    }
    if (name == "address" && v2 && v.is_string()) out = json::object{{"value", v.get_string()}};
    body[name] = std::move(out);
  }
  for (const auto& [h, val] : extra_custom) (v2 ? cf : body)[h] = val;
  if (!cf.empty()) body["custom_fields"] = std::move(cf);
  return body;
}

std::string error_message(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return {};
  const auto& o = v.get_object();
  std::string m = str_of(o, "error");
  if (m.empty()) m = str_of(o, "message");
  std::string info = str_of(o, "error_info");
  if (!info.empty() && info != m) m += m.empty() ? info : " (" + info + ")";
  // Bound what an upstream error can put into our messages and audit.
  if (m.size() > 500) m.resize(500);
  return m;
}

int retry_after_ms(const net::Headers& headers) {
  std::int64_t ms = net::parse_retry_after_ms(net::header_value(headers, "Retry-After"));
  if (ms < 0) {
    std::string_view reset = net::header_value(headers, "x-ratelimit-reset");
    ms = net::parse_retry_after_ms(reset);
  }
  if (ms < 0) return 0;
  return static_cast<int>(std::min<std::int64_t>(ms, 24LL * 3600 * 1000));
}

WriteResult write_result(int status, const net::Headers& headers, std::string_view body, bool create,
                         const std::vector<std::string>& known_fields) {
  WriteResult r;
  r.status = status;
  r.outcome = WriteResult::Outcome::kFailed;
  if (status >= 200 && status < 300) {
    auto item = parse_item(body, "write");
    std::string id;
    if (item.is_ok() && item->has_value())
      if (const auto* idv = (**item).if_contains("id")) id = id_text(*idv);
    if (id.empty()) {
      // Accepted but unreadable: the record may exist now. Resolve by the idempotency key.
      r.retryable = true;
      r.outcome_unknown = true;
      r.message = "pipedrive: " + std::to_string(status) + " reply without a record id";
      return r;
    }
    r.outcome = create ? WriteResult::Outcome::kCreated : WriteResult::Outcome::kUpdated;
    r.id = id;
    return r;
  }
  std::string msg = error_message(body);
  r.message = "pipedrive: HTTP " + std::to_string(status) + (msg.empty() ? std::string() : ": " + msg);
  if (status == 429 || status == 503 || status == 500 || status == 502 || status == 504 || status == 408) {
    r.retryable = true;
    r.retry_after_ms = retry_after_ms(headers);
    r.outcome_unknown = status == 502 || status == 504 || status == 408;
    return r;
  }
  if (status == 409) {
    FieldError e{"", "", "DUPLICATE_VALUE", msg};
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (!ec && v.is_object()) {
      const auto& o = v.get_object();
      for (const char* k : {"existing_id", "id"})
        if (const auto* x = o.if_contains(k); x && r.existing_id.empty()) r.existing_id = id_text(*x);
      if (const auto* d = o.if_contains("data"); d && d->is_object() && r.existing_id.empty())
        if (const auto* x = d->get_object().if_contains("id")) r.existing_id = id_text(*x);
    }
    r.errors.push_back(std::move(e));
    return r;
  }
  if (status == 404) {
    r.errors.push_back({"", "", "NOT_FOUND", msg});
    return r;
  }
  // 400/422 and other client errors: Pipedrive explains them in prose only. Name the field when the
  // message names exactly one we know, so the queue item points at it.
  FieldError e{"", "", "INVALID_VALUE", msg};
  for (const auto& f : known_fields)
    if (f.size() > 1 && iequals_prefix(msg, f)) {
      if (!e.field.empty()) {
        e.field.clear();
        break;
      }
      e.field = f;
    }
  if (iequals_prefix(msg, "required") || iequals_prefix(msg, "missing")) e.code = "REQUIRED";
  else if (iequals_prefix(msg, "option")) e.code = "INVALID_OPTION";
  r.errors.push_back(std::move(e));
  return r;
}

}  // namespace cmg::pipedrive::parse
