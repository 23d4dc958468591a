// libFuzzer target: every response parser of the HTTP connectors (HubSpot CRM v3/v4, Pipedrive
// v1/v2) over arbitrary bytes, as a platform, a proxy or a broken network could answer. The first
// byte picks the parser, the rest is the body. Invariants: no crash, no exception; a refused body is
// an error of the parser's documented code (HubSpot: kParse, Pipedrive: kUnavailable — a bad reply is
// a transient failure, never data) whose message names the call; what is accepted is well-formed
// (ids present, cursors consistent).
#include <string>
#include <string_view>

#include "connectors/hubspot/hubspot_parse.hpp"
#include "connectors/pipedrive/pipedrive_parse.hpp"
#include "fuzz/fuzz_util.hpp"

namespace {

using cmg::Code;

const std::string kWhat = "POST /crm/v3/objects/contacts/batch/upsert";

template <typename R>
void check(const cmg::Result<R>& r, Code code, std::string_view what) {
  if (r.is_ok()) return;
  if (r.status().code() != code) cmg::fuzz::fail("unexpected error code", r.status().to_string());
  if (r.status().message().find(what) == std::string::npos)
    cmg::fuzz::fail("message does not name the call", r.status().message());
}

void hubspot(unsigned which, std::string_view body) {
  namespace hs = cmg::hubspot;
  switch (which % 7) {
    case 0: {
      auto r = hs::parse_object_page(body, "contacts", kWhat);
      check(r, Code::kParse, kWhat);
      if (r.is_ok())
        for (const auto& rec : r->records) CMG_FUZZ_CHECK(!rec.id.empty(), "a record without an id");
      break;
    }
    case 1: {
      auto r = hs::parse_batch_response(body, kWhat);
      check(r, Code::kParse, kWhat);
      if (r.is_ok())
        for (const auto& b : r->results) CMG_FUZZ_CHECK(!b.id.empty(), "a batch result without an id");
      break;
    }
    case 2: (void)hs::parse_error_body(body); break;  // never fails
    case 3: check(hs::parse_properties(body, kWhat), Code::kParse, kWhat); break;
    case 4: {
      std::string after;
      check(hs::parse_owners(body, after, kWhat), Code::kParse, kWhat);
      break;
    }
    case 5: check(hs::parse_pipelines(body, kWhat), Code::kParse, kWhat); break;
    default: check(hs::parse_association_batch(body, kWhat), Code::kParse, kWhat); break;
  }
  (void)hs::parse_hubspot_time(body);
}

void pipedrive(unsigned which, std::string_view body) {
  namespace pd = cmg::pipedrive::parse;
  const std::string_view what = "GET /api/v2/persons";
  switch (which % 6) {
    case 0: {
      auto r = pd::parse_list_page(body, what);
      check(r, Code::kUnavailable, what);
      if (r.is_ok()) {
        pd::CustomFields custom;
        for (const auto& item : r->items) {
          auto rec = pd::item_to_record("persons", item, {"name", "emails", "org_id", "owner_id"}, custom, what);
          check(rec, Code::kUnavailable, what);
          if (rec.is_ok()) CMG_FUZZ_CHECK(!rec->id.empty(), "a record without an id");
          (void)pd::field_def_from_item(item, what);
        }
        (void)pd::users_from_items(r->items, what);
        (void)pd::pipelines_from_items(r->items, what);
        (void)pd::stages_from_items(r->items, what);
      }
      break;
    }
    case 1: check(pd::parse_item(body, what), Code::kUnavailable, what); break;
    case 2: check(pd::parse_search_page(body, what), Code::kUnavailable, what); break;
    case 3: (void)pd::error_message(body); break;
    default: {
      // A write's answer: any status, the body, and headers the body cannot reach.
      const int status = 100 + static_cast<int>(which * 37 % 500);
      const cmg::net::Headers headers = {{"Retry-After", std::string(body.substr(0, 4))},
                                         {"x-ratelimit-reset", "2"}};
      auto wr = pd::write_result(status, headers, body, which % 2 == 0, {"name", "email"});
      if (wr.outcome != cmg::WriteResult::Outcome::kFailed) CMG_FUZZ_CHECK(!wr.id.empty(), "success without an id");
      CMG_FUZZ_CHECK(wr.retry_after_ms >= 0, "negative Retry-After");
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned which = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (which & 0x80) pipedrive(which & 0x7f, body);
  else hubspot(which, body);
  return 0;
}
