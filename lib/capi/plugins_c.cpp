// C merge rules, validators and normalizers adapted to cmg::MergeRule, cmg::RecordValidator and
// cmg::Normalizer, and their registration on a migration.
#include "capi/capi_internal.hpp"
#include "crmmigrate/core/problem.hpp"
#include "crmmigrate/sys/merge_rule.h"
#include "crmmigrate/sys/normalizer.h"
#include "crmmigrate/sys/validator.h"

namespace json = boost::json;

namespace cmg::capi {
namespace {

Status check_version(unsigned int version, unsigned int known, const char* what) {
  if (version == 0 || version > known)
    return invalid_argument(std::string(what) + ": unknown vtable version " + std::to_string(version) +
                            " (this library knows up to " + std::to_string(known) + ")");
  return Status::ok();
}

std::string str(const json::object& o, const char* k) {
  const auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

class CMergeRule final : public MergeRule {
 public:
  CMergeRule(const cmg_merge_rule_vtable& vt, std::unique_ptr<UserData> ud)
      : vt_(vt), ud_(std::move(ud)), name_(vt.name && *vt.name ? vt.name : "c_merge_rule") {}

  std::string name() const override { return name_; }

  Status merge(const MergeInput& input, MergeOutcome* output) const override {
    if (!output) return invalid_argument("merge: output is null");
    try {
      std::string src = json::serialize(record_to_json(input.source));
      std::string dst = json::serialize(record_to_json(input.destination));
      ScopedBuf out;
      clear_error();
      if (int rc = vt_.merge(&out.b, src.c_str(), dst.c_str(), ud_->get()))
        return Status(Code::kPlugin, plugin_message("", rc, nullptr));  // the pipeline names the rule
      return parse_outcome(out.view(), *output);
    } catch (const std::exception& e) {
      return Status(Code::kInternal, "merge rule '" + name_ + "': " + e.what());
    } catch (...) {
      return Status(Code::kInternal, "merge rule '" + name_ + "': unknown exception");
    }
  }

 private:
  Status bad(const std::string& what) const { return Status(Code::kPlugin, "merge rule '" + name_ + "': " + what); }

  Status parse_outcome(std::string_view text, MergeOutcome& out) const {
    json::value v;
    std::string err;
    if (!parse_json(text, v, err)) return bad("outcome: " + err);
    return merge_outcome_from_json(v, name_, &out);
  }

  cmg_merge_rule_vtable vt_;
  std::unique_ptr<UserData> ud_;
  std::string name_;
};

// Validators have no error channel in the C++ interface: a failing C validator queues the record
// (so nothing unchecked is written) and records the failure, which stops the running call.
class CValidator final : public RecordValidator {
 public:
  CValidator(const cmg_validator_vtable& vt, std::unique_ptr<UserData> ud, std::shared_ptr<PluginFailures> failures)
      : vt_(vt), ud_(std::move(ud)), failures_(std::move(failures)),
        name_(vt.name && *vt.name ? vt.name : "c_validator") {}

  void validate(const ObjectSchema& object, const Schema&, const json::object& fields, bool is_create,
                std::vector<Problem>& problems) const override {
    std::string failure;
    try {
      std::string text = json::serialize(fields);
      ScopedBuf out;
      clear_error();
      if (int rc = vt_.validate(&out.b, object.name.c_str(), text.c_str(), is_create ? 1 : 0, ud_->get())) {
        failure = plugin_message("validator '" + name_ + "'", rc, nullptr);
      } else if (!out.empty()) {
        failure = parse_problems(out.view(), problems);
      }
    } catch (const std::exception& e) {
      failure = "validator '" + name_ + "': " + e.what();
    } catch (...) {
      failure = "validator '" + name_ + "': unknown exception";
    }
    if (failure.empty()) return;
    problems.push_back({Reason::kInvalidValue, "", "", "plugin_error", failure, ""});
    failures_->record(failure);
  }

 private:
  std::string parse_problems(std::string_view text, std::vector<Problem>& problems) const {
    json::value v;
    std::string err;
    std::string who = "validator '" + name_ + "': ";
    if (!parse_json(text, v, err)) return who + "problems: " + err;
    if (!v.is_array()) return who + "problems: expected a JSON array";
    for (const auto& pv : v.get_array()) {
      const auto* po = pv.if_object();
      if (!po) return who + "problems: each problem must be a JSON object";
      Problem p;
      std::string reason = str(*po, "reason");
      if (!reason.empty() && !reason_from_name(reason, p.reason)) return who + "unknown queue reason \"" + reason + "\"";
      p.field = str(*po, "field");
      p.value = str(*po, "value");
      p.rule = str(*po, "rule");
      if (p.rule.empty()) p.rule = "custom:" + name_;
      p.message = str(*po, "message");
      p.suggestion = str(*po, "suggestion");
      problems.push_back(std::move(p));
    }
    return {};
  }

  cmg_validator_vtable vt_;
  std::unique_ptr<UserData> ud_;
  std::shared_ptr<PluginFailures> failures_;
  std::string name_;
};

// A failing C normaliser yields no key for the value (never a false match) and stops the call.
class CNormalizer final : public Normalizer {
 public:
  CNormalizer(const cmg_normalizer_vtable& vt, std::unique_ptr<UserData> ud, std::shared_ptr<PluginFailures> failures)
      : vt_(vt), ud_(std::move(ud)), failures_(std::move(failures)),
        name_(vt.name && *vt.name ? vt.name : "c_normalizer") {}

  std::optional<std::string> normalize(std::string_view value) const override {
    std::string failure;
    try {
      std::string in(value);
      ScopedBuf out;
      clear_error();
      if (int rc = vt_.normalize(&out.b, in.c_str(), in.size(), ud_->get())) {
        failure = plugin_message("normalizer '" + name_ + "'", rc, nullptr);
      } else {
        if (out.empty()) return std::nullopt;
        return std::string(out.view());
      }
    } catch (const std::exception& e) {
      failure = "normalizer '" + name_ + "': " + e.what();
    } catch (...) {
      failure = "normalizer '" + name_ + "': unknown exception";
    }
    failures_->record(failure);
    return std::nullopt;
  }

 private:
  cmg_normalizer_vtable vt_;
  std::unique_ptr<UserData> ud_;
  std::shared_ptr<PluginFailures> failures_;
  std::string name_;
};

}  // namespace
}  // namespace cmg::capi

using namespace cmg::capi;

extern "C" {

int cmg_migration_set_merge_rule(cmg_migration* migration, const char* object, const cmg_merge_rule_vtable* vtable,
                                 void* user_data) {
  return guard("cmg_migration_set_merge_rule", [&]() -> int {
    auto ud = std::make_unique<UserData>(vtable ? vtable->destroy : nullptr, user_data);
    if (!migration) return invalid("cmg_migration_set_merge_rule: migration is NULL");
    if (!object) return invalid("cmg_migration_set_merge_rule: object is NULL");
    if (!vtable) return invalid("cmg_migration_set_merge_rule: vtable is NULL");
    if (int rc = fail(check_version(vtable->version, CMG_MERGE_RULE_VTABLE_VERSION, "cmg_merge_rule_vtable"))) return rc;
    if (!vtable->merge) return invalid("cmg_merge_rule_vtable: merge is required");
    auto rule = std::make_shared<CMergeRule>(*vtable, std::move(ud));
    return fail(migration->migration->set_merge_rule(object, std::move(rule)));
  });
}

int cmg_migration_add_validator(cmg_migration* migration, const char* object, const cmg_validator_vtable* vtable,
                                void* user_data) {
  return guard("cmg_migration_add_validator", [&]() -> int {
    auto ud = std::make_unique<UserData>(vtable ? vtable->destroy : nullptr, user_data);
    if (!migration) return invalid("cmg_migration_add_validator: migration is NULL");
    if (!vtable) return invalid("cmg_migration_add_validator: vtable is NULL");
    if (int rc = fail(check_version(vtable->version, CMG_VALIDATOR_VTABLE_VERSION, "cmg_validator_vtable"))) return rc;
    if (!vtable->validate) return invalid("cmg_validator_vtable: validate is required");
    auto v = std::make_shared<CValidator>(*vtable, std::move(ud), migration->failures);
    return fail(migration->migration->add_validator(object ? object : "", std::move(v)));
  });
}

int cmg_migration_set_normalizer(cmg_migration* migration, const char* object, const char* key,
                                 const cmg_normalizer_vtable* vtable, void* user_data) {
  return guard("cmg_migration_set_normalizer", [&]() -> int {
    auto ud = std::make_unique<UserData>(vtable ? vtable->destroy : nullptr, user_data);
    if (!migration) return invalid("cmg_migration_set_normalizer: migration is NULL");
    if (!object || !key) return invalid("cmg_migration_set_normalizer: object and key are required");
    if (!vtable) return invalid("cmg_migration_set_normalizer: vtable is NULL");
    if (int rc = fail(check_version(vtable->version, CMG_NORMALIZER_VTABLE_VERSION, "cmg_normalizer_vtable"))) return rc;
    if (!vtable->normalize) return invalid("cmg_normalizer_vtable: normalize is required");
    auto n = std::make_shared<CNormalizer>(*vtable, std::move(ud), migration->failures);
    return fail(migration->migration->set_normalizer(object, key, std::move(n)));
  });
}

}  // extern "C"
