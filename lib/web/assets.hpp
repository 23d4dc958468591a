// The console's static files (lib/web/static/), embedded at build time by embed_assets.cmake into a
// generated console_assets.cpp: the binary serves them without a CDN, a network or a JS build step.
#pragma once

#include <cstddef>
#include <string_view>

namespace cmg::web {

struct Asset {
  const char* path;          // "/app.js"
  const char* content_type;  // "text/javascript; charset=utf-8"
  const unsigned char* data;
  std::size_t size;
  const char* etag;  // quoted strong validator from the file's SHA-256
};

extern const Asset kAssets[];
extern const std::size_t kAssetCount;

/// The asset served at `path` ("/" is "/index.html"), or nullptr.
const Asset* find_asset(std::string_view path);

}  // namespace cmg::web
