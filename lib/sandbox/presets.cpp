// The built-in presets: schemas shaped like Pipedrive API v1 (a source) and HubSpot CRM v3 (a
// destination), built in code so that a fresh sandbox needs no data files.
#include <boost/json.hpp>

#include "sandbox/sandbox_internal.hpp"

namespace cmg::sandbox::internal {

namespace json = boost::json;

namespace {

FieldSchema field(std::string name, FieldType type, std::string label = {}) {
  FieldSchema f;
  f.name = std::move(name);
  f.label = label.empty() ? f.name : std::move(label);
  f.type = type;
  return f;
}

FieldSchema read_only(FieldSchema f) {
  f.read_only = true;
  return f;
}

FieldSchema required(FieldSchema f) {
  f.required = true;
  return f;
}

FieldSchema reference(std::string name, std::string object) {
  FieldSchema f = field(std::move(name), FieldType::kReference);
  f.references = std::move(object);
  return f;
}

FieldSchema enumeration(std::string name, std::vector<Option> options) {
  FieldSchema f = field(std::move(name), FieldType::kEnum);
  f.options = std::move(options);
  return f;
}

std::vector<Option> same_labels(std::initializer_list<const char*> values) {
  std::vector<Option> out;
  for (const char* v : values) out.push_back({v, v});
  return out;
}

ObjectSchema object(std::string name, std::vector<FieldSchema> fields, std::string id_property = {}) {
  ObjectSchema o;
  o.name = std::move(name);
  o.fields = std::move(fields);
  o.id_property = std::move(id_property);
  return o;
}

// ---- Pipedrive ----

std::vector<Pipeline> pipedrive_pipelines() {
  return {
      {"1", "Sales",
       {{"1", "Qualified"}, {"2", "Contact Made"}, {"3", "Demo Scheduled"}, {"4", "Proposal Made"},
        {"5", "Negotiations Started"}}},
      {"2", "Partnerships", {{"6", "Lead In"}, {"7", "Evaluating"}, {"8", "Contract Sent"}, {"9", "On Hold"}}},
  };
}

// Pipedrive's id, add_time and update_time are system-managed; owner references point at users.
std::vector<FieldSchema> pipedrive_common_head() {
  FieldSchema id = read_only(field("id", FieldType::kInteger, "ID"));
  id.unique = true;
  return {id};
}

void pipedrive_common_tail(std::vector<FieldSchema>& fields) {
  fields.push_back(read_only(field("add_time", FieldType::kDateTime, "Add time")));
  fields.push_back(read_only(field("update_time", FieldType::kDateTime, "Update time")));
}

Preset pipedrive() {
  Preset p;
  p.traits = *preset_traits("pipedrive");
  p.pipelines = pipedrive_pipelines();
  p.quota = Quota{80, 2000, 100000, 1};
  auto visible_to = [] {
    return enumeration("visible_to", {{"1", "Owner & followers"}, {"3", "Entire company"},
                                      {"5", "Owner's visibility group"}, {"7", "Owner's group and sub-groups"}});
  };

  auto orgs = pipedrive_common_head();
  orgs.push_back(required(field("name", FieldType::kString, "Name")));
  orgs.push_back(field("address", FieldType::kString, "Address"));
  orgs.push_back(reference("owner_id", "users"));
  orgs.push_back(visible_to());
  orgs.push_back(field("label", FieldType::kInteger, "Label"));
  pipedrive_common_tail(orgs);

  auto persons = pipedrive_common_head();
  persons.push_back(required(field("name", FieldType::kString, "Name")));
  persons.push_back(field("first_name", FieldType::kString, "First name"));
  persons.push_back(field("last_name", FieldType::kString, "Last name"));
  persons.push_back(field("email", FieldType::kJson, "Email"));  // [{"value","primary","label"}]
  persons.push_back(field("phone", FieldType::kJson, "Phone"));
  persons.push_back(reference("org_id", "organizations"));
  persons.push_back(reference("owner_id", "users"));
  persons.push_back(field("label", FieldType::kInteger, "Label"));
  persons.push_back(visible_to());
  pipedrive_common_tail(persons);

  FieldSchema pipeline_id = field("pipeline_id", FieldType::kEnum, "Pipeline");
  FieldSchema stage_id = field("stage_id", FieldType::kEnum, "Stage");
  stage_id.options_by = "pipeline_id";
  for (const auto& pl : p.pipelines) {
    pipeline_id.options.push_back({pl.id, pl.label});
    stage_id.options_by_value[pl.id] = pl.stages;
  }
  auto deals = pipedrive_common_head();
  deals.push_back(required(field("title", FieldType::kString, "Title")));
  deals.push_back(field("value", FieldType::kNumber, "Value"));
  deals.push_back(field("currency", FieldType::kString, "Currency"));
  deals.push_back(enumeration("status", {{"open", "Open"}, {"won", "Won"}, {"lost", "Lost"}}));
  deals.push_back(pipeline_id);
  deals.push_back(stage_id);
  deals.push_back(reference("person_id", "persons"));
  deals.push_back(reference("org_id", "organizations"));
  deals.push_back(reference("user_id", "users"));
  deals.push_back(field("expected_close_date", FieldType::kDate, "Expected close date"));
  deals.push_back(field("probability", FieldType::kInteger, "Probability"));
  pipedrive_common_tail(deals);

  auto notes = pipedrive_common_head();
  notes.push_back(required(field("content", FieldType::kText, "Content")));
  notes.push_back(reference("person_id", "persons"));
  notes.push_back(reference("deal_id", "deals"));
  notes.push_back(reference("org_id", "organizations"));
  notes.push_back(reference("user_id", "users"));
  pipedrive_common_tail(notes);

  auto activities = pipedrive_common_head();
  activities.push_back(required(enumeration(
      "type", {{"call", "Call"}, {"meeting", "Meeting"}, {"task", "Task"}, {"email", "Email"}})));
  activities.push_back(field("subject", FieldType::kString, "Subject"));
  activities.push_back(field("note", FieldType::kText, "Note"));
  activities.push_back(field("due_date", FieldType::kDate, "Due date"));
  activities.push_back(field("due_time", FieldType::kString, "Due time"));
  activities.push_back(field("done", FieldType::kBool, "Done"));
  activities.push_back(reference("person_id", "persons"));
  activities.push_back(reference("deal_id", "deals"));
  activities.push_back(reference("org_id", "organizations"));
  activities.push_back(reference("user_id", "users"));
  pipedrive_common_tail(activities);

  p.schema.objects.emplace("organizations", object("organizations", std::move(orgs)));
  p.schema.objects.emplace("persons", object("persons", std::move(persons)));
  p.schema.objects.emplace("deals", object("deals", std::move(deals)));
  p.schema.objects.emplace("notes", object("notes", std::move(notes)));
  p.schema.objects.emplace("activities", object("activities", std::move(activities)));
  return p;
}

// ---- HubSpot ----

std::vector<Pipeline> hubspot_pipelines() {
  return {
      {"default", "Sales Pipeline",
       {{"appointmentscheduled", "Appointment Scheduled"}, {"qualifiedtobuy", "Qualified To Buy"},
        {"presentationscheduled", "Presentation Scheduled"}, {"decisionmakerboughtin", "Decision Maker Bought-In"},
        {"contractsent", "Contract Sent"}, {"closedwon", "Closed Won"}, {"closedlost", "Closed Lost"}}},
      {"partnerships", "Partnerships",
       {{"partner_lead", "Partner Lead"}, {"partner_evaluating", "Evaluating"}, {"partner_contract", "Contract"},
        {"partner_paused", "Paused"}, {"partner_won", "Partner Won"}}},
  };
}

// HubSpot single-line and multi-line text properties hold at most 65,536 characters.
constexpr std::size_t kHubSpotTextMax = 65536;

FieldSchema hs_text(std::string name, FieldType type = FieldType::kString, std::size_t max = kHubSpotTextMax) {
  FieldSchema f = field(std::move(name), type);
  f.max_length = max;
  return f;
}

std::vector<FieldSchema> hubspot_common() {
  FieldSchema source_id = hs_text("crm_source_id", FieldType::kString, 255);
  source_id.label = "CRM source ID";
  source_id.unique = true;
  FieldSchema object_id = read_only(field("hs_object_id", FieldType::kString, "Record ID"));
  object_id.unique = true;
  return {source_id, object_id, read_only(field("createdate", FieldType::kDateTime, "Create date")),
          read_only(field("lastmodifieddate", FieldType::kDateTime, "Last modified date")),
          reference("hubspot_owner_id", "owners")};
}

ObjectSchema hubspot_object(std::string name, std::vector<FieldSchema> own) {
  auto fields = hubspot_common();
  for (auto& f : own) fields.push_back(std::move(f));
  return object(std::move(name), std::move(fields), "crm_source_id");
}

ObjectSchema engagement(std::string name, std::vector<FieldSchema> own) {
  std::vector<FieldSchema> fields;
  fields.push_back(required(field("hs_timestamp", FieldType::kDateTime, "Activity date")));
  for (auto& f : own) fields.push_back(std::move(f));
  fields.push_back(reference("associations.contacts", "contacts"));
  fields.push_back(reference("associations.deals", "deals"));
  return hubspot_object(std::move(name), std::move(fields));
}

Preset hubspot() {
  Preset p;
  p.traits = *preset_traits("hubspot");
  p.pipelines = hubspot_pipelines();
  p.quota = Quota{190, 10000, 500000, 100};

  p.schema.objects.emplace("companies", hubspot_object("companies", {hs_text("name"), hs_text("domain"),
                                                                     hs_text("phone"), hs_text("address")}));

  FieldSchema email = hs_text("email", FieldType::kEmail, 254);
  email.unique = true;
  p.schema.objects.emplace(
      "contacts",
      hubspot_object("contacts",
                     {email, hs_text("firstname"), hs_text("lastname"), hs_text("phone", FieldType::kPhone),
                      hs_text("company"),
                      enumeration("lifecyclestage",
                                  {{"subscriber", "Subscriber"}, {"lead", "Lead"},
                                   {"marketingqualifiedlead", "Marketing Qualified Lead"},
                                   {"salesqualifiedlead", "Sales Qualified Lead"}, {"opportunity", "Opportunity"},
                                   {"customer", "Customer"}, {"evangelist", "Evangelist"}, {"other", "Other"}}),
                      reference("associations.companies", "companies")}));

  FieldSchema pipeline = required(field("pipeline", FieldType::kEnum, "Pipeline"));
  FieldSchema dealstage = required(field("dealstage", FieldType::kEnum, "Deal stage"));
  dealstage.options_by = "pipeline";
  for (const auto& pl : p.pipelines) {
    pipeline.options.push_back({pl.id, pl.label});
    dealstage.options_by_value[pl.id] = pl.stages;
  }
  p.schema.objects.emplace(
      "deals",
      hubspot_object("deals", {required(hs_text("dealname", FieldType::kString, 255)), pipeline, dealstage,
                               field("amount", FieldType::kNumber, "Amount"),
                               enumeration("deal_currency_code", same_labels({"USD", "EUR", "GBP"})),
                               field("closedate", FieldType::kDateTime, "Close date"),
                               reference("associations.companies", "companies"),
                               reference("associations.contacts", "contacts")}));

  p.schema.objects.emplace(
      "notes", hubspot_object("notes", {required(hs_text("hs_note_body", FieldType::kText)),
                                        required(field("hs_timestamp", FieldType::kDateTime, "Activity date")),
                                        reference("associations.contacts", "contacts"),
                                        reference("associations.deals", "deals"),
                                        reference("associations.companies", "companies")}));
  p.schema.objects.emplace("calls", engagement("calls", {hs_text("hs_call_title"),
                                                         hs_text("hs_call_body", FieldType::kText)}));
  p.schema.objects.emplace("meetings", engagement("meetings", {hs_text("hs_meeting_title"),
                                                               hs_text("hs_meeting_body", FieldType::kText)}));
  p.schema.objects.emplace(
      "tasks", engagement("tasks", {required(hs_text("hs_task_subject")), hs_text("hs_task_body", FieldType::kText),
                                    enumeration("hs_task_status", {{"NOT_STARTED", "Not started"},
                                                                   {"COMPLETED", "Completed"}})}));
  p.schema.objects.emplace(
      "emails", engagement("emails", {hs_text("hs_email_subject"), hs_text("hs_email_text", FieldType::kText),
                                      enumeration("hs_email_direction", {{"EMAIL", "Sent by owner"},
                                                                         {"INCOMING_EMAIL", "Reply"},
                                                                         {"FORWARDED_EMAIL", "Forwarded"}})}));
  return p;
}

}  // namespace

std::optional<PresetTraits> preset_traits(std::string_view name) {
  if (name == "pipedrive") return PresetTraits{"pipedrive", "id", true, "add_time", "update_time", false, 1};
  if (name == "hubspot")
    return PresetTraits{"hubspot", "hs_object_id", false, "createdate", "lastmodifieddate", true, 1000001};
  return std::nullopt;
}

std::optional<Preset> make_preset(std::string_view name) {
  if (name == "pipedrive") return pipedrive();
  if (name == "hubspot") return hubspot();
  return std::nullopt;
}

json::value pipelines_to_json(const std::vector<Pipeline>& pipelines) {
  json::array out;
  for (const auto& p : pipelines) {
    json::array stages;
    for (const auto& s : p.stages) stages.push_back(json::object{{"id", s.value}, {"label", s.label}});
    out.push_back(json::object{{"id", p.id}, {"label", p.label}, {"stages", std::move(stages)}});
  }
  return out;
}

std::vector<Pipeline> pipelines_from_json(const json::value& v) {
  std::vector<Pipeline> out;
  const auto* a = v.if_array();
  if (!a) return out;
  auto str = [](const json::object& o, const char* k) {
    const auto* s = o.if_contains(k);
    return s && s->is_string() ? std::string(s->get_string()) : std::string();
  };
  for (const auto& pv : *a) {
    const auto* po = pv.if_object();
    if (!po) continue;
    Pipeline p{str(*po, "id"), str(*po, "label"), {}};
    if (const auto* st = po->if_contains("stages"); st && st->is_array()) {
      for (const auto& sv : st->get_array())
        if (const auto* so = sv.if_object()) p.stages.push_back({str(*so, "id"), str(*so, "label")});
    }
    out.push_back(std::move(p));
  }
  return out;
}

json::value quota_to_json(const Quota& q) {
  return json::object{{"burst_requests", q.burst_requests},
                      {"burst_window_ms", q.burst_window_ms},
                      {"daily_requests", q.daily_requests},
                      {"max_batch", q.max_batch}};
}

Quota quota_from_json(const json::value& v) {
  Quota q;
  const auto* o = v.if_object();
  if (!o) return q;
  auto num = [&](const char* k, std::int64_t dflt) -> std::int64_t {
    const auto* n = o->if_contains(k);
    return n && n->is_int64() ? n->get_int64() : dflt;
  };
  q.burst_requests = static_cast<int>(num("burst_requests", q.burst_requests));
  q.burst_window_ms = static_cast<int>(num("burst_window_ms", q.burst_window_ms));
  q.daily_requests = num("daily_requests", q.daily_requests);
  q.max_batch = static_cast<int>(num("max_batch", q.max_batch));
  return q;
}

}  // namespace cmg::sandbox::internal
