// The Pipedrive connector against an in-memory fake of the API (a net::HttpClient that answers like
// Pipedrive v1/v2): schema, paging, incremental order, idempotent writes, error mapping, options.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "crmmigrate/connectors/pipedrive.hpp"
#include "crmmigrate/core/time.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"
#include "crmmigrate/sandbox/serve.hpp"
#include "pipeline/fault_util.hpp"
#include "test_util.hpp"

namespace json = boost::json;
namespace net = cmg::net;
namespace pd = cmg::pipedrive;
using cmg::Code;
using cmg::ReadOptions;
using cmg::Record;
using cmg::RecordBatch;
using cmg::WriteOp;
using cmg::WriteResult;

namespace {

const std::string kSrcHash = "5a0c1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c";
const std::string kTierHash = "0123456789abcdef0123456789abcdef01234567";

std::string ok_body(json::value data, json::object additional = {}) {
  json::object o{{"success", true}, {"data", std::move(data)}};
  if (!additional.empty()) o["additional_data"] = std::move(additional);
  return json::serialize(o);
}

// A small Pipedrive: persons, organizations, deals, activities (v2) and notes (v1).
struct FakePipedrive final : net::HttpClient {
  struct Fault {
    std::string method;  // which request it hits ("" = any)
    std::string kind;    // "429", "500", "lost" (applied, no reply), "reset" (not applied), "401"
  };
  mutable std::mutex mu;
  std::map<std::string, std::map<std::int64_t, json::object>> store;
  std::int64_t next_id = 100;
  std::int64_t clock_s = 1714979289;  // every write advances the update time by one second
  std::vector<net::HttpRequest> log;
  std::deque<Fault> faults;
  std::size_t field_page = 3;  // *Fields page size, to exercise cursor paging of fields

  std::string stamp(bool v2) {
    return v2 ? cmg::format_timestamp_ms(clock_s * 1000).substr(0, 19) + "Z"
              : [&] {
                  std::string t = cmg::format_timestamp_ms(clock_s * 1000).substr(0, 19);
                  t[10] = ' ';
                  return t;
                }();
  }

  void put(const std::string& object, json::object item, std::int64_t update_s) {
    std::int64_t id = item.at("id").as_int64();
    std::string t = cmg::format_timestamp_ms(update_s * 1000).substr(0, 19);
    if (object == "notes") t[10] = ' ';
    else t += "Z";
    item["update_time"] = t;
    item["add_time"] = t;
    store[object][id] = std::move(item);
  }

  static json::array page_of(const std::vector<json::object>& all, std::size_t from, std::size_t n) {
    json::array a;
    for (std::size_t i = from; i < std::min(all.size(), from + n); ++i) a.push_back(all[i]);
    return a;
  }

  static std::string v2_page(const std::vector<json::object>& all, const net::HttpRequest& req, std::size_t dflt) {
    bool has_limit = false;
    std::string l = req.query("limit", &has_limit);
    std::size_t limit = has_limit ? std::stoul(l) : dflt;
    std::string c = req.query("cursor");
    std::size_t from = c.empty() ? 0 : std::stoul(c.substr(1));
    json::object ad{{"next_cursor", from + limit < all.size() ? json::value("c" + std::to_string(from + limit)) : json::value()}};
    return ok_body(page_of(all, from, limit), ad);
  }

  std::vector<json::object> fields_of(const std::string& object) {
    std::vector<json::object> f;
    auto builtin = [&](const char* code, const char* name, const char* type) {
      f.push_back(json::object{{"field_code", code}, {"field_name", name}, {"field_type", type},
                               {"is_custom_field", false}, {"options", nullptr}});
    };
    builtin("id", "ID", "int");
    builtin("name", "Name", "varchar");
    builtin("owner_id", "Owner", "user");
    if (object == "deals") {
      f.push_back(json::object{{"field_code", "status"}, {"field_name", "Status"}, {"field_type", "status"},
                               {"is_custom_field", false},
                               {"options", json::array{json::object{{"id", "open"}, {"label", "Open"}},
                                                       json::object{{"id", "won"}, {"label", "Won"}}}}});
    }
    if (object != "activities") {
      f.push_back(json::object{{"field_code", kSrcHash}, {"field_name", "crm_source_id"}, {"field_type", "varchar"},
                               {"is_custom_field", true}, {"options", nullptr}});
      f.push_back(json::object{{"field_code", kTierHash}, {"field_name", "Tier"}, {"field_type", "enum"},
                               {"is_custom_field", true},
                               {"options", json::array{json::object{{"id", 11}, {"label", "Gold"}},
                                                       json::object{{"id", 12}, {"label", "Silver"}}}}});
    }
    return f;
  }

  static std::string object_of_v2(std::string_view seg) {
    for (const char* o : {"persons", "organizations", "deals", "activities"})
      if (seg == o) return o;
    return {};
  }

  net::HttpResponse json_reply(int status, std::string body) {
    net::HttpResponse r;
    r.status = status;
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = std::move(body);
    return r;
  }
  net::HttpResponse error(int status, const std::string& msg) {
    return json_reply(status, json::serialize(json::object{{"success", false}, {"error", msg}, {"error_info", "fake"}}));
  }

  cmg::Result<net::HttpResponse> send(const net::HttpRequest& req, bool* maybe_sent) override {
    std::lock_guard<std::mutex> lock(mu);
    log.push_back(req);
    if (maybe_sent) *maybe_sent = false;
    if (!faults.empty() && (faults.front().method.empty() || faults.front().method == req.method)) {
      Fault f = faults.front();
      faults.pop_front();
      if (f.kind == "429") {
        auto r = error(429, "Too many requests");
        r.headers.emplace_back("Retry-After", "1");
        return r;
      }
      if (f.kind == "500") return error(500, "Internal error");
      if (f.kind == "401") return error(401, "unauthorized");
      if (f.kind == "reset") {
        if (maybe_sent) *maybe_sent = true;
        return cmg::Status(Code::kUnavailable, req.method + " " + std::string(req.path()) + ": read: connection reset");
      }
      if (f.kind == "lost") {
        auto applied = handle(req);
        (void)applied;
        if (maybe_sent) *maybe_sent = true;
        return cmg::Status(Code::kUnavailable, req.method + " " + std::string(req.path()) + ": read: timeout");
      }
    }
    if (maybe_sent) *maybe_sent = true;
    return handle(req);
  }

  net::HttpResponse handle(const net::HttpRequest& req) {
    std::string path(req.path());
    if (req.method == "GET" && path == "/v1/users/me") return json_reply(200, ok_body(json::object{{"id", 1}}));
    if (req.method == "GET" && path == "/v1/users") {
      json::array u{json::object{{"id", 1}, {"name", "Ann Lee"}, {"email", "ann@example.com"}, {"active_flag", true}},
                    json::object{{"id", 2}, {"name", "Bo Chan"}, {"email", "bo@example.com"}, {"active_flag", false}}};
      return json_reply(200, ok_body(u));
    }
    if (req.method == "GET" && path == "/api/v2/pipelines") {
      return json_reply(200, v2_page({json::object{{"id", 1}, {"name", "Sales"}}, json::object{{"id", 2}, {"name", "Partners"}}},
                                     req, 100));
    }
    if (req.method == "GET" && path == "/api/v2/stages") {
      return json_reply(200, v2_page({json::object{{"id", 2}, {"name", "Contact Made"}, {"pipeline_id", 1}, {"order_nr", 2}},
                                      json::object{{"id", 1}, {"name", "Qualified"}, {"pipeline_id", 1}, {"order_nr", 1}},
                                      json::object{{"id", 9}, {"name", "On Hold"}, {"pipeline_id", 2}, {"order_nr", 1}}},
                                     req, 100));
    }
    for (const char* o : {"person", "organization", "deal", "activity"}) {
      std::string object = std::string(o) == "activity" ? "activities" : std::string(o) + "s";
      if (req.method == "GET" && path == "/api/v2/" + std::string(o) + "Fields")
        return json_reply(200, v2_page(fields_of(object), req, field_page));
    }
    if (req.method == "GET" && path == "/v1/noteFields") {
      json::array a{json::object{{"id", 1}, {"key", "content"}, {"name", "Content"}, {"field_type", "text"}}};
      return json_reply(200, ok_body(a));
    }
    // v2 entities
    if (path.rfind("/api/v2/", 0) == 0) {
      std::string rest = path.substr(8);
      std::string seg = rest.substr(0, rest.find('/'));
      std::string object = object_of_v2(seg);
      if (object.empty()) return error(404, "no route");
      std::string tail = rest.size() > seg.size() ? rest.substr(seg.size() + 1) : std::string();
      auto& items = store[object];
      if (req.method == "GET" && tail == "search") {
        std::string term = req.query("term");
        std::string lower = term;
        std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
        json::array found;
        for (const auto& [id, it] : items) {
          const auto* cf = it.if_contains("custom_fields");
          const auto* v = cf && cf->is_object() ? cf->as_object().if_contains(kSrcHash) : nullptr;
          if (!v || !v->is_string()) continue;
          std::string s(v->as_string());
          std::transform(s.begin(), s.end(), s.begin(), ::tolower);
          if (s == lower) found.push_back(json::object{{"result_score", 1}, {"item", json::object{{"id", id}}}});
        }
        return json_reply(200, ok_body(json::object{{"items", found}}, json::object{{"next_cursor", nullptr}}));
      }
      if (req.method == "GET" && tail.empty()) {
        std::vector<json::object> all;
        std::string ids = req.query("ids");
        std::string since = req.query("updated_since");
        auto since_ms = cmg::parse_timestamp_ms(since);
        for (const auto& [id, it] : items) {
          if (!ids.empty() && ("," + ids + ",").find("," + std::to_string(id) + ",") == std::string::npos) continue;
          if (since_ms && *cmg::parse_timestamp_ms(it.at("update_time").as_string()) < *since_ms) continue;
          all.push_back(it);
        }
        if (req.query("sort_by") == "update_time") {
          // Ties deliberately in descending id order: the connector must restore (time, id) order.
          std::stable_sort(all.begin(), all.end(), [](const json::object& a, const json::object& b) {
            auto ta = a.at("update_time").as_string(), tb = b.at("update_time").as_string();
            if (ta != tb) return ta < tb;
            return a.at("id").as_int64() > b.at("id").as_int64();
          });
        }
        return json_reply(200, v2_page(all, req, 100));
      }
      if (tail.empty() && req.method == "POST") {
        json::object body = json::parse(req.body).as_object();
        if (object != "activities" && (!body.contains("name") && !body.contains("title")))
          return error(400, object == "deals" ? "Title is required" : "Name is required");
        body["id"] = next_id++;
        ++clock_s;
        put(object, body, clock_s);
        return json_reply(200, ok_body(store[object][body.at("id").as_int64()]));
      }
      std::int64_t id = std::atoll(tail.c_str());
      auto it = items.find(id);
      if (req.method == "GET") {
        if (it == items.end()) return error(404, "not found");
        return json_reply(200, ok_body(it->second));
      }
      if (req.method == "PATCH") {
        if (it == items.end()) return error(404, "Person not found");
        json::object body = json::parse(req.body).as_object();
        for (auto& kv : body) {
          if (kv.key() == "custom_fields") {
            auto& cf = it->second["custom_fields"];
            if (!cf.is_object()) cf = json::object();
            for (auto& c : kv.value().as_object()) cf.as_object()[c.key()] = c.value();
          } else {
            it->second[kv.key()] = kv.value();
          }
        }
        ++clock_s;
        put(object, it->second, clock_s);
        return json_reply(200, ok_body(it->second));
      }
    }
    if (path == "/v1/notes" && req.method == "GET") {
      std::vector<json::object> all;
      for (const auto& [id, it] : store["notes"]) all.push_back(it);
      std::size_t start = req.query("start").empty() ? 0 : std::stoul(req.query("start"));
      std::size_t limit = std::stoul(req.query("limit"));
      json::object pg{{"start", start}, {"limit", limit}, {"more_items_in_collection", start + limit < all.size()}};
      if (start + limit < all.size()) pg["next_start"] = start + limit;
      return json_reply(200, ok_body(page_of(all, start, limit), json::object{{"pagination", pg}}));
    }
    if (path == "/v1/notes" && req.method == "POST") {
      json::object body = json::parse(req.body).as_object();
      if (!body.contains("content")) return error(400, "Content is required");
      body["id"] = next_id++;
      ++clock_s;
      put("notes", body, clock_s);
      return json_reply(201, ok_body(store["notes"][body.at("id").as_int64()]));
    }
    if (path.rfind("/v1/notes/", 0) == 0) {
      std::int64_t id = std::atoll(path.substr(10).c_str());
      auto it = store["notes"].find(id);
      if (it == store["notes"].end()) return error(404, "Note not found");
      if (req.method == "GET") return json_reply(200, ok_body(it->second));
      if (req.method == "PUT") {
        json::value body = json::parse(req.body);
        for (auto& kv : body.as_object()) it->second[kv.key()] = kv.value();
        return json_reply(200, ok_body(it->second));
      }
    }
    return error(404, "no route " + req.method + " " + path);
  }

  std::size_t connections_opened() const noexcept override { return 1; }

  std::size_t count(const std::string& method, const std::string& path_prefix) const {
    std::lock_guard<std::mutex> lock(mu);
    return static_cast<std::size_t>(std::count_if(log.begin(), log.end(), [&](const net::HttpRequest& r) {
      return r.method == method && std::string(r.path()).rfind(path_prefix, 0) == 0;
    }));
  }
};

struct Fixture {
  std::shared_ptr<FakePipedrive> fake = std::make_shared<FakePipedrive>();
  std::shared_ptr<pd::Connector> conn;
  explicit Fixture(std::size_t page_size = 2) {
    pd::Options o;
    o.base_url = "http://127.0.0.1:1";
    o.token = "tok-secret-123";
    o.limits = net::QuotaLimits{};  // unlimited: the tests count requests, not time
    o.page_size = page_size;
    auto c = pd::make_connector(o, fake);
    REQUIRE(c.is_ok());
    conn = *c;
  }
  void seed_persons(int n, std::int64_t same_second_from = 1000) {
    for (int i = 1; i <= n; ++i) {
      json::object p{{"id", i},
                     {"name", "P" + std::to_string(i)},
                     {"emails", json::array{json::object{{"value", "p" + std::to_string(i) + "@x.io"}, {"primary", true}}}},
                     {"owner_id", 1},
                     {"org_id", nullptr},
                     {"is_deleted", false},
                     {"custom_fields", json::object{{kTierHash, 11}}}};
      // Persons >= same_second_from share one update second.
      std::int64_t t = i >= same_second_from ? 1714979289 + 500 : 1714979289 + i;
      fake->put("persons", p, t);
    }
  }
};

std::vector<Record> drain(cmg::RecordReader& r) {
  std::vector<Record> all;
  RecordBatch b;
  for (;;) {
    auto more = r.next(b);
    REQUIRE(more.is_ok());
    if (!*more) break;
    REQUIRE_FALSE(b.empty());
    for (auto& x : b) all.push_back(std::move(x));
  }
  return all;
}

}  // namespace

TEST_CASE("pipedrive connector: schema from users, pipelines, stages and *Fields") {
  Fixture fx;
  auto s = fx.conn->schema();
  REQUIRE_MESSAGE(s.is_ok(), s.status().to_string());
  REQUIRE(s->users.size() == 2);
  CHECK(s->users[0].email == "ann@example.com");
  CHECK_FALSE(s->users[1].active);
  const auto* persons = s->object("persons");
  REQUIRE(persons);
  CHECK(persons->id_property == "crm_source_id");
  const auto* tier = persons->field("Tier");
  REQUIRE(tier);
  CHECK(tier->type == cmg::FieldType::kEnum);
  REQUIRE(tier->options.size() == 2);
  CHECK(tier->options[1].label == "Silver");
  CHECK(persons->field("emails")->type == cmg::FieldType::kJson);
  CHECK(persons->field("owner_id")->references == "users");
  const auto* stage = s->object("deals")->field("stage_id");
  REQUIRE(stage);
  CHECK(stage->options_by == "pipeline_id");
  REQUIRE(stage->options_by_value.at("1").size() == 2);
  CHECK(stage->options_by_value.at("1")[0].label == "Qualified");
  CHECK(stage->options_by_value.at("2")[0].value == "9");
  CHECK(s->object("deals")->field("pipeline_id")->options.size() == 2);
  CHECK(s->object("notes")->id_property.empty());
  CHECK(s->object("activities")->id_property.empty());
  // Fields come in pages of 3: the cursor was followed.
  CHECK(fx.fake->count("GET", "/api/v2/personFields") >= 2);
  // Cached: a second call sends nothing.
  auto before = fx.conn->requests_sent();
  REQUIRE(fx.conn->schema().is_ok());
  CHECK(fx.conn->requests_sent() == before);
  CHECK(fx.conn->count("persons").value() == -1);
  CHECK(fx.conn->count("widgets").status().code() == Code::kInvalidArgument);
}

TEST_CASE("pipedrive connector: full read pages by cursor in id order with custom fields by label") {
  Fixture fx;
  fx.seed_persons(7);
  ReadOptions ro;
  ro.batch_size = 500;
  auto reader = fx.conn->read("persons", ro);
  REQUIRE(reader.is_ok());
  auto all = drain(**reader);
  REQUIRE(all.size() == 7);
  for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i].id == std::to_string(i + 1));
  CHECK(all[0].fields.at("Tier").as_int64() == 11);
  CHECK(all[0].fields.at("emails").is_array());
  CHECK_FALSE(all[0].fields.contains("is_deleted"));
  CHECK(all[0].updated_at == 1714979290000);
  // Page size 2 -> 4 list requests, each sorted by id and limited to 2.
  std::size_t lists = 0;
  for (const auto& r : fx.fake->log)
    if (r.method == "GET" && r.path() == "/api/v2/persons") {
      ++lists;
      CHECK(r.query("sort_by") == "id");
      CHECK(r.query("limit") == "2");
    }
  CHECK(lists == 4);
}

TEST_CASE("pipedrive connector: incremental read is ordered by (updated_at, id) and starts inclusive") {
  Fixture fx;
  fx.seed_persons(9, 5);  // persons 5..9 share one second, served in descending id order
  ReadOptions ro;
  ro.since_updated_at = (1714979289 + 500) * 1000LL;
  ro.since_id = "6";
  auto reader = fx.conn->read("persons", ro);
  REQUIRE(reader.is_ok());
  auto got = drain(**reader);
  std::vector<std::string> ids;
  for (const auto& r : got) ids.push_back(r.id);
  CHECK(ids == std::vector<std::string>{"6", "7", "8", "9"});
  bool saw_since = false;
  for (const auto& r : fx.fake->log)
    if (r.path() == "/api/v2/persons" && r.query("updated_since") == "2024-05-06T07:16:29Z") saw_since = true;
  CHECK(saw_since);

  ReadOptions older;
  older.since_updated_at = (1714979289 + 3) * 1000LL;
  auto r2 = fx.conn->read("persons", older);
  REQUIRE(r2.is_ok());
  auto got2 = drain(**r2);
  ids.clear();
  for (const auto& r : got2) ids.push_back(r.id);
  CHECK(ids == std::vector<std::string>{"3", "4", "5", "6", "7", "8", "9"});
}

TEST_CASE("pipedrive connector: notes page by start (v1)") {
  Fixture fx;
  for (int i = 1; i <= 5; ++i)
    fx.fake->put("notes", json::object{{"id", i}, {"content", "n" + std::to_string(i)}, {"person_id", 1}, {"user_id", 1}},
                 1714979289);
  auto reader = fx.conn->read("notes", ReadOptions{});
  REQUIRE(reader.is_ok());
  auto got = drain(**reader);
  REQUIRE(got.size() == 5);
  CHECK(got[4].fields.at("content").as_string() == "n5");
  CHECK(got[0].updated_at == 1714979289000);
  CHECK(fx.fake->count("GET", "/v1/notes") == 3);
  auto one = fx.conn->get("notes", "3");
  REQUIRE(one.is_ok());
  REQUIRE(one->has_value());
  CHECK((*one)->fields.at("content").as_string() == "n3");
  auto gone = fx.conn->get("notes", "99");
  REQUIRE(gone.is_ok());
  CHECK_FALSE(gone->has_value());
}

TEST_CASE("pipedrive connector: upsert looks up the source ID, creates once, then updates") {
  Fixture fx;
  WriteOp op;
  op.kind = WriteOp::Kind::kUpsert;
  op.idempotency_key = "src-17";
  op.fields = json::object{{"name", "Jo Park"}, {"emails", "jo@x.io"}, {"owner_id", "1"}, {"Tier", 12}};
  auto w = fx.conn->write("persons", {op});
  REQUIRE(w.is_ok());
  REQUIRE(w->size() == 1);
  CHECK((*w)[0].outcome == WriteResult::Outcome::kCreated);
  std::string id = (*w)[0].id;
  CHECK(fx.fake->count("GET", "/api/v2/persons/search") == 1);
  CHECK(fx.fake->count("POST", "/api/v2/persons") == 1);
  const auto& stored = fx.fake->store["persons"].at(std::stoll(id));
  CHECK(stored.at("custom_fields").as_object().at(kSrcHash).as_string() == "src-17");
  CHECK(stored.at("custom_fields").as_object().at(kTierHash).as_int64() == 12);
  CHECK(stored.at("owner_id").as_int64() == 1);
  // The search asked for an exact custom-field match.
  for (const auto& r : fx.fake->log)
    if (r.path() == "/api/v2/persons/search") {
      CHECK(r.query("fields") == "custom_fields");
      CHECK(r.query("exact_match") == "true");
      CHECK(r.query("term") == "src-17");
    }

  op.fields["name"] = "Jo Park-Lee";
  auto again = fx.conn->write("persons", {op});
  REQUIRE(again.is_ok());
  CHECK((*again)[0].outcome == WriteResult::Outcome::kUpdated);
  CHECK((*again)[0].id == id);
  CHECK(fx.fake->store["persons"].size() == 1);
  CHECK(fx.fake->store["persons"].at(std::stoll(id)).at("name").as_string() == "Jo Park-Lee");
  CHECK(fx.fake->count("PATCH", "/api/v2/persons/" + id) == 1);

  // find() by the source-ID field returns it; by email too (scan-free: search endpoint).
  auto f = fx.conn->find("persons", "crm_source_id", {"src-17", "src-404"});
  REQUIRE(f.is_ok());
  REQUIRE(f->size() == 1);
  CHECK((*f)[0].id == id);
  CHECK((*f)[0].fields.at("crm_source_id").as_string() == "src-17");
  auto bad = fx.conn->find("persons", "shoe_size", {"1"});
  CHECK(bad.status().code() == Code::kInvalidArgument);
}

TEST_CASE("pipedrive connector: a lost reply is outcome-unknown and resolved by the source ID, never re-created") {
  Fixture fx;
  WriteOp op;
  op.kind = WriteOp::Kind::kUpsert;
  op.idempotency_key = "src-5";
  op.fields = json::object{{"title", "Big deal"}, {"value", 1000}, {"stage_id", "1"}};
  fx.fake->faults.push_back({"POST", "lost"});
  auto w = fx.conn->write("deals", {op});
  REQUIRE(w.is_ok());
  CHECK((*w)[0].outcome == WriteResult::Outcome::kFailed);
  CHECK((*w)[0].retryable);
  CHECK((*w)[0].outcome_unknown);
  CHECK((*w)[0].status == 0);
  CHECK(fx.fake->store["deals"].size() == 1);  // it was applied
  auto found = fx.conn->find("deals", "crm_source_id", {"src-5"});
  REQUIRE(found.is_ok());
  REQUIRE(found->size() == 1);
  // Sent again (as the pipeline would if its lookup had missed): updates, does not duplicate.
  auto again = fx.conn->write("deals", {op});
  REQUIRE(again.is_ok());
  CHECK((*again)[0].outcome == WriteResult::Outcome::kUpdated);
  CHECK((*again)[0].id == (*found)[0].id);
  CHECK(fx.fake->store["deals"].size() == 1);
}

TEST_CASE("pipedrive connector: 429, reset, 400 and 404 map to WriteResults, the token stays out") {
  auto clock = std::make_shared<FakeClock>();
  ScopedClock scoped(clock);
  Fixture fx;
  REQUIRE(fx.conn->schema().is_ok());
  WriteOp a;
  a.idempotency_key = "s1";
  a.fields = json::object{{"name", "A"}};
  WriteOp b = a;
  b.idempotency_key = "s2";
  fx.fake->faults.push_back({"POST", "429"});
  auto w = fx.conn->write("organizations", {a, b});
  REQUIRE(w.is_ok());
  REQUIRE(w->size() == 2);
  CHECK((*w)[0].status == 429);
  CHECK((*w)[0].retryable);
  CHECK((*w)[0].retry_after_ms == 1000);
  CHECK_FALSE((*w)[0].outcome_unknown);
  // The second op was not sent after the 429 (same retryable answer, nothing applied).
  CHECK((*w)[1].retryable);
  CHECK_FALSE((*w)[1].outcome_unknown);
  CHECK(fx.fake->count("POST", "/api/v2/organizations") == 1);
  CHECK(fx.fake->store["organizations"].empty());
  CHECK(fx.conn->quota_stats().throttled == 1);

  fx.fake->faults.push_back({"POST", "reset"});
  auto r = fx.conn->write("organizations", {a});
  REQUIRE(r.is_ok());
  CHECK((*r)[0].outcome_unknown);  // bytes may have left: unknown
  CHECK((*r)[0].status == 0);

  WriteOp nameless;
  nameless.idempotency_key = "s3";
  nameless.fields = json::object{{"owner_id", "1"}};
  auto v = fx.conn->write("organizations", {nameless});
  REQUIRE(v.is_ok());
  CHECK((*v)[0].status == 400);
  CHECK_FALSE((*v)[0].retryable);
  REQUIRE((*v)[0].errors.size() == 1);
  CHECK((*v)[0].errors[0].code == "REQUIRED");
  CHECK((*v)[0].errors[0].field == "name");

  WriteOp upd;
  upd.kind = WriteOp::Kind::kUpdate;
  upd.id = "424242";
  upd.fields = json::object{{"name", "x"}};
  auto u = fx.conn->write("organizations", {upd});
  REQUIRE(u.is_ok());
  CHECK((*u)[0].status == 404);
  CHECK((*u)[0].errors.at(0).code == "NOT_FOUND");

  WriteOp unknown_field = a;
  unknown_field.fields = json::object{{"shoe_size", 44}};
  auto before = fx.conn->requests_sent();
  auto uf = fx.conn->write("organizations", {unknown_field});
  REQUIRE(uf.is_ok());
  CHECK((*uf)[0].errors.at(0).code == "PROPERTY_DOESNT_EXIST");
  CHECK(fx.conn->requests_sent() == before + 1);  // only the lookup

  // Notes (v1): no source-ID field, plain create; PUT for updates.
  WriteOp note;
  note.idempotency_key = "n1";
  note.fields = json::object{{"content", "hello"}, {"person_id", "5"}};
  auto n = fx.conn->write("notes", {note});
  REQUIRE(n.is_ok());
  CHECK((*n)[0].outcome == WriteResult::Outcome::kCreated);
  CHECK(fx.fake->count("GET", "/api/v2/notes") == 0);
  WriteOp nu;
  nu.kind = WriteOp::Kind::kUpdate;
  nu.id = (*n)[0].id;
  nu.fields = json::object{{"content", "hello again"}};
  auto n2 = fx.conn->write("notes", {nu});
  REQUIRE(n2.is_ok());
  CHECK((*n2)[0].outcome == WriteResult::Outcome::kUpdated);
  CHECK(fx.fake->count("PUT", "/v1/notes/") == 1);

  for (const auto& req : fx.fake->log) {
    CHECK(req.target.find("tok-secret-123") == std::string::npos);
    CHECK(req.body.find("tok-secret-123") == std::string::npos);
  }
}

TEST_CASE("pipedrive connector: GETs are retried after 429/5xx, paced by the quota, 401 is permission denied") {
  auto clock = std::make_shared<FakeClock>();
  ScopedClock scoped(clock);
  Fixture fx;
  fx.fake->faults.push_back({"GET", "429"});
  fx.fake->faults.push_back({"GET", "500"});
  auto s = fx.conn->schema();
  REQUIRE(s.is_ok());
  CHECK(clock->slept() >= 1000);  // Retry-After: 1 honoured before the next GET

  Fixture denied;
  denied.fake->faults.push_back({"GET", "401"});
  auto a = denied.conn->check_access();
  CHECK(a.code() == Code::kPermissionDenied);
  CHECK(a.message().find("tok-secret-123") == std::string::npos);
  CHECK(denied.conn->check_access().is_ok());

  Fixture down;
  for (int i = 0; i < 4; ++i) down.fake->faults.push_back({"GET", "500"});
  auto d = down.conn->schema();
  CHECK(d.status().code() == Code::kUnavailable);
  CHECK(d.status().message().find("4 attempts") != std::string::npos);
}

TEST_CASE("pipedrive connector: read-back by ids batches v2 lookups") {
  Fixture fx;
  fx.seed_persons(3);
  auto r = fx.conn->read("persons", std::vector<std::string>{"2", "77", "1"});
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == 3);
  CHECK((*r)[0]->id == "2");
  CHECK_FALSE((*r)[1].has_value());
  CHECK((*r)[2]->fields.at("name").as_string() == "P1");
  std::size_t by_ids = 0;
  for (const auto& q : fx.fake->log)
    if (q.path() == "/api/v2/persons" && !q.query("ids").empty()) ++by_ids;
  CHECK(by_ids == 1);
}

TEST_CASE("pipedrive options: token only from the environment, never echoed") {
  ::setenv("CMG_PD_TEST_TOKEN", "tok-env-secret", 1);
  auto ok = pd::options_from_json(json::parse(R"({"base_url":"http://127.0.0.1:9/","token_env":"CMG_PD_TEST_TOKEN",
      "source_id_field":"legacy_id","page_size":100,"limits":{"burst_requests":40,"burst_window_ms":2000}})"),
                                  "$.source.options", "/tmp");
  REQUIRE(ok.is_ok());
  CHECK(ok->token == "tok-env-secret");
  CHECK(ok->base_url == "http://127.0.0.1:9");
  CHECK(ok->source_id_field == "legacy_id");
  CHECK(ok->page_size == 100);
  CHECK(ok->limits.burst_requests == 40);

  auto inline_token = pd::options_from_json(json::parse(R"({"token":"abc","token_env":"X"})"), "$.source.options", "/");
  CHECK(inline_token.status().code() == Code::kConfig);
  CHECK(inline_token.status().message().find("$.source.options.token") != std::string::npos);
  CHECK(inline_token.status().message().find("abc") == std::string::npos);

  auto missing = pd::options_from_json(json::parse(R"({"token_env":"CMG_PD_TEST_UNSET_VAR"})"), "$.d.options", "/");
  CHECK(missing.status().code() == Code::kConfig);
  CHECK(missing.status().message().find("CMG_PD_TEST_UNSET_VAR") != std::string::npos);
  CHECK(pd::options_from_json(json::parse(R"({"token_env":"CMG_PD_TEST_TOKEN","pagesize":1})"), "$.o", "/")
            .status()
            .message()
            .find("$.o.pagesize: unknown key") != std::string::npos);
  CHECK(pd::options_from_json(json::parse(R"({"token_env":"CMG_PD_TEST_TOKEN","page_size":501})"), "$.o", "/")
            .status()
            .code() == Code::kConfig);
  ::unsetenv("CMG_PD_TEST_TOKEN");
}

TEST_CASE("pipedrive connector: count of deals from GET /v1/deals/summary over the sandbox's Pipedrive dialect") {
  TempDir dir;
  auto crm = cmg::sandbox::SandboxCrm::create(dir.sub("pd"), "pipedrive");
  REQUIRE_MESSAGE(crm.is_ok(), crm.status().to_string());
  REQUIRE((*crm)->set_user(cmg::User{"7", "ana@example.com", "Ana Lopez", true}).is_ok());
  std::vector<cmg::sandbox::NewRecord> deals(5);
  for (std::size_t i = 0; i < deals.size(); ++i)
    deals[i].fields = json::object{{"title", "Deal " + std::to_string(i)}, {"value", 100 * (i + 1)},
                                   {"currency", i < 3 ? "EUR" : "USD"}, {"status", i == 4 ? "won" : "open"},
                                   {"pipeline_id", 1}, {"stage_id", 1}, {"user_id", 7}};
  REQUIRE((*crm)->insert_many("deals", deals).is_ok());
  cmg::sandbox::SandboxServeOptions so;
  so.token = "pd-count-token";
  so.limits = cmg::Quota{100000, 2000, 0, 100};
  auto server = cmg::sandbox::serve_sandbox(*crm, cmg::sandbox::Dialect::kPipedrive, so);
  REQUIRE_MESSAGE(server.is_ok(), server.status().to_string());
  pd::Options o;
  o.base_url = "http://127.0.0.1:" + std::to_string((*server)->port());
  o.token = "pd-count-token";
  o.limits = net::QuotaLimits{};
  auto c = pd::make_connector(o);
  REQUIRE(c.is_ok());
  auto n = (*c)->count("deals");
  REQUIRE_MESSAGE(n.is_ok(), n.status().to_string());
  CHECK(*n == 5);
  // Lists with no count in the API stay unknown.
  CHECK((*c)->count("persons").value() == -1);
  CHECK((*c)->count("notes").value() == -1);
  // The summary itself, per status and currency.
  net::ClientOptions co;
  co.base_url = o.base_url;
  co.secret_headers = {{"x-api-token", "pd-count-token"}};
  auto http = net::HttpClient::create(co);
  REQUIRE(http.is_ok());
  net::HttpRequest req;
  req.target = "/v1/deals/summary?status=open";
  auto r = (*http)->send(req);
  REQUIRE(r.is_ok());
  REQUIRE(r->status == 200);
  json::value body = json::parse(r->body);
  CHECK(body.at("data").at("total_count").to_number<std::int64_t>() == 4);
  CHECK(body.at("data").at("values_total").at("EUR").at("count").to_number<std::int64_t>() == 3);
  CHECK(body.at("data").at("values_total").at("EUR").at("value").to_number<double>() == 600.0);
  CHECK(body.at("data").at("values_total").at("USD").at("count").to_number<std::int64_t>() == 1);
}
