// VersionVector against std::map<NodeId, uint64_t>: a seeded random sequence
// of every operation of the map-like interface (insertions in every order,
// lookups, copies and moves between inline and heap-backed vectors, clears,
// initializer lists) keeps the same contents, in the same order, as the map.
// Also: moved-from vectors, at() on a missing node, MergeInto against an
// entry-wise max model, and Compare/Dominates on flat vectors.
#include "statestore/version_vector.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/prng.h"
#include "statestore/delta.h"

using gv::NodeId;
using gv::Prng;
using gv::statestore::Compare;
using gv::statestore::Concurrent;
using gv::statestore::Dominates;
using gv::statestore::MergeInto;
using gv::statestore::VersionVector;
using gv::statestore::VvOrder;
using Model = std::map<NodeId, std::uint64_t>;
using Entry = VersionVector::value_type;

namespace {

constexpr std::uint64_t kSeed = 0x76765f7465737431ull;  // "vv_test1"

NodeId N(std::uint64_t v) { return NodeId(v); }

std::string Dump(const Model& model) {
  std::string out = "{";
  for (const auto& [node, counter] : model) {
    if (out.size() > 1) out += ", ";
    out += node.ToString() + ":" + std::to_string(counter);
  }
  return out + "}";
}

// Size, order and contents equal, and every node of the model (and a few
// absent ones) found or not found as in the model. Plain ifs + FAIL: this runs
// for every vector after every random step.
void CheckSame(const VersionVector& vv, const Model& model, bool lookups = true) {
  bool same = vv.size() == model.size() && vv.empty() == model.empty() &&
              static_cast<std::size_t>(std::distance(vv.begin(), vv.end())) == model.size() &&
              vv.cbegin() == vv.begin() && vv.cend() == vv.end();
  if (same) {
    auto m = model.begin();
    for (const Entry& e : vv) {
      if (e.first != m->first || e.second != m->second) {
        same = false;
        break;
      }
      ++m;
    }
  }
  for (auto it = vv.begin(); same && it != vv.end() && std::next(it) != vv.end(); ++it) {
    if (!(it->first < std::next(it)->first)) same = false;  // strictly increasing nodes
  }
  if (!same) FAIL("contents differ: vv=" << gv::statestore::ToString(vv) << " (size " << vv.size() << ") model="
                                         << Dump(model) << " (size " << model.size() << ")");
  if (!lookups) return;
  for (const auto& [node, counter] : model) {
    auto it = vv.find(node);
    if (it == vv.end() || it->first != node || it->second != counter || vv.count(node) != 1 ||
        !vv.contains(node) || vv.at(node) != counter) {
      FAIL("lookup of present node " << node.ToString() << " wrong in " << gv::statestore::ToString(vv));
    }
  }
  // Absent nodes: just around each present one, and the extremes.
  std::vector<NodeId> probes = {N(0), N(std::numeric_limits<std::uint64_t>::max())};
  for (const auto& [node, counter] : model) {
    if (node.value > 0) probes.push_back(N(node.value - 1));
    if (node.value < std::numeric_limits<std::uint64_t>::max()) probes.push_back(N(node.value + 1));
  }
  for (NodeId node : probes) {
    if (model.count(node)) continue;
    if (vv.find(node) != vv.end() || vv.count(node) != 0 || vv.contains(node)) {
      FAIL("absent node " << node.ToString() << " found in " << gv::statestore::ToString(vv));
    }
  }
}

// A vector with the model's entries, built by operator[] in random order.
VersionVector Build(const Model& model, Prng& prng) {
  std::vector<Entry> entries(model.begin(), model.end());
  prng.Shuffle(entries);
  VersionVector vv;
  for (const auto& [node, counter] : entries) vv[node] = counter;
  return vv;
}

Model RandomModel(Prng& prng, std::size_t size, std::uint64_t universe) {
  Model m;
  // Bounded: at most 64 tries per wanted entry.
  for (std::size_t tries = 0; m.size() < size && tries < 64 * size + 64; ++tries) {
    m.emplace(N(1 + prng.Uniform(universe)), 1 + prng.Uniform(1000));
  }
  REQUIRE(m.size() == size);
  return m;
}

}  // namespace

TEST_CASE("version vector: sizes across the inline/heap boundary, in every insertion order") {
  Prng prng(kSeed);
  INFO("seed=" << kSeed);
  for (std::size_t size : {0u, 1u, 2u, 3u, 4u, 5u, 8u, 100u, 257u}) {
    CAPTURE(size);
    for (int order = 0; order < 3; ++order) {
      CAPTURE(order);
      std::vector<std::uint64_t> nodes;
      for (std::size_t i = 0; i < size; ++i) nodes.push_back(10 * (i + 1));
      if (order == 1) std::reverse(nodes.begin(), nodes.end());
      if (order == 2) prng.Shuffle(nodes);
      VersionVector by_index, by_emplace, by_hint;
      Model model;
      for (std::uint64_t v : nodes) {
        const std::uint64_t counter = v * 3 + 1;
        by_index[N(v)] = counter;
        auto [it, inserted] = by_emplace.emplace(N(v), counter);
        CHECK(inserted);
        CHECK(it->first == N(v));
        CHECK(it->second == counter);
        auto hint_it = by_hint.emplace_hint(by_hint.end(), N(v), counter);
        CHECK(hint_it->first == N(v));
        CHECK(hint_it->second == counter);
        model.emplace(N(v), counter);
        CheckSame(by_index, model, /*lookups=*/false);
      }
      CheckSame(by_index, model);
      CheckSame(by_emplace, model);
      CheckSame(by_hint, model);
      CHECK(by_index == by_emplace);
      CHECK(by_index == by_hint);
      // Re-inserting keeps the existing entries.
      for (std::uint64_t v : nodes) {
        auto [it, inserted] = by_emplace.emplace(N(v), 999999);
        CHECK_FALSE(inserted);
        CHECK(it->second == v * 3 + 1);
        CHECK(by_hint.emplace_hint(by_hint.end(), N(v), 999999)->second == v * 3 + 1);
        CHECK(by_hint.emplace_hint(by_hint.begin(), N(v), 999999)->second == v * 3 + 1);
      }
      CheckSame(by_emplace, model);
      CheckSame(by_hint, model);
      // operator[] on absent nodes inserts zero counters in place.
      for (std::uint64_t v : nodes) {
        CHECK(by_index[N(v + 5)] == 0);
        model.emplace(N(v + 5), 0);
      }
      CheckSame(by_index, model);
    }
  }
}

TEST_CASE("version vector: extreme node ids and counters") {
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  VersionVector vv{{N(max), max}, {N(0), 0}, {N(1), max - 1}, {N(max - 1), 1}};
  Model model{{N(max), max}, {N(0), 0}, {N(1), max - 1}, {N(max - 1), 1}};
  CheckSame(vv, model);
  CHECK(vv.begin()->first == N(0));
  CHECK(std::prev(vv.end())->first == N(max));
}

TEST_CASE("version vector: initializer lists keep the first entry of a node, in node order") {
  VersionVector vv{{N(5), 50}, {N(2), 20}, {N(5), 51}, {N(9), 90}, {N(2), 21}};
  CheckSame(vv, Model{{N(2), 20}, {N(5), 50}, {N(9), 90}});
  VersionVector one{{N(7), 70}};
  CheckSame(one, Model{{N(7), 70}});
  VersionVector none{};
  CheckSame(none, Model{});

  // Assignment: from heap to smaller, to inline, to empty, and larger again.
  vv = {{N(3), 1}};
  CheckSame(vv, Model{{N(3), 1}});
  vv = {{N(8), 8}, {N(1), 1}, {N(8), 9}, {N(4), 4}, {N(6), 6}, {N(2), 2}};
  CheckSame(vv, Model{{N(1), 1}, {N(2), 2}, {N(4), 4}, {N(6), 6}, {N(8), 8}});
  vv = std::initializer_list<Entry>{};
  CheckSame(vv, Model{});
  one = {{N(4), 4}, {N(3), 3}, {N(2), 2}};  // inline -> heap
  CheckSame(one, Model{{N(2), 2}, {N(3), 3}, {N(4), 4}});
}

TEST_CASE("version vector: at() on a missing node throws std::out_of_range") {
  VersionVector vv;
  CHECK_THROWS_AS((void)vv.at(N(1)), std::out_of_range);
  vv[N(5)] = 50;  // inline
  CHECK(vv.at(N(5)) == 50);
  CHECK_THROWS_AS((void)vv.at(N(4)), std::out_of_range);
  CHECK_THROWS_AS((void)vv.at(N(6)), std::out_of_range);
  for (std::uint64_t v = 10; v < 30; v += 2) vv[N(v)] = v;  // heap
  CHECK(vv.at(N(12)) == 12);
  CHECK_THROWS_AS((void)vv.at(N(13)), std::out_of_range);
  CHECK_THROWS_AS((void)vv.at(N(0)), std::out_of_range);
  CHECK_THROWS_AS((void)vv.at(N(1000)), std::out_of_range);
  try {
    (void)vv.at(N(0xabc));
    FAIL("at() did not throw");
  } catch (const std::out_of_range& e) {
    CHECK(std::string(e.what()).find(N(0xabc).ToString()) != std::string::npos);
  }
  // A failed at() inserts nothing.
  CHECK(vv.size() == 11);
  CHECK_FALSE(vv.contains(N(0xabc)));
  vv.clear();
  CHECK_THROWS_AS((void)vv.at(N(12)), std::out_of_range);
}

TEST_CASE("version vector: a moved-from vector is empty and reusable") {
  Prng prng(kSeed + 1);
  INFO("seed=" << kSeed + 1);
  for (std::size_t size : {0u, 1u, 2u, 5u, 130u}) {
    CAPTURE(size);
    const Model model = RandomModel(prng, size, 1000);
    for (int how = 0; how < 4; ++how) {
      CAPTURE(how);
      VersionVector source = Build(model, prng);
      VersionVector target;
      if (how == 0) {
        VersionVector constructed(std::move(source));
        CheckSame(constructed, model);
      } else if (how == 1) {
        target = std::move(source);  // into an empty inline vector
        CheckSame(target, model);
      } else if (how == 2) {
        target = VersionVector{{N(1), 1}, {N(2), 2}, {N(3), 3}, {N(4), 4}, {N(5), 5}};  // heap-backed target
        target = std::move(source);
        CheckSame(target, model);
      } else {
        target = VersionVector{{N(77), 7}};  // inline, one entry
        target = std::move(source);
        CheckSame(target, model);
      }
      // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is what is tested.
      CheckSame(source, Model{});
      CHECK(source.begin() == source.end());
      // Reusable: grows through inline to heap again, copies and moves.
      Model reuse;
      for (std::uint64_t v = 20; v > 0; --v) {
        source[N(v * 7)] = v;
        reuse[N(v * 7)] = v;
        CheckSame(source, reuse, /*lookups=*/false);
      }
      CheckSame(source, reuse);
      VersionVector copy(source);
      CheckSame(copy, reuse);
      source.clear();
      CheckSame(source, Model{});
      CheckSame(copy, reuse);
      source = std::move(copy);
      CheckSame(source, reuse);
      CheckSame(copy, Model{});
      copy.emplace(N(3), 3);
      CheckSame(copy, Model{{N(3), 3}});
    }
  }
}

TEST_CASE("version vector: copies between inline and heap-backed vectors are independent") {
  Prng prng(kSeed + 2);
  INFO("seed=" << kSeed + 2);
  const std::vector<std::size_t> sizes = {0, 1, 2, 3, 4, 5, 9, 100, 150};
  for (std::size_t from_size : sizes) {
    for (std::size_t to_size : sizes) {
      CAPTURE(from_size);
      CAPTURE(to_size);
      const Model from_model = RandomModel(prng, from_size, 500);
      const Model to_model = RandomModel(prng, to_size, 500);
      VersionVector from = Build(from_model, prng);
      VersionVector to = Build(to_model, prng);
      // A heap-backed vector that is then cleared down to fewer entries.
      if (to_size <= 1 && prng.Chance(0.5)) {
        for (std::uint64_t v = 1; v <= 6; ++v) to[N(100000 + v)] = v;
        to.clear();
        for (const auto& [node, counter] : to_model) to[node] = counter;
        CheckSame(to, to_model);
      }
      to = from;  // copy-assign (smaller into heap-backed, larger into inline, ...)
      CheckSame(to, from_model);
      CheckSame(from, from_model);
      CHECK(to == from);
      VersionVector constructed(from);
      CheckSame(constructed, from_model);
      // Writes to a copy do not reach the original, and the other way round.
      to[N(999999)] = 1;
      if (!from_model.empty()) to.find(from_model.begin()->first)->second += 1000;
      constructed[N(1)] = 7;
      CheckSame(from, from_model);
      from[N(888888)] = 2;
      Model to_expect = from_model;
      to_expect[N(999999)] = 1;
      if (!from_model.empty()) to_expect.begin()->second += 1000;
      CheckSame(to, to_expect);
      CHECK_FALSE(to == from);
    }
  }
}

TEST_CASE("version vector: random operations match std::map") {
  constexpr std::size_t kPool = 4;
  constexpr std::size_t kStepsPerRound = 1500;
  // The universe of node ids per round: small ones keep vectors at 0..2
  // entries (inline <-> heap), large ones grow them past 100.
  const std::vector<std::uint64_t> universes = {1, 2, 3, 5, 8, 40, 400, 2, 160, 1000, 3};
  const std::uint64_t seed = kSeed + 3;
  Prng prng(seed);
  CAPTURE(seed);

  std::array<VersionVector, kPool> vv;
  std::array<Model, kPool> model;
  std::array<bool, 6> size_seen = {};  // 0, 1, 2, 3..5, 6..99, 100+
  std::size_t max_size = 0;
  auto node_in = [&](std::uint64_t universe) {
    // Mostly 1..universe (dense ids, many hits); sometimes spread-out ids.
    if (prng.Chance(0.05)) return N(prng.NextU64());
    return N(1 + prng.Uniform(universe) * 1000003);
  };
  auto counter = [&]() -> std::uint64_t {
    return prng.Chance(0.1) ? prng.NextU64() : prng.Uniform(100);
  };

  std::size_t step = 0;
  for (std::uint64_t universe : universes) {
    CAPTURE(universe);
    const std::size_t steps = universe >= 100 ? 2 * kStepsPerRound : kStepsPerRound;
    for (std::size_t s = 0; s < steps; ++s, ++step) {
      CAPTURE(step);
      const std::size_t i = prng.Index(kPool);
      const std::size_t j = prng.Index(kPool);
      const NodeId node = node_in(universe);
      const std::uint64_t c = counter();
      // Rounds with a large universe are mostly insertions, so vectors grow past 100.
      const bool grow = universe >= 100 && prng.Chance(0.97);
      const std::uint64_t op = grow ? prng.Uniform(56) : prng.Uniform(100);
      CAPTURE(op);
      CAPTURE(i);
      CAPTURE(j);
      if (op < 22) {  // operator[] assignment
        vv[i][node] = c;
        model[i][node] = c;
      } else if (op < 27) {  // operator[] read: inserts a zero counter
        const std::uint64_t got = vv[i][node];
        REQUIRE(got == model[i][node]);
      } else if (op < 40) {  // emplace
        auto [it, inserted] = vv[i].emplace(node, c);
        auto [mit, minserted] = model[i].emplace(node, c);
        REQUIRE(inserted == minserted);
        REQUIRE(it->first == node);
        REQUIRE(it->second == mit->second);
        if (prng.Chance(0.3)) {  // write through the returned iterator
          it->second = c + 1;
          mit->second = c + 1;
        }
      } else if (op < 50) {  // emplace_hint(end()); often in ascending order, as decoders do
        NodeId n = node;
        if (prng.Chance(0.5) && !model[i].empty() && model[i].rbegin()->first.value < (1ull << 62)) {
          n = N(model[i].rbegin()->first.value + 1 + prng.Uniform(5));
        }
        auto it = vv[i].emplace_hint(vv[i].end(), n, c);
        auto mit = model[i].emplace_hint(model[i].end(), n, c);
        REQUIRE(it->first == n);
        REQUIRE(it->second == mit->second);
      } else if (op < 56) {  // emplace_hint with another hint (begin, middle, an entry)
        const std::size_t at = prng.Index(vv[i].size() + 1);
        auto hint = std::as_const(vv[i]).begin() + static_cast<std::ptrdiff_t>(at);
        auto it = vv[i].emplace_hint(hint, node, c);
        auto mit = model[i].emplace(node, c).first;
        REQUIRE(it->first == node);
        REQUIRE(it->second == mit->second);
      } else if (op < 66) {  // lookups, present and absent, const and not
        const VersionVector& cv = vv[i];
        const bool present = model[i].count(node) > 0;
        REQUIRE(cv.count(node) == (present ? 1u : 0u));
        REQUIRE(cv.contains(node) == present);
        REQUIRE((cv.find(node) != cv.end()) == present);
        REQUIRE((vv[i].find(node) != vv[i].end()) == present);
        if (present) {
          REQUIRE(cv.at(node) == model[i].at(node));
          REQUIRE(cv.find(node)->second == model[i].at(node));
          vv[i].find(node)->second = c;  // write through a found iterator
          model[i][node] = c;
        } else {
          REQUIRE_THROWS_AS((void)cv.at(node), std::out_of_range);
        }
      } else if (op < 71) {  // copy-construct, then write to the copy only
        VersionVector copy(vv[i]);
        CheckSame(copy, model[i]);
        copy[node] = c;
        Model copy_model = model[i];
        copy_model[node] = c;
        CheckSame(copy, copy_model);
        CheckSame(vv[i], model[i]);
        if (prng.Chance(0.5)) {  // hand it on by move-assignment
          vv[j] = std::move(copy);
          model[j] = copy_model;
          CheckSame(copy, Model{});
        }
      } else if (op < 78) {  // copy-assign (i == j: self-assignment)
        VersionVector& target = vv[j];
        target = vv[i];
        model[j] = model[i];
      } else if (op < 82) {  // move-construct
        VersionVector moved(std::move(vv[i]));
        CheckSame(moved, model[i]);
        CheckSame(vv[i], Model{});
        vv[i][node] = c;  // the moved-from one is reusable
        Model reused{{node, c}};
        CheckSame(vv[i], reused);
        vv[j] = std::move(moved);  // i == j: back where it came from
        const Model old = model[i];
        model[i] = reused;
        model[j] = old;
        CheckSame(moved, Model{});
      } else if (op < 87) {  // move-assign (i == j: self-move keeps the contents)
        VersionVector& target = vv[j];
        target = std::move(vv[i]);
        if (i != j) {
          model[j] = model[i];
          model[i].clear();
        }
      } else if (op < 89) {  // clear (keeps heap storage)
        vv[i].clear();
        model[i].clear();
      } else if (op < 94) {  // initializer-list assignment, 0..5 entries, duplicates possible
        const NodeId a = node_in(universe), b = node_in(universe), d = node_in(universe), e = node_in(universe);
        model[i].clear();
        switch (prng.Uniform(5)) {
          case 0:
            vv[i] = std::initializer_list<Entry>{};
            break;
          case 1:
            vv[i] = {{a, 1}};
            model[i].emplace(a, 1);
            break;
          case 2:
            vv[i] = {{a, 1}, {b, 2}};
            model[i].emplace(a, 1);
            model[i].emplace(b, 2);
            break;
          case 3:
            vv[i] = {{a, 1}, {b, 2}, {d, 3}};
            model[i].emplace(a, 1);
            model[i].emplace(b, 2);
            model[i].emplace(d, 3);
            break;
          default:
            vv[i] = {{e, 5}, {d, 4}, {a, 1}, {b, 2}, {node, c}};
            for (const Entry& x : {Entry{e, 5}, Entry{d, 4}, Entry{a, 1}, Entry{b, 2}, Entry{node, c}}) {
              model[i].emplace(x);
            }
            break;
        }
      } else if (op < 97) {  // reserve changes no contents
        vv[i].reserve(prng.Uniform(300));
      } else {  // equality against the models'
        REQUIRE((vv[i] == vv[j]) == (model[i] == model[j]));
        REQUIRE((vv[j] == vv[i]) == (model[i] == model[j]));
      }
      for (std::size_t k = 0; k < kPool; ++k) {
        CAPTURE(k);
        CheckSame(vv[k], model[k], /*lookups=*/k == i || k == j);
        const std::size_t n = vv[k].size();
        max_size = std::max(max_size, n);
        size_seen[n == 0 ? 0 : n == 1 ? 1 : n == 2 ? 2 : n <= 5 ? 3 : n < 100 ? 4 : 5] = true;
      }
    }
    // Between rounds, sometimes start afresh so small universes see small vectors.
    if (prng.Chance(0.5)) {
      for (std::size_t k = 0; k < kPool; ++k) {
        vv[k].clear();
        model[k].clear();
      }
    }
  }
  INFO("max size " << max_size);
  // The sequence did cover every size class, inline and heap.
  for (std::size_t k = 0; k < size_seen.size(); ++k) {
    CAPTURE(k);
    CHECK(size_seen[k]);
  }
}

TEST_CASE("version vector: MergeInto is the entry-wise max") {
  const std::uint64_t seed = kSeed + 4;
  Prng prng(seed);
  CAPTURE(seed);
  const std::vector<std::size_t> sizes = {0, 1, 2, 3, 5, 20, 150};
  enum Shape { kRandom, kDisjoint, kSubset, kSuperset, kSameNodes, kEqual, kEmptyInto, kEmptyFrom, kShapes };
  for (int round = 0; round < 400; ++round) {
    CAPTURE(round);
    const Shape shape = static_cast<Shape>(round % kShapes);
    CAPTURE(static_cast<int>(shape));
    const std::size_t na = sizes[prng.Index(sizes.size())];
    const std::size_t nb = sizes[prng.Index(sizes.size())];
    Model a, b;
    switch (shape) {
      case kRandom:
        a = RandomModel(prng, na, 300);
        b = RandomModel(prng, nb, 300);
        break;
      case kDisjoint:  // interleaved node ids, none shared
        for (const auto& [n, c] : RandomModel(prng, na, 300)) a.emplace(N(2 * n.value), c);
        for (const auto& [n, c] : RandomModel(prng, nb, 300)) b.emplace(N(2 * n.value + 1), c);
        break;
      case kSubset:  // from's nodes all in into: the in-place path
        a = RandomModel(prng, std::max(na, nb), 300);
        for (const auto& [n, c] : a) {
          if (prng.Chance(0.6)) b.emplace(n, 1 + prng.Uniform(1000));
        }
        break;
      case kSuperset:
        b = RandomModel(prng, std::max(na, nb), 300);
        for (const auto& [n, c] : b) {
          if (prng.Chance(0.6)) a.emplace(n, 1 + prng.Uniform(1000));
        }
        break;
      case kSameNodes:
        a = RandomModel(prng, na, 300);
        for (const auto& [n, c] : a) b.emplace(n, 1 + prng.Uniform(1000));
        break;
      case kEqual:
        a = RandomModel(prng, na, 300);
        b = a;
        break;
      case kEmptyInto:
        b = RandomModel(prng, nb, 300);
        break;
      default:
        a = RandomModel(prng, na, 300);
        break;
    }
    Model expect = a;
    for (const auto& [n, c] : b) expect[n] = std::max(expect[n], c);

    VersionVector into = Build(a, prng);
    const VersionVector from = Build(b, prng);
    if (prng.Chance(0.3)) into.reserve(into.size() + prng.Uniform(10));  // spare heap capacity
    MergeInto(into, from);
    CheckSame(into, expect);
    CheckSame(from, b);
    CHECK(Dominates(into, from));
    CHECK(Dominates(into, Build(a, prng)));
    // Idempotent, and the other direction gives the same vector.
    MergeInto(into, from);
    CheckSame(into, expect);
    VersionVector other = Build(b, prng);
    MergeInto(other, Build(a, prng));
    CheckSame(other, expect);
    // Merging a vector into itself changes nothing.
    MergeInto(into, into);
    CheckSame(into, expect);
  }
}

TEST_CASE("version vector: Compare and Dominates on flat vectors") {
  const VersionVector empty;
  const VersionVector a1{{N(1), 1}};
  const VersionVector a2{{N(1), 2}};
  const VersionVector b1{{N(2), 1}};
  const VersionVector a1b1{{N(1), 1}, {N(2), 1}};
  const VersionVector a2b1{{N(2), 1}, {N(1), 2}};
  const VersionVector a1b2c3{{N(1), 1}, {N(2), 2}, {N(3), 3}, {N(4), 4}, {N(5), 5}};
  const VersionVector a1b2c4{{N(1), 1}, {N(2), 2}, {N(3), 4}, {N(4), 4}, {N(5), 5}};
  const VersionVector a2b2c3{{N(1), 2}, {N(2), 2}, {N(3), 3}, {N(4), 4}, {N(5), 5}};

  CHECK(Compare(empty, empty) == VvOrder::kEqual);
  CHECK(Compare(empty, a1) == VvOrder::kBefore);
  CHECK(Compare(a1, empty) == VvOrder::kAfter);
  CHECK(Compare(a1, a1) == VvOrder::kEqual);
  CHECK(Compare(a1, a2) == VvOrder::kBefore);
  CHECK(Compare(a2, a1) == VvOrder::kAfter);
  CHECK(Compare(a1, b1) == VvOrder::kConcurrent);
  CHECK(Concurrent(a2, b1));
  CHECK(Compare(a1, a1b1) == VvOrder::kBefore);  // inline vs heap
  CHECK(Compare(a2b1, a1b1) == VvOrder::kAfter);
  CHECK(Compare(a2, a1b1) == VvOrder::kConcurrent);
  CHECK(Compare(a1b2c3, a1b2c4) == VvOrder::kBefore);
  CHECK(Compare(a1b2c4, a2b2c3) == VvOrder::kConcurrent);
  CHECK(Compare(a2b2c3, a1b2c3) == VvOrder::kAfter);

  CHECK(Dominates(empty, empty));
  CHECK(Dominates(a1, empty));
  CHECK_FALSE(Dominates(empty, a1));
  CHECK(Dominates(a2, a1));
  CHECK_FALSE(Dominates(a1, a2));
  CHECK_FALSE(Dominates(a1, b1));
  CHECK_FALSE(Dominates(b1, a1));
  CHECK(Dominates(a2b1, a1b1));
  CHECK(Dominates(a1b2c4, a1b2c3));
  CHECK_FALSE(Dominates(a1b2c4, a2b2c3));
  CHECK_FALSE(Dominates(a2b2c3, a1b2c4));
  // Zero counters count as absent.
  const VersionVector zero{{N(9), 0}};
  CHECK(Compare(zero, empty) == VvOrder::kEqual);
  CHECK(Compare(VersionVector{{N(1), 1}, {N(9), 0}}, a1) == VvOrder::kEqual);

  // Random pairs against a map-based model.
  const std::uint64_t seed = kSeed + 5;
  Prng prng(seed);
  CAPTURE(seed);
  for (int round = 0; round < 500; ++round) {
    CAPTURE(round);
    const Model ma = RandomModel(prng, prng.Index(8), 10);
    Model mb = prng.Chance(0.5) ? ma : RandomModel(prng, prng.Index(8), 10);
    if (prng.Chance(0.5) && !mb.empty()) {
      auto it = mb.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(prng.Index(mb.size())));
      it->second += prng.Chance(0.5) ? 1 : -1;  // counters are >= 1: -1 may give 0 (absent)
    }
    bool a_ahead = false, b_ahead = false;
    Model all = ma;
    all.insert(mb.begin(), mb.end());
    for (const auto& [n, unused] : all) {
      const std::uint64_t ca = ma.count(n) ? ma.at(n) : 0;
      const std::uint64_t cb = mb.count(n) ? mb.at(n) : 0;
      a_ahead |= ca > cb;
      b_ahead |= cb > ca;
    }
    const VvOrder expect = a_ahead && b_ahead ? VvOrder::kConcurrent
                           : a_ahead          ? VvOrder::kAfter
                           : b_ahead          ? VvOrder::kBefore
                                              : VvOrder::kEqual;
    const VersionVector va = Build(ma, prng), vb = Build(mb, prng);
    CHECK(Compare(va, vb) == expect);
    CHECK(Dominates(va, vb) == !b_ahead);
    CHECK(Dominates(vb, va) == !a_ahead);
    CHECK(Concurrent(va, vb) == (a_ahead && b_ahead));
  }
}
