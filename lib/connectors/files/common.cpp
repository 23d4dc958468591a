#include <cerrno>
#include <cstring>
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

}  // namespace cmg::files::internal
