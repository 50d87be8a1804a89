// NodeSet: a small ordered set of NodeIds in one sorted array.
//
// For the sets the protocol cores keep per neighbour (Plumtree's eager and
// lazy peers: a handful of ids each, read for every message): iteration is
// ascending, as with std::set, so replacing one changes no output, but a
// lookup or a walk touches one contiguous block instead of a heap node per
// id. Insert and erase move the tail, which is cheap for the sizes it is
// meant for (an active view, ~5 ids) and linear in general.
#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <vector>

#include "common/node_id.h"

namespace gv {

class NodeSet {
 public:
  using value_type = NodeId;
  using const_iterator = std::vector<NodeId>::const_iterator;
  using iterator = const_iterator;  // elements are keys: never changed in place

  NodeSet() = default;
  NodeSet(std::initializer_list<NodeId> ids) {
    for (NodeId id : ids) insert(id);
  }
  template <typename It>
  NodeSet(It first, It last) {
    for (; first != last; ++first) insert(*first);
  }

  const_iterator begin() const { return ids_.begin(); }
  const_iterator end() const { return ids_.end(); }
  std::size_t size() const { return ids_.size(); }
  bool empty() const { return ids_.empty(); }
  std::size_t capacity() const { return ids_.capacity(); }
  const NodeId* data() const { return ids_.data(); }

  bool contains(NodeId id) const { return std::binary_search(ids_.begin(), ids_.end(), id); }
  std::size_t count(NodeId id) const { return contains(id) ? 1 : 0; }

  // Returns true if `id` was not present.
  bool insert(NodeId id) {
    auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
    if (it != ids_.end() && *it == id) return false;
    ids_.insert(it, id);
    return true;
  }
  template <typename It>
  void insert(It first, It last) {
    for (; first != last; ++first) insert(*first);
  }
  // Returns the number of ids removed (0 or 1).
  std::size_t erase(NodeId id) {
    auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
    if (it == ids_.end() || *it != id) return 0;
    ids_.erase(it);
    return 1;
  }
  void clear() { ids_.clear(); }

  bool operator==(const NodeSet&) const = default;

 private:
  std::vector<NodeId> ids_;  // ascending, no duplicates
};

}  // namespace gv
