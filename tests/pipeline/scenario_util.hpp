// Shared set-up for the reference-scenario tests: seeded sandboxes plus the example config.
#pragma once

#include <fstream>
#include <map>
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

// Compares a run's counts with the generator's own bookkeeping (not with a pipeline run).
inline void check_against_manifest(const cmg::Report& r, const cmg::sandbox::ReferenceManifest& man) {
  const std::map<std::string, std::string> names = {{"organizations", "companies"}, {"persons", "contacts"},
                                                    {"deals", "deals"}, {"notes", "notes"},
                                                    {"activities", "activities"}};
  for (const auto& entry : names) {
    const auto& src = entry.first;  // not a structured binding: doctest's macros capture it
    const auto& name = entry.second;
    const auto& e = man.expected.at(src);
    const auto& c = counts_of(r, name);
    CAPTURE(name);
    CHECK(c.source == e.source);
    CHECK(c.written == e.written);
    CHECK(c.merged == e.merged);
    CHECK(c.queued == e.queued);
    CHECK(c.skipped == e.skipped);
    CHECK(c.pending == 0);
  }
}

// A destination that forwards every call; test decorators override only what they change.
class ForwardingDestination : public cmg::Destination {
 public:
  explicit ForwardingDestination(std::shared_ptr<cmg::Destination> inner) : inner_(std::move(inner)) {}
  cmg::Result<cmg::Schema> schema() override { return inner_->schema(); }
  cmg::Result<std::int64_t> count(std::string_view o) override { return inner_->count(o); }
  cmg::Result<std::unique_ptr<cmg::RecordReader>> list(std::string_view o, const cmg::ReadOptions& r) override {
    return inner_->list(o, r);
  }
  cmg::Result<std::vector<cmg::Record>> find(std::string_view o, std::string_view f,
                                              const std::vector<std::string>& v) override {
    return inner_->find(o, f, v);
  }
  cmg::Result<std::vector<std::optional<cmg::Record>>> read(std::string_view o,
                                                           const std::vector<std::string>& ids) override {
    return inner_->read(o, ids);
  }
  cmg::Result<std::vector<cmg::WriteResult>> write(std::string_view o, const std::vector<cmg::WriteOp>& ops) override {
    return inner_->write(o, ops);
  }
  cmg::Quota quota() const override { return inner_->quota(); }
  std::int64_t last_retry_after_ms() const override { return inner_->last_retry_after_ms(); }

 protected:
  std::shared_ptr<cmg::Destination> inner_;
};
