#include "common/node_set.h"

#include <doctest/doctest.h>

#include <set>
#include <vector>

#include "common/prng.h"

using namespace gv;

TEST_CASE("node set: insert and erase report what changed, iteration is ascending") {
  NodeSet s;
  CHECK(s.empty());
  CHECK(s.insert(NodeId(5)));
  CHECK(s.insert(NodeId(2)));
  CHECK(s.insert(NodeId(9)));
  CHECK_FALSE(s.insert(NodeId(5)));
  CHECK(s.size() == 3);
  CHECK(std::vector<NodeId>(s.begin(), s.end()) == std::vector<NodeId>{NodeId(2), NodeId(5), NodeId(9)});
  CHECK(s.count(NodeId(9)) == 1);
  CHECK(s.count(NodeId(4)) == 0);
  CHECK(s.erase(NodeId(4)) == 0);
  CHECK(s.erase(NodeId(2)) == 1);
  CHECK_FALSE(s.contains(NodeId(2)));
  CHECK(s == NodeSet{NodeId(9), NodeId(5)});
  s.clear();
  CHECK(s.empty());
}

TEST_CASE("node set: behaves as std::set over random operations") {
  // NodeSet replaced std::set in Plumtree with the promise of the same
  // iteration order, hence the same protocol output.
  Prng rng(7);
  NodeSet flat;
  std::set<NodeId> reference;
  for (int step = 0; step < 20000; ++step) {
    const NodeId id(1 + rng.Uniform(40));
    if (rng.Chance(0.55)) {
      CHECK(flat.insert(id) == reference.insert(id).second);
    } else {
      CHECK(flat.erase(id) == reference.erase(id));
    }
    REQUIRE(flat.size() == reference.size());
  }
  CHECK(std::vector<NodeId>(flat.begin(), flat.end()) == std::vector<NodeId>(reference.begin(), reference.end()));
  CHECK(NodeSet(reference.begin(), reference.end()) == flat);
}
