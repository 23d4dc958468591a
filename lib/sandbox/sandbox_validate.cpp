// Platform-shaped validation of the properties a write sends (HubSpot v3 error codes), and the
// value comparisons behind the unique index and find().
#include <cmath>
#include <set>

#include <boost/json.hpp>

#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/time.hpp"
#include "sandbox/sandbox_internal.hpp"

namespace cmg::sandbox::internal {

namespace json = boost::json;

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Optional sign, digits, optional fraction, optional exponent: what HubSpot accepts for numbers.
bool is_number_text(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  std::size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t exp_digits = 0;
    while (i < s.size() && is_digit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

bool is_integer_text(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i == s.size() || s.size() - i > 18) return false;
  for (; i < s.size(); ++i)
    if (!is_digit(s[i])) return false;
  return true;
}

bool is_email(std::string_view s) {
  if (s.empty() || s.size() > 254) return false;
  auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || s.find('@', at + 1) != std::string_view::npos) return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  std::string_view domain = s.substr(at + 1);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' || domain.find('.') == std::string_view::npos ||
      domain.find("..") != std::string_view::npos)
    return false;
  return true;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

bool is_scalar(const json::value& v) { return !v.is_array() && !v.is_object(); }

bool is_owner_reference(const FieldSchema& f) { return f.references == "owners" || f.references == "users"; }

bool is_text_type(FieldType t) {
  return t == FieldType::kString || t == FieldType::kText || t == FieldType::kPhone || t == FieldType::kEmail;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// The type problem of a non-blank value, as {code, message}; empty code = fine.
std::pair<std::string, std::string> type_problem(const FieldSchema& f, const json::value& v) {
  const std::string text = value_to_text(v);
  switch (f.type) {
    case FieldType::kJson:
      return {};
    case FieldType::kReference: {
      bool ok = is_scalar(v);
      if (const auto* a = v.if_array()) {
        ok = true;
        for (const auto& e : *a) ok = ok && is_scalar(e) && !e.is_null();
      }
      if (ok) return {};
      const char* code = is_owner_reference(f) ? "INVALID_OWNER_ID" : "INVALID_ASSOCIATION";
      return {code, quoted(text) + " is not a record id or a list of record ids"};
    }
    default:
      break;
  }
  if (!is_scalar(v)) return {"INVALID_VALUE", "Property " + quoted(f.name) + " takes a single value, not " + text};
  switch (f.type) {
    case FieldType::kNumber: {
      bool ok = v.is_int64() || v.is_uint64() || (v.is_double() && std::isfinite(v.get_double())) ||
                (v.is_string() && is_number_text(v.get_string()));
      if (ok) return {};
      return {"INVALID_NUMBER", quoted(text) + " is not a valid number"};
    }
    case FieldType::kInteger: {
      bool ok = v.is_int64() || v.is_uint64() ||
                (v.is_double() && std::isfinite(v.get_double()) && v.get_double() == std::floor(v.get_double())) ||
                (v.is_string() && is_integer_text(v.get_string()));
      if (ok) return {};
      return {"INVALID_INTEGER", quoted(text) + " is not a valid integer"};
    }
    case FieldType::kBool: {
      bool ok = v.is_bool() || (v.is_string() && (v.get_string() == "true" || v.get_string() == "false"));
      if (ok) return {};
      return {"INVALID_BOOLEAN", quoted(text) + " is not a valid boolean (true or false)"};
    }
    case FieldType::kDate:
      if (v.is_string() && is_valid_date(v.get_string())) return {};
      return {"INVALID_DATE", quoted(text) + " is not a valid date (YYYY-MM-DD)"};
    case FieldType::kDateTime: {
      bool ok = (v.is_int64() && v.get_int64() >= 0) || v.is_uint64() ||
                (v.is_double() && v.get_double() >= 0 && v.get_double() == std::floor(v.get_double())) ||
                (v.is_string() && parse_timestamp_ms(v.get_string()).has_value());
      if (ok) return {};
      return {"INVALID_DATETIME",
              quoted(text) + " is not a valid date-time (ISO 8601 or Unix milliseconds)"};
    }
    case FieldType::kEmail:
      if (v.is_string() && is_email(v.get_string())) return {};
      return {"INVALID_EMAIL", "Email address " + text + " is invalid"};
    default:
      return {};
  }
}

std::string options_text(const std::vector<Option>& opts) {
  std::string s = "[";
  for (std::size_t i = 0; i < opts.size(); ++i) {
    if (i) s += ", ";
    s += opts[i].value;
  }
  return s + "]";
}

const json::value* lookup(const json::object& o, std::string_view k) { return o.if_contains(k); }

// INVALID_OPTION problem of enum field `f` holding `v` in record `merged`; empty code = fine.
std::pair<std::string, std::string> option_problem(const FieldSchema& f, const json::value& v,
                                                   const json::object& merged) {
  std::string controlling;
  if (!f.options_by.empty()) {
    const json::value* c = lookup(merged, f.options_by);
    controlling = c ? value_to_text(*c) : std::string();
  }
  const auto* allowed = f.allowed_options(controlling);
  const std::string text = value_to_text(v);
  if (!allowed) {
    return {"INVALID_OPTION", quoted(text) + " cannot be checked: " + quoted(f.options_by) + " is " +
                                  (controlling.empty() ? std::string("not set") : quoted(controlling) +
                                                                                      ", which has no options")};
  }
  if (allowed->empty() && f.options_by.empty()) return {};
  for (const auto& o : *allowed)
    if (o.value == text) return {};
  std::string where = f.options_by.empty() ? std::string() : " for " + f.options_by + " " + quoted(controlling);
  return {"INVALID_OPTION", quoted(text) + " was not one of the allowed options" + where + ": " + options_text(*allowed)};
}

}  // namespace

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

Result<std::vector<FieldError>> validate_changes(const Schema& schema, const ObjectSchema& obj,
                                                 const json::object& changes, const json::object& merged,
                                                 bool creating, const ExistsFn& exists) {
  std::vector<FieldError> errors;
  std::set<std::string, std::less<>> failed;
  auto fail = [&](const std::string& field, const std::string& value, std::string code, std::string message) {
    failed.insert(field);
    errors.push_back(FieldError{field, value, std::move(code), std::move(message)});
  };

  for (const auto& [key, v] : changes) {
    const std::string name(key);
    const FieldSchema* f = obj.field(name);
    const std::string text = value_to_text(v);
    if (!f) {
      fail(name, text, "PROPERTY_DOESNT_EXIST", "Property " + quoted(name) + " does not exist on " + obj.name);
      continue;
    }
    if (f->read_only) {
      fail(name, text, "READ_ONLY_VALUE", quoted(name) + " is a read only property; its value cannot be set");
      continue;
    }
    if (value_is_blank(v)) {
      // On create the required check below reports it once.
      if (f->required && !creating) fail(name, text, "REQUIRED", quoted(name) + " is required and cannot be cleared");
      continue;
    }
    if (auto [code, message] = type_problem(*f, v); !code.empty()) {
      fail(name, text, std::move(code), std::move(message));
      continue;
    }
    if (f->max_length && is_text_type(f->type) && utf8_length(text) > f->max_length) {
      fail(name, text, "TOO_LONG",
           quoted(name) + " is " + std::to_string(utf8_length(text)) + " characters long; the maximum is " +
               std::to_string(f->max_length));
      continue;
    }
    if (f->type == FieldType::kEnum) {
      if (auto [code, message] = option_problem(*f, v, merged); !code.empty()) {
        fail(name, text, std::move(code), std::move(message));
        continue;
      }
    }
    if (f->type == FieldType::kReference) {
      std::vector<const json::value*> ids;
      if (const auto* a = v.if_array()) {
        for (const auto& e : *a) ids.push_back(&e);
      } else {
        ids.push_back(&v);
      }
      for (const json::value* idv : ids) {
        const std::string id = value_to_text(*idv);
        if (is_owner_reference(*f)) {
          bool known = false;
          for (const auto& u : schema.users) known = known || u.id == id;
          if (!known) {
            fail(name, id, "INVALID_OWNER_ID", quoted(id) + " is not a valid owner id");
            break;
          }
          continue;
        }
        bool found = false;
        if (schema.object(f->references)) {
          CMG_ASSIGN_OR_RETURN(found, exists(f->references, id));
        }
        if (!found) {
          fail(name, id, "INVALID_ASSOCIATION", "No " + f->references + " record with id " + quoted(id));
          break;
        }
      }
    }
  }

  // A changed controlling field (pipeline) must still admit the dependent value (dealstage) kept.
  for (const auto& f : obj.fields) {
    if (f.type != FieldType::kEnum || f.options_by.empty() || failed.count(f.name) || failed.count(f.options_by))
      continue;
    if (!changes.contains(f.options_by) || changes.contains(f.name)) continue;
    const json::value* v = lookup(merged, f.name);
    if (!v || value_is_blank(*v)) continue;
    if (auto [code, message] = option_problem(f, *v, merged); !code.empty())
      fail(f.name, value_to_text(*v), std::move(code), std::move(message));
  }

  if (creating) {
    for (const auto& f : obj.fields) {
      if (!f.required || f.read_only || failed.count(f.name)) continue;
      const json::value* v = lookup(merged, f.name);
      if (!v || value_is_blank(*v)) fail(f.name, v ? value_to_text(*v) : std::string(), "REQUIRED",
                                         quoted(f.name) + " is required");
    }
  }
  return errors;
}

std::string unique_key_text(const FieldSchema& f, const json::value& v) {
  if (value_is_blank(v)) return {};
  std::string text = value_to_text(v);
  return f.type == FieldType::kEmail ? ascii_lower(text) : text;
}

bool value_matches(const FieldSchema& f, const json::value& v, std::string_view text) {
  const bool fold = f.type == FieldType::kEmail || f.name == "email";
  auto same = [&](const json::value& x) {
    if (x.is_null()) return false;
    std::string t = value_to_text(x);
    return fold ? ascii_lower(t) == ascii_lower(text) : t == text;
  };
  if (const auto* a = v.if_array()) {
    for (const auto& e : *a) {
      if (const auto* o = e.if_object()) {
        if (const auto* inner = o->if_contains("value"); inner && same(*inner)) return true;
      } else if (same(e)) {
        return true;
      }
    }
    return false;
  }
  return same(v);
}

}  // namespace cmg::sandbox::internal
