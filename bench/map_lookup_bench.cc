// map_lookup_bench: random lookups in the store's PersistentMap beside a
// std::map holding the same keys, measured in the same run (the lookup is the
// write path's hottest part under sustained writes, docs/benchmarks.md).
// Two key sets of ~1M keys: the sustained-write benchmark's shape
// ("sustain/r1/t<writer>/k<n>", a long shared prefix) and short scattered keys
// ("key<n>"). Each figure is the median over rounds of the mean time per
// lookup of 2M random present keys; the ratio is the median of per-round
// ratios.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "common/prng.h"
#include "statestore/persistent_map.h"

namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename Lookup>
double NanosPerLookup(const std::vector<std::string>& keys, const std::vector<std::size_t>& order, Lookup lookup) {
  const auto start = Clock::now();
  std::size_t found = 0;
  for (std::size_t i : order) found += lookup(keys[i]) ? 1 : 0;
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  if (found != order.size()) {
    std::fprintf(stderr, "map_lookup_bench: a present key was not found\n");
    std::exit(1);
  }
  return ns / static_cast<double>(order.size());
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  if (argc == 3 && std::string(argv[1]) == "--rounds") rounds = std::max(1, std::atoi(argv[2]));
  if (argc != 1 && argc != 3) {
    std::fprintf(stderr, "usage: map_lookup_bench [--rounds N]  (random lookups: PersistentMap vs std::map)\n");
    return 2;
  }
  gv::Prng prng(1);
  for (const bool shared_prefix : {true, false}) {
    std::vector<std::string> keys;
    for (int writer = 0; writer < 256; ++writer) {
      for (int n = 0; n < 4000; ++n) {
        keys.push_back(shared_prefix ? "sustain/r1/t" + std::to_string(writer) + "/k" + std::to_string(n)
                                     : "key" + std::to_string((writer * 4000ull + n) * 7919 % 10000019));
      }
    }
    gv::statestore::PersistentMap<std::string> map;
    std::map<std::string, std::string> reference;
    for (const std::string& key : keys) {
      map.Insert(key, "v");
      reference.emplace(key, "v");
    }
    std::vector<std::size_t> order(2'000'000);
    for (std::size_t& i : order) i = prng.Index(keys.size());
    std::vector<double> ours, theirs, ratios;
    for (int round = 0; round < rounds; ++round) {
      // Alternate which goes first, so drift in the machine's load hits both.
      double a, b;
      if (round % 2 == 0) {
        a = NanosPerLookup(keys, order, [&](const std::string& k) { return map.Find(k) != nullptr; });
        b = NanosPerLookup(keys, order, [&](const std::string& k) { return reference.find(k) != reference.end(); });
      } else {
        b = NanosPerLookup(keys, order, [&](const std::string& k) { return reference.find(k) != reference.end(); });
        a = NanosPerLookup(keys, order, [&](const std::string& k) { return map.Find(k) != nullptr; });
      }
      ours.push_back(a);
      theirs.push_back(b);
      ratios.push_back(a / b);
    }
    std::printf("%-38s %zu keys: PersistentMap::Find %.0f ns, std::map::find %.0f ns, ratio %.2f (median of %d rounds)\n",
                shared_prefix ? "sustain/r1/t<writer>/k<n> (shared prefix)" : "key<n> (short, scattered)", keys.size(),
                Median(ours), Median(theirs), Median(ratios), rounds);
  }
  return 0;
}
