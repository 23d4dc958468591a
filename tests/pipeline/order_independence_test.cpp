#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>

#include "crmmigrate/sandbox/sandbox.hpp"
#include "scenario_util.hpp"
#include "crmmigrate/store/lmdb_env.hpp"

using namespace cmg;
namespace json = boost::json;

namespace {

// A source that hands out the wrapped source's records in a shuffled order (and batch sizes).
class ShuffledSource final : public Source {
 public:
  ShuffledSource(std::shared_ptr<Source> inner, std::uint64_t seed) : inner_(std::move(inner)), seed_(seed) {}
  Result<Schema> schema() override { return inner_->schema(); }
  Result<std::int64_t> count(std::string_view o) override { return inner_->count(o); }
  Result<std::unique_ptr<RecordReader>> read(std::string_view object, const ReadOptions& opts) override {
    CMG_ASSIGN_OR_RETURN(auto reader, inner_->read(object, opts));
    std::vector<Record> all;
    RecordBatch b;
    for (;;) {
      CMG_ASSIGN_OR_RETURN(bool more, reader->next(b));
      if (!more) break;
      for (auto& r : b) all.push_back(std::move(r));
    }
    std::mt19937_64 rng(seed_);
    std::shuffle(all.begin(), all.end(), rng);
    return std::unique_ptr<RecordReader>(new Reader(std::move(all), 1 + static_cast<std::size_t>(seed_ % 700)));
  }

 private:
  struct Reader final : RecordReader {
    Reader(std::vector<Record> r, std::size_t n) : recs(std::move(r)), batch(n) {}
    Result<bool> next(RecordBatch& out) override {
      out.clear();
      for (; pos < recs.size() && out.size() < batch; ++pos) out.push_back(recs[pos]);
      return !out.empty();
    }
    std::vector<Record> recs;
    std::size_t batch, pos = 0;
  };
  std::shared_ptr<Source> inner_;
  std::uint64_t seed_;
};

// Every record's decision: its outcome and the source record it was grouped under. Destination ids
// are allocated in write order and so are not compared.
std::map<std::string, std::string> decisions(const std::string& state_dir) {
  std::map<std::string, std::string> out;
  auto env = store::Env::open(state_dir);
  REQUIRE(env.is_ok());
  REQUIRE((*env)->read([&](store::Txn& t) {
    CMG_RETURN_IF_ERROR(t.scan("records", "", [&](std::string_view k, std::string_view v) {
      auto o = json::parse(v).as_object();
      std::string s(o.at("s").as_string());
      std::string p = o.contains("p") ? std::string(o.at("p").as_string()) : "";
      out[std::string(k)] = s + " " + p;
      return true;
    }));
    return t.scan("queue", "", [&](std::string_view k, std::string_view v) {
      auto o = json::parse(v).as_object();
      out[std::string(k)] += " " + std::string(o.at("reason").as_string());
      return true;
    });
  }).is_ok());
  return out;
}

std::map<std::string, std::string> run_with_order(std::uint64_t shuffle_seed) {
  Scenario sc;
  auto cfg = sc.config();
  std::string state = cfg.state_dir;
  auto src = sandbox::SandboxCrm::open(sc.dir.sub("sandbox/source"));
  REQUIRE(src.is_ok());
  std::shared_ptr<Source> source = *src;
  if (shuffle_seed) source = std::make_shared<ShuffledSource>(source, shuffle_seed);
  auto mig = Migration::open(std::move(cfg), source);
  REQUIRE(mig.is_ok());
  REQUIRE((*mig)->plan(true, "Avery").is_ok());
  RunOptions ro;
  auto r = (*mig)->run(ro);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  mig->reset();
  return decisions(state);
}

}  // namespace

TEST_CASE("the same source in a different order gives the same decision for every record") {
  auto base = run_with_order(0);
  REQUIRE(base.size() == 600 + 4200 + 1800 + 6000 + 400);
  for (std::uint64_t seed : {7u, 1234u}) {
    auto shuffled = run_with_order(seed);
    CAPTURE(seed);
    REQUIRE(shuffled.size() == base.size());
    std::size_t differ = 0;
    for (const auto& [k, v] : base) {
      if (shuffled[k] != v) {
        if (differ < 5) MESSAGE(k << ": " << v << " vs " << shuffled[k]);
        ++differ;
      }
    }
    CHECK(differ == 0);
  }
}
