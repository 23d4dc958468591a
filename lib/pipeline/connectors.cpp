// Connector factory: the connectors a config can name. Custom connectors (C, C++, Python plugins)
// are passed to Migration::open directly instead.
#include <filesystem>

#include "crmmigrate/connectors/files.hpp"
#include "crmmigrate/connectors/hubspot.hpp"
#include "crmmigrate/connectors/pipedrive.hpp"
#include "crmmigrate/pipeline/migration.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"

namespace cmg {

namespace json = boost::json;

namespace {

Result<std::string> sandbox_path(const ConnectorConfig& c, const std::string& base_dir) {
  for (const auto& [k, v] : c.options)
    if (k != "path") return config_error(c.json_path + ".options." + std::string(k) + ": unknown key (allowed: path)");
  const auto* p = c.options.if_contains("path");
  if (!p || !p->is_string() || p->get_string().empty())
    return config_error(c.json_path + ".options.path: required (the sandbox directory)");
  std::filesystem::path path(std::string(p->get_string()));
  if (path.is_relative()) path = std::filesystem::path(base_dir) / path;
  return path.lexically_normal().string();
}

Result<std::shared_ptr<sandbox::SandboxCrm>> open_sandbox(const ConnectorConfig& c, const std::string& base_dir) {
  CMG_ASSIGN_OR_RETURN(std::string dir, sandbox_path(c, base_dir));
  auto sb = sandbox::SandboxCrm::open(dir);
  if (!sb.is_ok())
    return Status(Code::kUnavailable, c.json_path + ": " + sb.status().message() +
                                          " (create it with `crmmigrate sandbox seed --scenario reference`)");
  return sb;
}

Result<std::shared_ptr<hubspot::Connector>> open_hubspot(const ConnectorConfig& c, const std::string& base_dir) {
  CMG_ASSIGN_OR_RETURN(auto opts, hubspot::options_from_json(json::value(c.options), c.json_path + ".options", base_dir));
  return hubspot::Connector::create(std::move(opts));
}

Result<std::shared_ptr<pipedrive::Connector>> open_pipedrive(const ConnectorConfig& c, const std::string& base_dir) {
  CMG_ASSIGN_OR_RETURN(auto opts, pipedrive::options_from_json(json::value(c.options), c.json_path + ".options", base_dir));
  return pipedrive::make_connector(std::move(opts));
}

}  // namespace

Result<std::shared_ptr<Source>> make_source(const ConnectorConfig& c, const std::string& base_dir) {
  if (c.connector == "sandbox") {
    CMG_ASSIGN_OR_RETURN(auto sb, open_sandbox(c, base_dir));
    return std::shared_ptr<Source>(std::move(sb));
  }
  if (c.connector == "files") {
    CMG_ASSIGN_OR_RETURN(auto opts, files::file_source_options_from_json(json::value(c.options), c.json_path + ".options", base_dir));
    return files::make_file_source(std::move(opts));
  }
  if (c.connector == "hubspot") {
    CMG_ASSIGN_OR_RETURN(auto hs, open_hubspot(c, base_dir));
    return std::shared_ptr<Source>(std::move(hs));
  }
  if (c.connector == "pipedrive") {
    CMG_ASSIGN_OR_RETURN(auto pd, open_pipedrive(c, base_dir));
    return std::shared_ptr<Source>(std::move(pd));
  }
  return config_error(c.json_path + ".connector: unknown source connector '" + c.connector + "' (available: sandbox, files, hubspot, pipedrive)");
}

Result<std::shared_ptr<Destination>> make_destination(const ConnectorConfig& c, const std::string& base_dir) {
  if (c.connector == "sandbox") {
    CMG_ASSIGN_OR_RETURN(auto sb, open_sandbox(c, base_dir));
    return std::shared_ptr<Destination>(std::move(sb));
  }
  if (c.connector == "files") {
    CMG_ASSIGN_OR_RETURN(auto opts, files::file_destination_options_from_json(json::value(c.options), c.json_path + ".options", base_dir));
    return files::make_file_destination(std::move(opts));
  }
  if (c.connector == "hubspot") {
    CMG_ASSIGN_OR_RETURN(auto hs, open_hubspot(c, base_dir));
    return std::shared_ptr<Destination>(std::move(hs));
  }
  if (c.connector == "pipedrive") {
    CMG_ASSIGN_OR_RETURN(auto pd, open_pipedrive(c, base_dir));
    return std::shared_ptr<Destination>(std::move(pd));
  }
  return config_error(c.json_path + ".connector: unknown destination connector '" + c.connector + "' (available: sandbox, files, hubspot, pipedrive)");
}

}  // namespace cmg
