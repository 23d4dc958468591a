#include "crmmigrate/core/merge.hpp"

#include <utility>

namespace cmg {
namespace {

namespace json = boost::json;

std::string_view trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool same_value(const json::value& a, const json::value& b) {
  return trim(value_to_text(a)) == trim(value_to_text(b));
}

struct StrategyName {
  MergeStrategy strategy;
  const char* name;
};

constexpr StrategyName kStrategyNames[] = {
    {MergeStrategy::kKeepDestination, "keep_destination"},
    {MergeStrategy::kPreferSource, "prefer_source"},
    {MergeStrategy::kFillBlanks, "fill_blanks"},
    {MergeStrategy::kNewestWins, "newest_wins"},
    {MergeStrategy::kManual, "manual"},
};

enum class FieldAction { kKeep, kTakeSource, kConflict };

FieldAction decide(MergeStrategy strategy, const json::value& src, const json::value* dst,
                   std::int64_t src_time, std::int64_t dst_time) {
  if (value_is_blank(src)) return FieldAction::kKeep;
  bool dst_blank = dst == nullptr || value_is_blank(*dst);
  if (!dst_blank && same_value(src, *dst)) return FieldAction::kKeep;
  switch (strategy) {
    case MergeStrategy::kKeepDestination:
      return FieldAction::kKeep;
    case MergeStrategy::kPreferSource:
      return FieldAction::kTakeSource;
    case MergeStrategy::kFillBlanks:
      return dst_blank ? FieldAction::kTakeSource : FieldAction::kKeep;
    case MergeStrategy::kNewestWins:
      if (dst_blank) return FieldAction::kTakeSource;
      if (src_time == 0 || dst_time == 0 || src_time == dst_time) return FieldAction::kConflict;
      return src_time > dst_time ? FieldAction::kTakeSource : FieldAction::kKeep;
    case MergeStrategy::kManual:
      return dst_blank ? FieldAction::kTakeSource : FieldAction::kConflict;
  }
  return FieldAction::kConflict;
}

}  // namespace

const char* merge_strategy_name(MergeStrategy strategy) noexcept {
  for (const auto& entry : kStrategyNames)
    if (entry.strategy == strategy) return entry.name;
  return "unknown";
}

std::optional<MergeStrategy> merge_strategy_from_name(std::string_view name) noexcept {
  for (const auto& entry : kStrategyNames)
    if (name == entry.name) return entry.strategy;
  return std::nullopt;
}

const char* merge_outcome_kind_name(MergeOutcome::Kind kind) noexcept {
  switch (kind) {
    case MergeOutcome::Kind::kMerged: return "merged";
    case MergeOutcome::Kind::kSkip: return "skip";
    case MergeOutcome::Kind::kConflict: return "conflict";
  }
  return "unknown";
}

Status merge_outcome_from_json(const json::value& v, std::string_view rule_name, MergeOutcome* out) {
  const std::string name(rule_name);
  auto bad = [&](const std::string& what) { return Status(Code::kPlugin, "merge rule '" + name + "': outcome: " + what); };
  // A member that is absent, null or not a string reads as "".
  auto text = [](const json::object& o, const char* key) {
    const auto* m = o.if_contains(key);
    return m && m->is_string() ? std::string(m->get_string()) : std::string();
  };
  const auto* o = v.if_object();
  if (!o) return bad("expected an object {\"kind\", \"changes\", ...}");
  std::string kind = text(*o, "kind");
  if (kind == "merged" || kind.empty()) out->kind = MergeOutcome::Kind::kMerged;
  else if (kind == "skip") out->kind = MergeOutcome::Kind::kSkip;
  else if (kind == "conflict") out->kind = MergeOutcome::Kind::kConflict;
  else return bad("\"kind\" must be \"merged\", \"skip\" or \"conflict\", got \"" + kind + "\"");
  if (const auto* c = o->if_contains("changes"); c && !c->is_null()) {
    if (!c->is_object()) return bad("\"changes\" must be an object");
    out->changes = c->get_object();
  }
  out->reason = text(*o, "reason");
  if (out->reason.empty() && out->kind != MergeOutcome::Kind::kMerged) out->reason = "decided by merge rule '" + name + "'";
  if (const auto* cs = o->if_contains("conflicts"); cs && cs->is_array()) {
    for (const auto& c : cs->get_array()) {
      const auto* co = c.if_object();
      if (!co) return bad("each conflict must be {\"field\", \"source\", \"destination\"}");
      MergeFieldConflict fc;
      fc.field = text(*co, "field");
      if (const auto* sv = co->if_contains("source")) fc.source_value = *sv;
      if (const auto* dv = co->if_contains("destination")) fc.destination_value = *dv;
      out->conflicts.push_back(std::move(fc));
    }
  }
  if (out->kind == MergeOutcome::Kind::kConflict && out->conflicts.empty())
    out->conflicts.push_back({"", json::string(out->reason), nullptr});
  if (const auto* ra = o->if_contains("rules_applied"); ra && ra->is_array())
    for (const auto& r : ra->get_array())
      if (r.is_string()) out->rules_applied.emplace_back(r.get_string());
  return Status::ok();
}

MergeRule::~MergeRule() = default;

FieldMergeRule::FieldMergeRule(MergeStrategy default_strategy,
                               std::map<std::string, MergeStrategy> per_field,
                               bool skip_when_unchanged)
    : default_strategy_(default_strategy),
      per_field_(per_field.begin(), per_field.end()),
      skip_when_unchanged_(skip_when_unchanged) {}

std::string FieldMergeRule::name() const {
  return std::string("field:") + merge_strategy_name(default_strategy_);
}

MergeStrategy FieldMergeRule::strategy_for(std::string_view field) const {
  auto it = per_field_.find(field);
  return it == per_field_.end() ? default_strategy_ : it->second;
}

Status FieldMergeRule::merge(const MergeInput& input, MergeOutcome* output) const {
  if (output == nullptr) return invalid_argument("FieldMergeRule::merge: output is null");
  MergeOutcome out;
  for (const auto& field : input.source.fields) {
    MergeStrategy strategy = strategy_for(field.key());
    const json::value* dst = input.destination.fields.if_contains(field.key());
    FieldAction action = decide(strategy, field.value(), dst, input.source.updated_at,
                                input.destination.updated_at);
    if (action == FieldAction::kKeep) continue;
    out.rules_applied.push_back(std::string(field.key()) + ":" + merge_strategy_name(strategy));
    if (action == FieldAction::kTakeSource) {
      out.changes[field.key()] = field.value();
    } else {
      out.conflicts.push_back({std::string(field.key()), field.value(), *dst});
    }
  }
  if (!out.conflicts.empty()) {
    out.kind = MergeOutcome::Kind::kConflict;
    out.reason = std::to_string(out.conflicts.size()) + " field(s) differ:";
    for (std::size_t i = 0; i < out.conflicts.size(); ++i)
      out.reason += (i ? ", " : " ") + out.conflicts[i].field;
  } else if (out.changes.empty() && skip_when_unchanged_) {
    out.kind = MergeOutcome::Kind::kSkip;
    out.reason = "no changes";
  } else {
    out.kind = MergeOutcome::Kind::kMerged;
  }
  *output = std::move(out);
  return Status::ok();
}

Record fold_group(const std::vector<const Record*>& members_primary_first) {
  Record folded;
  if (members_primary_first.empty()) return folded;
  const Record& primary = *members_primary_first.front();
  folded.object = primary.object;
  folded.id = primary.id;
  folded.updated_at = primary.updated_at;
  for (const Record* member : members_primary_first) {
    for (const auto& field : member->fields) {
      json::value* have = folded.fields.if_contains(field.key());
      if (have == nullptr) {
        folded.fields[field.key()] = field.value();
      } else if (value_is_blank(*have) && !value_is_blank(field.value())) {
        *have = field.value();
      }
    }
  }
  return folded;
}

}  // namespace cmg
