// libFuzzer target: parse_config over arbitrary bytes, then the files connector's options parsers
// over what it accepted. Every error must be kConfig naming the input; an accepted config must be
// self-consistent (its hash is that of its own text, its objects have names).
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "crmmigrate/connectors/files.hpp"
#include "crmmigrate/core/config.hpp"
#include "fuzz/fuzz_util.hpp"

namespace {

using cmg::Code;

constexpr std::string_view kPrefix = "fuzz.json:";

void check_connector(const cmg::ConnectorConfig& c) {
  if (c.connector != "files") return;
  const boost::json::value options(c.options);
  auto source = cmg::files::file_source_options_from_json(options, c.json_path + ".options", "/base");
  if (!source.is_ok()) cmg::fuzz::check_error(source.status(), Code::kConfig, c.json_path + ".options");
  auto dest = cmg::files::file_destination_options_from_json(options, c.json_path + ".options", "/base");
  if (!dest.is_ok()) cmg::fuzz::check_error(dest.status(), Code::kConfig, c.json_path + ".options");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = cmg::parse_config(text, "fuzz.json", "/base");
  if (!cfg.is_ok()) {
    cmg::fuzz::check_error(cfg.status(), Code::kConfig, kPrefix);
    return 0;
  }
  CMG_FUZZ_CHECK(cfg->raw_json == text, "raw_json must be the text parsed");
  CMG_FUZZ_CHECK(!cfg->name.empty() && !cfg->objects.empty(), cfg->name);
  CMG_FUZZ_CHECK(cfg->batch_size >= 1 && cfg->batch_size <= 1000, std::to_string(cfg->batch_size));
  CMG_FUZZ_CHECK(cfg->halt_max_error_rate >= 0 && cfg->halt_max_error_rate <= 1, "halt rate out of range");
  boost::json::parse_options popts;
  popts.max_depth = 64;
  CMG_FUZZ_CHECK(cmg::json_hash(boost::json::parse(text, {}, popts)) == cfg->hash, "hash of the same text differs");
  for (const auto& o : cfg->objects) {
    CMG_FUZZ_CHECK(cfg->object(o.name) == &o, o.name);
    for (const auto& d : o.destination_objects()) {
      for (const auto& m : o.fields) (void)o.target_field(m, d);
    }
    for (const auto& p : o.parents()) CMG_FUZZ_CHECK(cfg->object(p) != nullptr, p);
  }
  check_connector(cfg->source);
  check_connector(cfg->destination);
  return 0;
}
