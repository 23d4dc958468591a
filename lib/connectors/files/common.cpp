#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "connectors/files/files_internal.hpp"

namespace cmg::files::internal {

Result<std::unique_ptr<std::istream>> open_input(const std::string& path) {
  errno = 0;
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!in->is_open()) {
    const int err = errno;
    std::string m = "cannot open " + path;
    if (err != 0) m += std::string(": ") + std::strerror(err);
    if (err == ENOENT) return not_found(std::move(m));
    return io_error(std::move(m));
  }
  return std::unique_ptr<std::istream>(std::move(in));
}

std::string quoted_excerpt(std::string_view text, std::size_t max) {
  std::size_t limit = text.size();
  if (limit > max) {
    limit = max;
    // Cut before a UTF-8 continuation byte so the message stays valid UTF-8.
    while (limit > 0 && (static_cast<unsigned char>(text[limit]) & 0xC0) == 0x80) --limit;
  }
  std::string out = "\"";
  for (std::size_t i = 0; i < limit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += byte_hex(c).substr(2);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += limit < text.size() ? "\"..." : "\"";
  return out;
}

// --- options from JSON -----------------------------------------------------------------------

std::string member_path(std::string_view parent, std::string_view key) {
  const bool simple = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  std::string p(parent);
  if (simple) return p.append(".").append(key);
  return p + "[" + boost::json::serialize(boost::json::value(boost::json::string_view(key.data(), key.size()))) + "]";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

Status check_keys(const boost::json::object& obj, std::string_view path,
                  std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : obj) {
    const std::string_view key(kv.key().data(), kv.key().size());
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string hint;
    for (std::string_view a : allowed) {
      if (edit_distance(key, a) <= 2) {
        hint = " (did you mean \"" + std::string(a) + "\"?)";
        break;
      }
    }
    if (hint.empty()) {
      hint = "; expected one of";
      for (std::string_view a : allowed) hint.append(" ").append(a).append(",");
      hint.pop_back();
    }
    return config_error(member_path(path, key) + ": unknown key" + hint);
  }
  return Status::ok();
}

Status for_each_object(
    const boost::json::value& v, std::string_view json_path,
    const std::function<Status(std::string_view name, const boost::json::value& value, const std::string& path)>& each) {
  const std::string path = json_path.empty() ? std::string("$") : std::string(json_path);
  const auto* obj = v.if_object();
  if (obj == nullptr) return config_error(path + ": expected an object");
  CMG_RETURN_IF_ERROR(check_keys(*obj, path, {"objects"}));
  const boost::json::value* objects = obj->if_contains("objects");
  const std::string objects_path = member_path(path, "objects");
  if (objects == nullptr) return config_error(path + ": missing key \"objects\" (object name → file)");
  const auto* list = objects->if_object();
  if (list == nullptr) return config_error(objects_path + ": expected an object");
  if (list->empty()) return config_error(objects_path + ": expected at least one object");
  for (const auto& kv : *list) {
    const std::string_view name(kv.key().data(), kv.key().size());
    CMG_RETURN_IF_ERROR(each(name, kv.value(), member_path(objects_path, name)));
  }
  return Status::ok();
}

Result<FileSpec> file_spec(const std::string& file, std::optional<std::string_view> format,
                           const std::string& json_path, const std::string& base_dir) {
  FileSpec spec;
  std::filesystem::path fp(file);
  if (fp.is_relative() && !base_dir.empty()) fp = std::filesystem::path(base_dir) / fp;
  spec.path = fp.lexically_normal().string();

  std::string ext = std::filesystem::path(file).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (format) {
    if (*format == "csv") {
      spec.format = FileFormat::kCsv;
    } else if (*format == "jsonl") {
      spec.format = FileFormat::kJsonl;
    } else {
      return config_error(member_path(json_path, "format") + ": expected \"csv\" or \"jsonl\", got " +
                          quoted_excerpt(*format));
    }
  } else if (ext == ".jsonl" || ext == ".ndjson") {
    spec.format = FileFormat::kJsonl;
  } else if (ext == ".csv" || ext == ".tsv" || ext == ".txt") {
    spec.format = FileFormat::kCsv;
  } else {
    return config_error(json_path + ": missing key \"format\" (\"csv\" or \"jsonl\"); the file name " +
                        quoted_excerpt(file) + " does not tell");
  }
  if (spec.format == FileFormat::kCsv && ext == ".tsv") spec.delimiter = '\t';
  return spec;
}

}  // namespace cmg::files::internal
