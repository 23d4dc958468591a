#include "crmmigrate/core/validate.hpp"

#include <cstdint>
#include <vector>

#include <boost/json.hpp>

#include "crmmigrate/core/mapping.hpp"
#include "crmmigrate/core/normalize.hpp"
#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/time.hpp"

namespace cmg {

namespace json = boost::json;

namespace {

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::vector<std::string> option_names(const std::vector<Option>& opts) {
  std::vector<std::string> out;
  for (const auto& o : opts) out.push_back(o.value);
  for (const auto& o : opts)
    if (!o.label.empty()) out.push_back(o.label);
  return out;
}

std::string suggest_option(const std::string& v, const std::vector<Option>& opts) {
  std::string s = closest_match(v, option_names(opts));
  for (const auto& o : opts)
    if (o.label == s && !s.empty()) return o.value + " (" + o.label + ")";
  // The same "value (label)" form when the value itself was the closest.
  for (const auto& o : opts)
    if (o.value == s && !s.empty() && !o.label.empty() && o.label != o.value) return o.value + " (" + o.label + ")";
  return s;
}

}  // namespace

void SchemaValidator::validate(const ObjectSchema& object, const Schema& schema, const json::object& fields,
                               bool is_create, std::vector<Problem>& problems) const {
  if (is_create) {
    for (const auto& f : object.fields) {
      if (!f.required || f.read_only) continue;
      const auto* v = fields.if_contains(f.name);
      if (!v || value_is_blank(*v))
        problems.push_back({Reason::kMissingRequired, f.name, "", "required",
                            "required field '" + f.name + "' has no value",
                            "map a source field to it or add a default in the object's \"defaults\""});
    }
  }
  // Records of one object come with their fields in the same order: the schema position found for
  // the i-th field is tried first for the next record's i-th field (checked by name; a miss falls
  // back to the lookup). Per thread, as validate() may run concurrently.
  thread_local std::vector<std::size_t> position_of;
  std::size_t i = 0;
  for (const auto& [name, v] : fields) {
    const FieldSchema* f = nullptr;
    if (i < position_of.size() && position_of[i] < object.fields.size()) {
      const FieldSchema& guess = object.fields[position_of[i]];
      if (guess.name.size() == name.size() && std::string_view(guess.name) == std::string_view(name)) f = &guess;
    }
    if (!f) {
      f = object.field(name);
      if (i >= position_of.size()) position_of.resize(i + 1, SIZE_MAX);
      position_of[i] = f ? static_cast<std::size_t>(f - object.fields.data()) : SIZE_MAX;
    }
    ++i;
    if (f && !f->read_only && value_is_blank(v)) continue;  // nothing to check (the common blank case)
    // A string's text is the string itself: copied only into a problem (the rare case).
    std::string owned;
    if (!v.is_string()) owned = value_to_text(v);
    const std::string_view text_view = v.is_string() ? std::string_view(v.get_string()) : std::string_view(owned);
    auto problem_text = [&] { return std::string(text_view); };
    const std::string_view field_name(name.data(), name.size());  // a lambda cannot capture a binding (C++17)
    auto fname = [&] { return std::string(field_name); };
    if (!f) {
      problems.push_back({Reason::kInvalidValue, fname(), problem_text(), "unknown_field",
                          "'" + fname() + "' is not a field of " + object.name, ""});
      continue;
    }
    if (f->read_only) {
      problems.push_back({Reason::kInvalidValue, fname(), problem_text(), "read_only",
                          "'" + fname() + "' is read-only in the destination", ""});
      continue;
    }
    if (value_is_blank(v)) continue;
    switch (f->type) {
      case FieldType::kEnum: {
        std::string controlling;
        if (!f->options_by.empty()) {
          const auto* cv = fields.if_contains(f->options_by);
          controlling = cv ? value_to_text(*cv) : std::string();
        }
        const auto* opts = f->allowed_options(controlling);
        if (!opts) {
          // The controlling value itself is invalid; that field reports it.
          if (!f->options_by.empty() && controlling.empty() && is_create)
            problems.push_back({Reason::kInvalidValue, fname(), problem_text(), "picklist",
                                "'" + fname() + "' depends on '" + f->options_by + "', which has no value", ""});
          break;
        }
        bool ok = false;
        for (const auto& o : *opts) ok = ok || o.value == text_view;
        if (!ok)
          problems.push_back({Reason::kInvalidValue, fname(), problem_text(), "picklist",
                              "'" + problem_text() + "' is not an option of '" + fname() + "'" +
                                  (controlling.empty() ? std::string() : " for " + f->options_by + " '" + controlling + "'"),
                              suggest_option(problem_text(), *opts)});
        break;
      }
      case FieldType::kNumber:
      case FieldType::kInteger:
      case FieldType::kBool:
      case FieldType::kDate:
      case FieldType::kDateTime: {
        auto c = coerce_value(v, f->type);
        if (!c || (f->type == FieldType::kDate && !v.is_string()))
          problems.push_back({Reason::kInvalidValue, fname(), problem_text(),
                              std::string("type:") + field_type_name(f->type),
                              "'" + problem_text() + "' is not a valid " + field_type_name(f->type), ""});
        break;
      }
      case FieldType::kEmail:
        if (!is_valid_email(text_view))
          problems.push_back({Reason::kInvalidValue, fname(), problem_text(), "email",
                              "'" + problem_text() + "' is not a valid email address", ""});
        break;
      case FieldType::kReference:
        if (f->references == "owners") {
          bool ok = false;
          for (const auto& u : schema.users) ok = ok || u.id == text_view;
          if (!ok)
            problems.push_back({Reason::kOwnerUnprovisioned, fname(), problem_text(), "owner",
                                "'" + problem_text() + "' is not a user of the destination", ""});
        }
        break;
      default: break;
    }
    if (f->max_length && (v.is_string() ? utf8_length(v.get_string()) : text_view.size()) > f->max_length)
      problems.push_back({Reason::kInvalidValue, fname(),
                          text_view.size() > 80 ? std::string(text_view.substr(0, 77)) + "..." : problem_text(),
                          "max_length:" + std::to_string(f->max_length),
                          "longer than " + std::to_string(f->max_length) + " characters", ""});
  }
}

}  // namespace cmg
