// Links crmmigrate::core and exercises one call through each private dependency-heavy area.
#include <cstdio>

#include "crmmigrate/core/config.hpp"
#include "crmmigrate/core/normalize.hpp"

int main() {
  auto cfg = cmg::parse_config("{\"name\": 1}", "test_package", ".");
  auto phone = cmg::PhoneNormalizer("US").to_e164("(415) 555-0101");
  if (cfg.is_ok() || cfg.status().code() != cmg::Code::kConfig || phone != std::optional<std::string>("+14155550101")) {
    std::fprintf(stderr, "test_package: unexpected results\n");
    return 1;
  }
  std::printf("crmmigrate %s: %s\n", CMG_VERSION_STRING, cfg.status().message().c_str());
  return 0;
}
