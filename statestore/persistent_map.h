// PersistentMap<V>: an ordered string -> V map (a B+-tree) with structural
// sharing, so that copying it is O(1) and a copy is an immutable point-in-time
// view that never blocks, and is never disturbed by, later writes (issue 5).
//
// Layout. Leaves hold up to kMaxLeafItems items sorted by key; internal nodes
// hold up to kMaxChildren children and separators[i] <= every key of
// children[i + 1] and > every key of children[i]. Nodes are held by
// std::shared_ptr<Node> and items (key + value) by std::shared_ptr<Item>, so
// copying a node copies pointers, never keys' values.
//
// Copy-on-write rule (path copying). A write descends from the root; before it
// touches a node it makes that node exclusively owned: a node may be mutated in
// place only if it AND every ancestor on the path has use_count() == 1,
// otherwise it is copied first (the copy then holds the only reference to
// itself, and its children gain a second reference, so the rule propagates
// downwards by itself: once a node is copied, each child it leads to is seen
// as shared and is copied in turn). Items follow the same rule below their
// leaf. A copy of the map (a view) holds the old root, so every node reachable
// from a view has a shared ancestor and is never written again.
//
// Why this is safe while another thread reads a view. Only the thread that
// owns the map (the store's loop thread) writes nodes and creates references
// into the live tree (copying the map, Capture). Another thread holds a view:
// it can read nodes reachable from that view's root, copy the view (which
// only adds references to nodes that are already shared) and drop references.
// So when the owning thread observes use_count() == 1 on a node whose
// ancestors are all exclusively owned, no other thread can reach that node
// any more, and no other thread can start to reach it. The reference count is
// decremented with release semantics by a thread that dropped its last view;
// use_count() is a relaxed load, so an acquire fence after seeing 1 orders
// that thread's earlier reads of the node before our writes to it. Seeing 2
// when the other thread is just dropping its reference only causes a
// needless copy.
//
// Several threads may read one view at once (the parallel snapshot encoder
// walks different segments of it): they only read, and take no references.
//
// Single writer: the owning map and its views must not be mutated from two
// threads; views are never mutated (only the owning map's non-const methods
// write). Cursors hold raw pointers: valid while the map they came from is
// alive and unchanged (a view's cursor stays valid for the view's lifetime).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gv::statestore {

template <typename V>
class PersistentMap {
 public:
  struct Item {
    Item(std::string k, V v) : key(std::move(k)), value(std::move(v)) {}
    std::string key;
    V value;
  };

  // Fan-out: 64 keeps a 1M-key tree 4 levels deep and a copied leaf at 64
  // pointers (1 KiB of atomic increments and one allocation per first write
  // to a leaf while a view is held).
  static constexpr std::size_t kMaxLeafItems = 64;
  static constexpr std::size_t kMaxChildren = 64;
  // A node under this size after an erase merges with a neighbour when the
  // two fit in one node; bulk-built nodes are filled to kBuildFill so the
  // first inserts after a load do not split every leaf.
  static constexpr std::size_t kMinFill = 16;
  static constexpr std::size_t kBuildFill = 48;

 private:
  struct Node;
  using NodePtr = std::shared_ptr<Node>;
  using ItemPtr = std::shared_ptr<Item>;

  // An internal node's separator keys (and a leaf's keys), stored flat: the keys concatenated
  // in one string and their end offsets in one vector. Copying a node (path
  // copying while a snapshot is held) then allocates twice and copies two
  // contiguous blocks, where a vector of strings allocated and copied every
  // key from its own heap block, a cache miss each (the write path's tail);
  // a lookup's binary search also reads one block instead of chasing a
  // pointer per probe.
  class Separators {
   public:
    std::size_t size() const { return ends_.size(); }
    std::string_view operator[](std::size_t i) const {
      const std::size_t begin = Begin(i);
      return std::string_view(bytes_.data() + begin, ends_[i] - begin);
    }
    // The number of keys below `key` (upper = false) or not above it
    // (upper = true). Keys are kept sorted and unique by the tree.
    std::size_t Rank(std::string_view key, bool upper) const {
      const std::size_t n = size();
      if (n == 0) return 0;
      // Every key starts with the first prefix_ bytes of key 0: a key that
      // differs there sorts before or after all of them.
      const std::size_t shared = std::min<std::size_t>(prefix_, key.size());
      const int c = std::char_traits<char>::compare(key.data(), bytes_.data(), shared);
      if (c != 0) return c < 0 ? 0 : n;
      if (key.size() < prefix_) return 0;  // a proper prefix of every key
      const std::uint64_t head = HeadOf(key, prefix_);
      const std::string_view rest = key.substr(prefix_);
      std::size_t low = 0, high = n;
      while (low < high) {
        const std::size_t mid = low + (high - low) / 2;
        bool right;  // `key` belongs after key mid
        if (heads_[mid] != head) {
          right = heads_[mid] < head;
        } else {
          const int d = (*this)[mid].substr(prefix_).compare(rest);
          right = upper ? d <= 0 : d < 0;
        }
        if (right) {
          low = mid + 1;
        } else {
          high = mid;
        }
      }
      return low;
    }
    void Insert(std::size_t i, std::string_view key) {
      InsertBytes(i, key);
      heads_.insert(heads_.begin() + static_cast<std::ptrdiff_t>(i), 0);
      // Only a new first or last key can shorten the common prefix.
      if ((i == 0 || i + 1 == size()) && RefreshPrefix()) return;
      heads_[i] = HeadOf(key, prefix_);
    }
    void PushBack(std::string_view key) { Insert(size(), key); }
    void Erase(std::size_t i) {
      const std::size_t begin = Begin(i);
      const std::size_t length = ends_[i] - begin;
      bytes_.erase(begin, length);
      ends_.erase(ends_.begin() + static_cast<std::ptrdiff_t>(i));
      for (std::size_t j = i; j < ends_.size(); ++j) ends_[j] -= static_cast<std::uint32_t>(length);
      heads_.erase(heads_.begin() + static_cast<std::ptrdiff_t>(i));
      if (i == 0 || i == size()) RefreshPrefix();
    }
    // Keeps the first n.
    void Truncate(std::size_t n) {
      bytes_.resize(Begin(n));
      ends_.resize(n);
      heads_.resize(n);
      RefreshPrefix();
    }
    // Appends other[from, other.size()).
    void AppendFrom(const Separators& other, std::size_t from) {
      for (std::size_t i = from; i < other.size(); ++i) {
        InsertBytes(size(), other[i]);
        heads_.push_back(0);
      }
      RefreshPrefix(/*recompute=*/true);
    }
    // "" when the lookup aids agree with the keys (CheckInvariants).
    std::string Check() const {
      if (heads_.size() != size()) return "separator heads count mismatch";
      for (std::size_t i = 0; i < size(); ++i) {
        const std::string_view key = (*this)[i];
        if (key.size() < prefix_ || key.substr(0, prefix_) != std::string_view(bytes_.data(), prefix_)) {
          return "key " + std::string(key) + " lacks its node's common prefix";
        }
        if (heads_[i] != HeadOf(key, prefix_)) return "stale head for key " + std::string(key);
      }
      return "";
    }

   private:
    std::size_t Begin(std::size_t i) const { return i == 0 ? 0 : ends_[i - 1]; }
    void InsertBytes(std::size_t i, std::string_view key) {
      const std::size_t at = Begin(i);
      bytes_.insert(at, key);
      ends_.insert(ends_.begin() + static_cast<std::ptrdiff_t>(i), static_cast<std::uint32_t>(at));
      for (std::size_t j = i; j < ends_.size(); ++j) ends_[j] += static_cast<std::uint32_t>(key.size());
    }
    // Bytes [prefix, prefix + 8) of `key`, big-endian, zero-padded: unequal
    // heads order two keys with that prefix as the keys do (a padded zero
    // sorts like the end of a shorter key); equal heads need the full compare.
    static std::uint64_t HeadOf(std::string_view key, std::size_t prefix) {
      unsigned char bytes[8] = {};
      if (key.size() > prefix) std::memcpy(bytes, key.data() + prefix, std::min<std::size_t>(8, key.size() - prefix));
      std::uint64_t head = 0;
      for (unsigned char b : bytes) head = (head << 8) | b;
      return head;
    }
    // Sets prefix_ to the common prefix of the first and last keys (that of
    // all keys, as they are sorted) and recomputes every head if it changed
    // or `recompute`. Returns whether the heads were recomputed.
    bool RefreshPrefix(bool recompute = false) {
      std::size_t common = 0;
      if (size() > 0) {
        const std::string_view first = (*this)[0], last = (*this)[size() - 1];
        const std::size_t limit = std::min(first.size(), last.size());
        while (common < limit && first[common] == last[common]) ++common;
      }
      if (common == prefix_ && !recompute) return false;
      prefix_ = static_cast<std::uint32_t>(common);
      for (std::size_t i = 0; i < size(); ++i) heads_[i] = HeadOf((*this)[i], prefix_);
      return true;
    }
    std::string bytes_;
    std::vector<std::uint32_t> ends_;  // keys are <= 1 KiB, 63 to a node: far below 4 GiB
    // Lookup aids: every key starts with bytes_[0, prefix_) (the keys' common
    // prefix), and heads_[i] is HeadOf(key i, prefix_). A binary search then
    // compares one integer per probe and reads the keys' bytes only on a tie
    // (keys under one prefix, "config/app/…", share their first bytes, which
    // made every probe a memcmp call over the same prefix).
    std::uint32_t prefix_ = 0;
    std::vector<std::uint64_t> heads_;
  };

  struct Node {
    bool leaf = true;
    std::vector<ItemPtr> items;     // leaf only: sorted by key, unique
    // Leaf only: keys[i] == items[i]->key, flat, so a lookup's binary search
    // reads one block instead of an item and its key's heap block per probe
    // (two cache misses each: the store's hottest path under writes).
    Separators keys;
    std::vector<NodePtr> children;  // internal only: >= 1
    Separators separators;          // internal only: children.size() - 1
  };

 public:
  PersistentMap() = default;
  PersistentMap(const PersistentMap&) = default;             // O(1): shares the tree
  PersistentMap& operator=(const PersistentMap&) = default;  // O(1)
  PersistentMap(PersistentMap&& other) noexcept : root_(std::move(other.root_)), size_(other.size_) {
    other.size_ = 0;
  }
  PersistentMap& operator=(PersistentMap&& other) noexcept {
    root_ = std::move(other.root_);
    size_ = other.size_;
    other.size_ = 0;
    return *this;
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The route of a lookup (child index per internal level, then the leaf
  // position), so a write that follows a read descends without comparing
  // keys again: the store reads an entry, decides, then writes it.
  struct Path {
    static constexpr std::size_t kMaxDepth = 32;  // 64-way fan-out: never reached
    std::array<std::uint32_t, kMaxDepth> child{};
    std::size_t depth = 0;     // internal levels recorded
    std::size_t position = 0;  // in the leaf
    bool found = false;
    bool complete = false;  // false: deeper than kMaxDepth (writes then descend by key)
  };

  const V* Find(std::string_view key, Path* path = nullptr) const {
    const Node* node = root_.get();
    if (node == nullptr) return nullptr;
    std::size_t depth = 0;
    while (!node->leaf) {
      const std::size_t index = ChildIndex(*node, key);
      if (path != nullptr && depth < Path::kMaxDepth) path->child[depth] = static_cast<std::uint32_t>(index);
      ++depth;
      node = node->children[index].get();
    }
    const std::size_t pos = LeafPosition(*node, key);
    const bool found = pos < node->keys.size() && node->keys[pos] == key;
    if (path != nullptr) {
      path->depth = depth;
      path->position = pos;
      path->found = found;
      path->complete = depth <= Path::kMaxDepth;
    }
    return found ? &node->items[pos]->value : nullptr;
  }

  // The value at a found `path` (from Find(key, &path) on this map, with no
  // write in between) made exclusively owned by path copying. Valid until the
  // next call on this map.
  V* MutableAt(const Path& path, std::string_view key) {
    if (!path.found) return nullptr;
    Node* node = &Own(root_);
    for (std::size_t level = 0; !node->leaf; ++level) {
      const std::size_t index = path.complete ? path.child[level] : ChildIndex(*node, key);
      node = &Own(node->children[index]);
    }
    ItemPtr& item = node->items[path.position];
    OwnItem(item);
    return &item->value;
  }

  // The value of `key` made exclusively owned, or nullptr if absent (then
  // nothing is copied).
  V* FindMutable(std::string_view key) {
    Path path;
    if (Find(key, &path) == nullptr) return nullptr;
    return MutableAt(path, key);
  }

  // Inserts at a not-found `path` (from Find(key, &path) on this map, with
  // no write in between).
  void InsertAt(const Path& path, std::string key, V value) {
    if (!root_) root_ = std::make_shared<Node>();
    Split split;
    InsertInto(Own(root_), std::move(key), std::move(value), split, path.complete ? &path : nullptr, 0);
    if (split.right) {
      auto new_root = std::make_shared<Node>();
      new_root->leaf = false;
      new_root->children = {std::move(root_), std::move(split.right)};
      new_root->separators.PushBack(split.separator);
      root_ = std::move(new_root);
    }
    ++size_;
  }

  // Inserts key -> value if key is absent; false (and no change) if present.
  bool Insert(std::string key, V value) {
    Path path;
    if (Find(key, &path) != nullptr) return false;
    InsertAt(path, std::move(key), std::move(value));
    return true;
  }

  // Removes key; false if absent (then nothing is copied).
  bool Erase(std::string_view key) {
    if (Find(key) == nullptr) return false;
    EraseFrom(Own(root_), key);
    --size_;
    // A root with one child adds a level for nothing.
    while (!root_->leaf && root_->children.size() == 1) {
      NodePtr child = root_->children[0];
      root_ = std::move(child);
    }
    return true;
  }

  // Calls fn(key, V&) on every item in key order, each made exclusively owned
  // (a held view keeps its own copies).
  template <typename Fn>
  void ForEachMutable(Fn&& fn) {
    if (!root_) return;
    ForEachMutableIn(Own(root_), fn);
  }

  // A position in key order. Raw pointers: see the header comment.
  class Cursor {
   public:
    bool valid() const { return !path_.empty(); }
    const std::string& key() const { return Top().node->items[Top().index]->key; }
    const V& value() const { return Top().node->items[Top().index]->value; }
    void Next() {
      ++path_.back().index;
      Settle();
    }
    // The segment (see Segments()) of the current item: an opaque identity,
    // equal for two items iff they are in the same segment.
    const void* segment() const { return path_.size() >= 2 ? path_[path_.size() - 2].node : path_.front().node; }

   private:
    friend class PersistentMap;
    struct Step {
      const Node* node;
      std::size_t index;
    };
    const Step& Top() const { return path_.back(); }
    // Moves to the first item at or after the current path position; an
    // empty path means the end.
    void Settle() {
      while (!path_.empty()) {
        const Node* node = path_.back().node;
        const std::size_t index = path_.back().index;
        if (node->leaf) {
          if (index < node->items.size()) return;
        } else if (index < node->children.size()) {
          path_.push_back(Step{node->children[index].get(), 0});
          continue;
        }
        path_.pop_back();
        if (!path_.empty()) ++path_.back().index;
      }
    }
    std::vector<Step> path_;
  };

  Cursor Begin() const {
    Cursor cursor;
    if (root_) {
      cursor.path_.push_back(typename Cursor::Step{root_.get(), 0});
      cursor.Settle();
    }
    return cursor;
  }
  // The first item whose key is >= key.
  Cursor LowerBound(std::string_view key) const {
    Cursor cursor;
    const Node* node = root_.get();
    if (node == nullptr) return cursor;
    while (!node->leaf) {
      const std::size_t index = ChildIndex(*node, key);
      cursor.path_.push_back(typename Cursor::Step{node, index});
      node = node->children[index].get();
    }
    cursor.path_.push_back(typename Cursor::Step{node, LeafPosition(*node, key)});
    cursor.Settle();
    return cursor;
  }

  // The map cut into segments: the items under one bottom internal node (a
  // parent of leaves; the whole map when the root is a leaf), in key order,
  // each with a cursor at its first item and its item count. A segment holds
  // at most kMaxChildren * kMaxLeafItems items. The cut depends only on the
  // tree's shape, so every walk of one map (or of one view) sees the same
  // segments: the snapshot encoder ends chunks at segment boundaries so that
  // segments can be encoded on several threads into the same bytes.
  struct SegmentStart {
    Cursor begin;       // at the segment's first item; !valid() only if the map is empty
    std::size_t items;  // items in the segment
  };
  std::vector<SegmentStart> Segments() const {
    std::vector<SegmentStart> out;
    if (!root_) return out;
    std::vector<typename Cursor::Step> path;
    CollectSegments(*root_, path, out);
    return out;
  }

  // Builds a map in O(n) from items appended in strictly increasing key order
  // (snapshot restore). Append refuses an out-of-order or duplicate key.
  class Builder {
   public:
    bool Append(std::string key, V value) {
      if (!items_.empty() && !(items_.back()->key < key)) return false;
      items_.push_back(std::make_shared<Item>(std::move(key), std::move(value)));
      return true;
    }
    std::size_t size() const { return items_.size(); }
    const std::string* last_key() const { return items_.empty() ? nullptr : &items_.back()->key; }

    PersistentMap Finish() && {
      PersistentMap map;
      map.size_ = items_.size();
      if (items_.empty()) return map;
      // Level 0: leaves, each with its smallest key; then internal levels
      // until one node is left. Nodes of a level are filled evenly.
      std::vector<std::pair<NodePtr, std::string>> level;
      const std::size_t leaves = (items_.size() + kBuildFill - 1) / kBuildFill;
      for (std::size_t i = 0, begin = 0; i < leaves; ++i) {
        const std::size_t end = items_.size() * (i + 1) / leaves;
        auto leaf = std::make_shared<Node>();
        leaf->items.assign(std::make_move_iterator(items_.begin() + static_cast<std::ptrdiff_t>(begin)),
                           std::make_move_iterator(items_.begin() + static_cast<std::ptrdiff_t>(end)));
        for (const ItemPtr& item : leaf->items) leaf->keys.PushBack(item->key);
        std::string first = leaf->items.front()->key;
        level.emplace_back(std::move(leaf), std::move(first));
        begin = end;
      }
      items_.clear();
      while (level.size() > 1) {
        std::vector<std::pair<NodePtr, std::string>> parents;
        const std::size_t count = (level.size() + kBuildFill - 1) / kBuildFill;
        for (std::size_t i = 0, begin = 0; i < count; ++i) {
          const std::size_t end = level.size() * (i + 1) / count;
          auto parent = std::make_shared<Node>();
          parent->leaf = false;
          for (std::size_t c = begin; c < end; ++c) {
            if (c > begin) parent->separators.PushBack(level[c].second);
            parent->children.push_back(std::move(level[c].first));
          }
          parents.emplace_back(std::move(parent), std::move(level[begin].second));
          begin = end;
        }
        level = std::move(parents);
      }
      map.root_ = std::move(level.front().first);
      return map;
    }

   private:
    std::vector<ItemPtr> items_;
  };

  // Test support: checks the structural invariants (sorted unique keys,
  // separators bound their subtrees, node sizes, size()). Returns "" or what broke.
  std::string CheckInvariants() const {
    if (!root_) return size_ == 0 ? "" : "null root with non-zero size";
    std::size_t count = 0;
    const std::string* previous = nullptr;
    std::string error = CheckNode(*root_, nullptr, nullptr, previous, count);
    if (!error.empty()) return error;
    if (count != size_) return "size() is " + std::to_string(size_) + " but the tree holds " + std::to_string(count);
    return "";
  }

 private:
  struct Split {
    NodePtr right;          // new right sibling, or null
    std::string separator;  // smallest key of right's subtree
  };

  static std::size_t ChildIndex(const Node& node, std::string_view key) {
    return node.separators.Rank(key, /*upper=*/true);  // separators <= key
  }
  static std::size_t LeafPosition(const Node& node, std::string_view key) {
    return node.keys.Rank(key, /*upper=*/false);  // keys < key
  }
  static std::size_t Fill(const Node& node) { return node.leaf ? node.items.size() : node.children.size(); }

  // Copy-on-write step; the caller has made the holder of `slot` exclusively
  // owned already (see the header comment for why use_count() == 1 is then
  // conclusive across threads).
  static Node& Own(NodePtr& slot) {
    if (slot.use_count() == 1) {
      std::atomic_thread_fence(std::memory_order_acquire);
    } else {
      slot = CopyNode(*slot);
    }
    return *slot;
  }
  static void OwnItem(ItemPtr& slot) {
    if (slot.use_count() == 1) {
      std::atomic_thread_fence(std::memory_order_acquire);
    } else {
      slot = std::make_shared<Item>(*slot);
    }
  }

  // `node` is exclusively owned; key is absent. `path` (may be null) is the
  // route Find recorded; `level` is node's depth.
  static void InsertInto(Node& node, std::string key, V value, Split& split, const Path* path, std::size_t level) {
    if (node.leaf) {
      const std::size_t pos = path != nullptr ? path->position : LeafPosition(node, key);
      node.keys.Insert(pos, key);
      node.items.insert(node.items.begin() + static_cast<std::ptrdiff_t>(pos),
                        std::make_shared<Item>(std::move(key), std::move(value)));
      if (node.items.size() > kMaxLeafItems) {
        auto right = std::make_shared<Node>();
        const std::size_t half = node.items.size() / 2;
        const auto mid = node.items.begin() + static_cast<std::ptrdiff_t>(half);
        right->items.assign(std::make_move_iterator(mid), std::make_move_iterator(node.items.end()));
        node.items.erase(mid, node.items.end());
        right->keys.AppendFrom(node.keys, half);
        node.keys.Truncate(half);
        split.separator = right->items.front()->key;
        split.right = std::move(right);
      }
      return;
    }
    const std::size_t index = path != nullptr ? path->child[level] : ChildIndex(node, key);
    Split child_split;
    InsertInto(Own(node.children[index]), std::move(key), std::move(value), child_split, path, level + 1);
    if (!child_split.right) return;
    node.children.insert(node.children.begin() + static_cast<std::ptrdiff_t>(index) + 1, std::move(child_split.right));
    node.separators.Insert(index, child_split.separator);
    if (node.children.size() > kMaxChildren) {
      // Children [0, mid) stay, [mid, n) move right; separators[mid - 1]
      // (the smallest key of children[mid]) moves up.
      const std::size_t mid = node.children.size() / 2;
      auto right = std::make_shared<Node>();
      right->leaf = false;
      right->children.assign(std::make_move_iterator(node.children.begin() + static_cast<std::ptrdiff_t>(mid)),
                             std::make_move_iterator(node.children.end()));
      right->separators.AppendFrom(node.separators, mid);
      split.separator = std::string(node.separators[mid - 1]);
      node.children.resize(mid);
      node.separators.Truncate(mid - 1);
      split.right = std::move(right);
    }
  }

  // `node` is exclusively owned; key is present in its subtree.
  static void EraseFrom(Node& node, std::string_view key) {
    if (node.leaf) {
      const std::size_t pos = LeafPosition(node, key);
      node.items.erase(node.items.begin() + static_cast<std::ptrdiff_t>(pos));
      node.keys.Erase(pos);
      return;
    }
    const std::size_t index = ChildIndex(node, key);
    Node& child = Own(node.children[index]);
    EraseFrom(child, key);
    if (Fill(child) < kMinFill) MergeWithNeighbour(node, index);
  }

  // Merges children[index] with a neighbour when both fit in one node. A
  // separator between them keeps bounding the merged keys from both sides.
  static void MergeWithNeighbour(Node& parent, std::size_t index) {
    if (parent.children.size() < 2) return;
    const std::size_t left = index > 0 ? index - 1 : index;
    const std::size_t right = left + 1;
    if (Fill(*parent.children[left]) + Fill(*parent.children[right]) > kMaxChildren) return;
    static_assert(kMaxChildren == kMaxLeafItems, "the fit check above serves both node kinds");
    Node& into = Own(parent.children[left]);
    Node& from = Own(parent.children[right]);
    if (into.leaf) {
      into.items.insert(into.items.end(), std::make_move_iterator(from.items.begin()),
                        std::make_move_iterator(from.items.end()));
      into.keys.AppendFrom(from.keys, 0);
    } else {
      into.separators.PushBack(parent.separators[left]);
      into.separators.AppendFrom(from.separators, 0);
      into.children.insert(into.children.end(), std::make_move_iterator(from.children.begin()),
                           std::make_move_iterator(from.children.end()));
    }
    parent.children.erase(parent.children.begin() + static_cast<std::ptrdiff_t>(right));
    parent.separators.Erase(left);
  }

  template <typename Fn>
  static void ForEachMutableIn(Node& node, Fn& fn) {
    if (node.leaf) {
      for (ItemPtr& item : node.items) {
        OwnItem(item);
        fn(static_cast<const std::string&>(item->key), item->value);
      }
      return;
    }
    for (NodePtr& child : node.children) ForEachMutableIn(Own(child), fn);
  }

  static void CollectSegments(const Node& node, std::vector<typename Cursor::Step>& path,
                              std::vector<SegmentStart>& out) {
    if (node.leaf || node.children.front()->leaf) {
      SegmentStart start;
      start.items = 0;
      if (node.leaf) {
        start.items = node.items.size();
      } else {
        // One load per leaf: issue them all before summing.
        for (const NodePtr& child : node.children) PrefetchRead(child.get());
        for (const NodePtr& child : node.children) start.items += child->items.size();
      }
      start.begin.path_ = path;
      start.begin.path_.push_back(typename Cursor::Step{&node, 0});
      start.begin.Settle();
      // An empty segment would settle into the next one; it has no items to encode.
      if (start.items == 0) start.begin.path_.clear();
      out.push_back(std::move(start));
      return;
    }
    for (std::size_t i = 0; i < node.children.size(); ++i) {
      path.push_back(typename Cursor::Step{&node, i});
      CollectSegments(*node.children[i], path, out);
      path.pop_back();
    }
  }

  static void PrefetchRead(const void* p) { __builtin_prefetch(p, 0, 3); }
  // A write prefetch of a shared_ptr's reference count: with make_shared the
  // count sits in the same allocation, just before the object (a hint:
  // harmless if the layout differs).
  template <typename T>
  static void PrefetchCount(const std::shared_ptr<T>& p) {
    __builtin_prefetch(reinterpret_cast<const char*>(p.get()) - 8, 1, 3);
  }
  // A copy of `node` (path copying). Copying its pointers increments each
  // child's or item's reference count: up to 64 atomic read-modify-writes on
  // lines scattered over the heap, each a cache miss, and a locked
  // instruction waits for its line before the next may start. Prefetching
  // all the counts for writing first lets the misses overlap, so the copy
  // costs about one miss instead of 64 in a row (the write path's tail while
  // a snapshot is held).
  static NodePtr CopyNode(const Node& node) {
    if (node.leaf) {
      for (const ItemPtr& item : node.items) PrefetchCount(item);
    } else {
      for (const NodePtr& child : node.children) PrefetchCount(child);
    }
    return std::make_shared<Node>(node);
  }

  static std::string CheckNode(const Node& node, const std::string_view* lower, const std::string_view* upper,
                               const std::string*& previous, std::size_t& count) {
    if (node.leaf) {
      if (node.items.size() > kMaxLeafItems) return "leaf over capacity";
      if (node.keys.size() != node.items.size()) return "leaf key count mismatch";
      if (std::string error = node.keys.Check(); !error.empty()) return error;
      for (std::size_t i = 0; i < node.items.size(); ++i) {
        if (node.keys[i] != node.items[i]->key) return "leaf key " + std::string(node.keys[i]) + " differs from its item";
      }
      for (const ItemPtr& item : node.items) {
        if (previous != nullptr && !(*previous < item->key)) return "keys not strictly increasing at " + item->key;
        if (lower != nullptr && std::string_view(item->key) < *lower) return "key " + item->key + " below its separator";
        if (upper != nullptr && !(std::string_view(item->key) < *upper)) {
          return "key " + item->key + " not below the next separator";
        }
        previous = &item->key;
        ++count;
      }
      return "";
    }
    if (node.children.empty() || node.children.size() > kMaxChildren) return "internal node size out of range";
    if (node.separators.size() + 1 != node.children.size()) return "separator count mismatch";
    if (std::string error = node.separators.Check(); !error.empty()) return error;
    for (std::size_t i = 0; i < node.children.size(); ++i) {
      const std::string_view lo_key = i == 0 ? std::string_view() : node.separators[i - 1];
      const std::string_view hi_key = i + 1 == node.children.size() ? std::string_view() : node.separators[i];
      const std::string_view* lo = i == 0 ? lower : &lo_key;
      const std::string_view* hi = i + 1 == node.children.size() ? upper : &hi_key;
      std::string error = CheckNode(*node.children[i], lo, hi, previous, count);
      if (!error.empty()) return error;
    }
    return "";
  }

  NodePtr root_;
  std::size_t size_ = 0;
};

}  // namespace gv::statestore
