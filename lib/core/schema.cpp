#include "crmmigrate/core/schema.hpp"

#include <boost/json.hpp>

namespace cmg {

namespace json = boost::json;

namespace {
constexpr std::pair<FieldType, const char*> kTypeNames[] = {
    {FieldType::kString, "string"},   {FieldType::kText, "text"},       {FieldType::kNumber, "number"},
    {FieldType::kInteger, "integer"}, {FieldType::kBool, "bool"},       {FieldType::kDate, "date"},
    {FieldType::kDateTime, "datetime"}, {FieldType::kEnum, "enum"},     {FieldType::kEmail, "email"},
    {FieldType::kPhone, "phone"},     {FieldType::kReference, "reference"}, {FieldType::kJson, "json"},
};
}  // namespace

const char* field_type_name(FieldType t) noexcept {
  for (auto& [type, name] : kTypeNames)
    if (type == t) return name;
  return "string";
}

std::optional<FieldType> field_type_from_name(std::string_view name) noexcept {
  for (auto& [type, n] : kTypeNames)
    if (name == n) return type;
  return std::nullopt;
}

const std::vector<Option>* FieldSchema::allowed_options(std::string_view controlling_value) const {
  if (options_by.empty()) return &options;
  auto it = options_by_value.find(std::string(controlling_value));
  return it == options_by_value.end() ? nullptr : &it->second;
}

const FieldSchema* ObjectSchema::field(std::string_view n) const {
  // Sizes first: most names differ in length, and a field is looked up per record and value.
  for (const auto& f : fields)
    if (f.name.size() == n.size() && std::string_view(f.name) == n) return &f;
  return nullptr;
}

const ObjectSchema* Schema::object(std::string_view n) const {
  auto it = objects.find(n);
  return it == objects.end() ? nullptr : &it->second;
}

namespace {

json::array options_to_json(const std::vector<Option>& opts) {
  json::array a;
  for (const auto& o : opts) a.push_back(json::object{{"value", o.value}, {"label", o.label}});
  return a;
}

bool options_from_json(const json::value& v, std::vector<Option>& out, std::string& error, const std::string& path) {
  const auto* a = v.if_array();
  if (!a) {
    error = path + ": expected an array of options";
    return false;
  }
  for (std::size_t i = 0; i < a->size(); ++i) {
    const auto* o = (*a)[i].if_object();
    const json::value* val = o ? o->if_contains("value") : nullptr;
    if (!val || !val->is_string()) {
      error = path + "[" + std::to_string(i) + "]: expected {\"value\": string, \"label\": string}";
      return false;
    }
    Option opt;
    opt.value = std::string(val->get_string());
    if (const auto* l = o->if_contains("label"); l && l->is_string()) opt.label = std::string(l->get_string());
    out.push_back(std::move(opt));
  }
  return true;
}

}  // namespace

json::value schema_to_json(const Schema& s) {
  json::object objects;
  for (const auto& [name, obj] : s.objects) {
    json::array fields;
    for (const auto& f : obj.fields) {
      json::object fo;
      fo["name"] = f.name;
      if (!f.label.empty()) fo["label"] = f.label;
      fo["type"] = field_type_name(f.type);
      if (f.required) fo["required"] = true;
      if (f.unique) fo["unique"] = true;
      if (f.read_only) fo["read_only"] = true;
      if (f.max_length) fo["max_length"] = f.max_length;
      if (!f.options.empty()) fo["options"] = options_to_json(f.options);
      if (!f.options_by.empty()) {
        fo["options_by"] = f.options_by;
        json::object by;
        for (const auto& [k, opts] : f.options_by_value) by[k] = options_to_json(opts);
        fo["options_by_value"] = std::move(by);
      }
      if (!f.references.empty()) fo["references"] = f.references;
      fields.push_back(std::move(fo));
    }
    json::object oo{{"fields", std::move(fields)}};
    if (!obj.id_property.empty()) oo["id_property"] = obj.id_property;
    objects[name] = std::move(oo);
  }
  json::array users;
  for (const auto& u : s.users)
    users.push_back(json::object{{"id", u.id}, {"email", u.email}, {"name", u.name}, {"active", u.active}});
  return json::object{{"objects", std::move(objects)}, {"users", std::move(users)}};
}

bool schema_from_json(const json::value& v, Schema& out, std::string& error) {
  out = Schema{};
  const auto* root = v.if_object();
  const json::value* objs = root ? root->if_contains("objects") : nullptr;
  if (!objs || !objs->is_object()) {
    error = "$.objects: expected an object";
    return false;
  }
  for (const auto& [name, ov] : objs->get_object()) {
    std::string opath = "$.objects." + std::string(name);
    const auto* oo = ov.if_object();
    const json::value* fields = oo ? oo->if_contains("fields") : nullptr;
    if (!fields || !fields->is_array()) {
      error = opath + ".fields: expected an array";
      return false;
    }
    ObjectSchema os;
    os.name = std::string(name);
    if (const auto* idp = oo->if_contains("id_property"); idp && idp->is_string())
      os.id_property = std::string(idp->get_string());
    const auto& fa = fields->get_array();
    for (std::size_t i = 0; i < fa.size(); ++i) {
      std::string fpath = opath + ".fields[" + std::to_string(i) + "]";
      const auto* fo = fa[i].if_object();
      const json::value* fname = fo ? fo->if_contains("name") : nullptr;
      if (!fname || !fname->is_string()) {
        error = fpath + ".name: expected a string";
        return false;
      }
      FieldSchema f;
      f.name = std::string(fname->get_string());
      if (const auto* t = fo->if_contains("type")) {
        auto ft = t->is_string() ? field_type_from_name(t->get_string()) : std::nullopt;
        if (!ft) {
          error = fpath + ".type: unknown field type";
          return false;
        }
        f.type = *ft;
      }
      auto flag = [&](const char* k) {
        const auto* b = fo->if_contains(k);
        return b && b->is_bool() && b->get_bool();
      };
      f.required = flag("required");
      f.unique = flag("unique");
      f.read_only = flag("read_only");
      if (const auto* l = fo->if_contains("label"); l && l->is_string()) f.label = std::string(l->get_string());
      // A negative length (to_number<uint64_t> would throw) is ignored like any other non-length.
      if (const auto* m = fo->if_contains("max_length"); m && (m->is_uint64() || (m->is_int64() && m->get_int64() >= 0)))
        f.max_length = static_cast<std::size_t>(m->to_number<std::uint64_t>());
      if (const auto* o = fo->if_contains("options"))
        if (!options_from_json(*o, f.options, error, fpath + ".options")) return false;
      if (const auto* ob = fo->if_contains("options_by"); ob && ob->is_string()) {
        f.options_by = std::string(ob->get_string());
        if (const auto* obv = fo->if_contains("options_by_value"); obv && obv->is_object()) {
          for (const auto& [k, opts] : obv->get_object()) {
            if (!options_from_json(opts, f.options_by_value[std::string(k)], error,
                                   fpath + ".options_by_value." + std::string(k)))
              return false;
          }
        }
      }
      if (const auto* r = fo->if_contains("references"); r && r->is_string()) f.references = std::string(r->get_string());
      os.fields.push_back(std::move(f));
    }
    out.objects.emplace(os.name, std::move(os));
  }
  if (const auto* users = root->if_contains("users"); users && users->is_array()) {
    for (const auto& uv : users->get_array()) {
      const auto* uo = uv.if_object();
      if (!uo) continue;
      User u;
      auto str = [&](const char* k) {
        const auto* s = uo->if_contains(k);
        return s && s->is_string() ? std::string(s->get_string()) : std::string();
      };
      u.id = str("id");
      u.email = str("email");
      u.name = str("name");
      if (const auto* a = uo->if_contains("active"); a && a->is_bool()) u.active = a->get_bool();
      out.users.push_back(std::move(u));
    }
  }
  return true;
}

}  // namespace cmg
