// Shared set-up for the reference-scenario tests: seeded sandboxes plus the example config.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "crmmigrate/core/config.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "crmmigrate/sandbox/reference.hpp"
#include "test_util.hpp"

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The reference config text, optionally with the "On Hold" stage translation a reviewer adds.
inline std::string reference_config_text(bool with_on_hold = false) {
  std::string text = read_text(std::string(CMG_SOURCE_DIR) + "/examples/reference/migration.json");
  if (with_on_hold) {
    const std::string anchor = R"("2/8": ["partnerships", "partner_contract"])";
    auto pos = text.find(anchor);
    if (pos != std::string::npos)
      text.insert(pos + anchor.size(), R"(, "2/9": ["partnerships", "partner_paused"])");
  }
  return text;
}

struct Scenario {
  TempDir dir;
  cmg::sandbox::ReferenceManifest manifest;

  explicit Scenario(std::uint64_t seed = 42) {
    auto m = cmg::sandbox::seed_reference(dir.sub("sandbox/source"), dir.sub("sandbox/destination"), seed);
    if (!m.is_ok()) throw std::runtime_error(m.status().to_string());
    manifest = std::move(*m);
  }

  cmg::MigrationConfig config(bool with_on_hold = false) const {
    auto c = cmg::parse_config(reference_config_text(with_on_hold), "migration.json", dir.path());
    if (!c.is_ok()) throw std::runtime_error(c.status().to_string());
    return std::move(*c);
  }

  std::string config_file(bool with_on_hold = false) const {
    std::string path = dir.sub("migration.json");
    std::ofstream(path) << reference_config_text(with_on_hold);
    return path;
  }
};

inline const cmg::ObjectCounts& counts_of(const cmg::Report& r, const std::string& name) {
  for (const auto& [n, c] : r.objects)
    if (n == name) return c;
  throw std::runtime_error("no object " + name);
}
