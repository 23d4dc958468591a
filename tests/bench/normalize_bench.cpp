// Normalisation and dedup throughput. Prints one JSON object:
//   ns per call of normalize_email, normalize_text (ASCII and non-ASCII), PhoneNormalizer::to_e164
//   (NANP fast path and libphonenumber path), then Deduplicator add/resolve times for 1M generated
//   source entities (+100k destination entities) with two key levels, and memory: RssAnon before,
//   after the adds and at the end; VmHWM is the peak of anonymous + file-backed pages, so the peak
//   heap is about vm_hwm_kb - rss_file_kb (libphonenumber and ICU map several MB of files).
// Usage: normalize_bench [source_entities] [destination_entities]
#include "crmmigrate/core/dedup.hpp"
#include "crmmigrate/core/normalize.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// kB value of a /proc/self/status line ("VmHWM", "RssAnon"); -1 when absent.
long status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  std::string prefix = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.compare(0, prefix.size(), prefix) == 0) return std::atol(line.c_str() + prefix.size());
  return -1;
}

template <typename Fn>
double ns_per_call(const std::vector<std::string>& inputs, std::size_t calls, Fn&& fn) {
  std::size_t sink = 0;
  auto start = Clock::now();
  for (std::size_t i = 0; i < calls; ++i) sink += fn(inputs[i % inputs.size()]);
  double ns = seconds_since(start) * 1e9 / static_cast<double>(calls);
  if (sink == 42) std::fputs("", stderr);  // keeps the loop from being optimised away
  return ns;
}

std::string us_phone(std::mt19937& rng, int shape) {
  char digits[11];
  std::snprintf(digits, sizeof digits, "%03u%03u%04u", static_cast<unsigned>(200 + rng() % 800),
                static_cast<unsigned>(200 + rng() % 800), static_cast<unsigned>(rng() % 10000));
  std::string a(digits, 3), e(digits + 3, 3), n(digits + 6, 4);
  switch (shape % 5) {
    case 0: return "(" + a + ") " + e + "-" + n;
    case 1: return a + "." + e + "." + n;
    case 2: return "1-" + a + "-" + e + "-" + n + " x" + std::to_string(rng() % 1000);
    case 3: return "+1 " + a + " " + e + " " + n;
    default: return a + "-" + e + "-" + n;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n_source = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000000;
  const std::size_t n_dest = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 100000;
  std::mt19937 rng(2024);

  std::vector<std::string> emails, ascii_text, unicode_text, phones;
  for (int i = 0; i < 4096; ++i) {
    emails.push_back("  First.Last" + std::to_string(rng() % 100000) + "@Example" + std::to_string(i % 97) + ".COM ");
    ascii_text.push_back("  Acme   Corporation " + std::to_string(i) + "  Ltd ");
    unicode_text.push_back("  M\xC3\xBCller   Stra\xC3\x9F" "e " + std::to_string(i) + "  GmbH ");
    phones.push_back(us_phone(rng, i));
  }
  cmg::PhoneNormalizer fast("US");
  cmg::PhoneNormalizer slow("US", false);
  const double email_ns = ns_per_call(emails, 2000000, [](const std::string& s) { return cmg::normalize_email(s)->size(); });
  const double text_ascii_ns = ns_per_call(ascii_text, 2000000, [](const std::string& s) { return cmg::normalize_text(s)->size(); });
  const double text_unicode_ns = ns_per_call(unicode_text, 500000, [](const std::string& s) { return cmg::normalize_text(s)->size(); });
  const double phone_fast_ns = ns_per_call(phones, 2000000, [&](const std::string& s) { return fast.to_e164(s)->size(); });
  const double phone_slow_ns = ns_per_call(phones, 100000, [&](const std::string& s) { return slow.to_e164(s)->size(); });

  // Dedup: ~20 % of the source shares an email with another record, ~60 % has a phone, some phones
  // are shared across different emails (switchboards), and destination entities overlap the source.
  const long rss_before_kb = status_kb("RssAnon");
  cmg::Deduplicator dedup({{"email", true}, {"phone", true}});
  std::vector<std::vector<std::string>> values(2);
  auto email_of = [](std::size_t k) { return "user" + std::to_string(k) + "@example" + std::to_string(k % 1000) + ".com"; };
  auto phone_of = [](std::size_t k) {
    return "+1" + std::to_string(2000000000ull + (k * 7919ull) % 7999999999ull);
  };
  auto start = Clock::now();
  for (std::size_t i = 0; i < n_source; ++i) {
    values[0].clear();
    values[1].clear();
    std::size_t person = i % 10 < 2 ? i / 2 : i;
    if (rng() % 10 != 0) values[0].push_back(email_of(person));
    if (rng() % 10 < 6) values[1].push_back(phone_of(rng() % 20 == 0 ? person % 5000 : person));
    if (!dedup.add_source(std::to_string(i), static_cast<std::int64_t>(rng() % 1000000), values).is_ok()) return 1;
  }
  for (std::size_t i = 0; i < n_dest; ++i) {
    values[0].clear();
    values[1].clear();
    std::size_t person = (i * 13) % n_source;
    if (rng() % 4 != 0) values[0].push_back(email_of(person));
    if (rng() % 2 == 0) values[1].push_back(phone_of(person));
    if (!dedup.add_destination("D" + std::to_string(i), values).is_ok()) return 1;
  }
  const double add_s = seconds_since(start);
  const long rss_after_add_kb = status_kb("RssAnon");

  cmg::DedupStats stats;
  start = Clock::now();
  cmg::Status st = dedup.resolve([](const cmg::DedupGroup&) { return cmg::Status::ok(); }, &stats);
  const double resolve_s = seconds_since(start);
  if (!st.is_ok()) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    return 1;
  }

  std::printf(
      "{\"normalize_email_ns\": %.1f, \"normalize_text_ascii_ns\": %.1f, \"normalize_text_unicode_ns\": %.1f, "
      "\"to_e164_fast_path_ns\": %.1f, \"to_e164_libphonenumber_ns\": %.1f, "
      "\"dedup\": {\"source_entities\": %zu, \"destination_entities\": %zu, \"add_s\": %.3f, \"resolve_s\": %.3f, "
      "\"groups\": %zu, \"merged_groups\": %zu, \"ambiguous_groups\": %zu, \"matched_groups\": %zu, "
      "\"ambiguous_decisions\": %zu, \"rss_anon_before_kb\": %ld, \"rss_anon_after_add_kb\": %ld, "
      "\"rss_anon_end_kb\": %ld, \"vm_hwm_kb\": %ld, \"rss_file_kb\": %ld}}\n",
      email_ns, text_ascii_ns, text_unicode_ns, phone_fast_ns, phone_slow_ns, n_source, n_dest, add_s, resolve_s,
      stats.groups, stats.merged_groups, stats.ambiguous_groups, stats.matched_groups, stats.ambiguous_decisions,
      rss_before_kb, rss_after_add_kb, status_kb("RssAnon"), status_kb("VmHWM"), status_kb("RssFile"));
  return 0;
}
