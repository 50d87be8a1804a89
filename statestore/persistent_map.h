// PersistentMap<V>: an ordered string -> V map (a B+-tree) with structural
// sharing, so that copying it is O(1) and a copy is an immutable point-in-time
// view that never blocks, and is never disturbed by, later writes (issue 5).
//
// Layout. Leaves hold up to kMaxLeafItems items sorted by key; internal nodes
// hold up to kMaxChildren children and separators[i] <= every key of
// children[i + 1] and > every key of children[i]. A node is one fixed-size
// block (about 2.8 KiB) holding its child or item pointers and its keys
// (bytes, end offsets, lookup aids; the bytes move to the heap only past
// 1.5 KiB). An item is a value alone, its own block: its key is in its leaf
// only. Nodes and items come from their domain's slabs and free lists, not
// from malloc (see Domain). They are plain pointers: no reference counts.
//
// Ownership by epochs. Every map that is written (a "live" map) has a Domain.
// A copy of a live map is a view: it pins the domain's current epoch P, and
// the domain's epoch moves on to P + 1. Every node and item carries the epoch
// it was made in, so:
//   - an object made after the newest pinned epoch is reachable from the live
//     tree only: a write changes it in place;
//   - any other object may be reachable from a view: a write copies it first
//     (path copying: the copy is new, so it is written in place; the children
//     it shares with the old one are older, and are copied in turn when a
//     write descends into them) and retires the old one.
// Every object reachable from the live root belongs to the live tree, and
// every retired object to the domain's retire list, exactly once. A retired
// object made in epoch M and unlinked while the domain's epoch was E can be
// reached only from views pinned at P with M <= P < E: it is freed once no
// such view is left, by a thread that drops a view (often an encoder thread,
// off the store's thread), or by the domain when it goes. So a view held for
// long (a slow download) keeps only what it can reach, not what later,
// shorter views kept.
//
// Why. Copying a leaf used to copy 64 shared_ptrs: 64 atomic increments on
// reference counts scattered over the heap, a cache miss each, plus five
// allocations. It is now a block from a free list and a copy of the used
// part of the old one (prefetched first): the write path's tail while a
// snapshot is held (issue 5).
//
// Threads. Only the thread that owns a live map writes it, copies it (makes
// views) and destroys it. Any thread may read a view, copy it (the copy
// shares the pin) and drop it. The owner reads the newest pinned epoch with
// acquire ordering, and a view's release publishes it with release ordering
// (under the domain's mutex), so a reader's reads of a node happen before the
// owner writes that node in place. Pinning, unpinning and retiring take the
// mutex, and so does an allocation that takes the blocks other threads freed;
// freeing happens outside it.
//
// Views are read-only. A write to a view (or to a copy of one) first turns it
// into a live map of its own by copying every item (O(n)); the store asks for
// that only in Install from a const snapshot (Clone), never on a write path.
//
// Cursors hold raw pointers: valid while the map they came from is alive and
// unchanged (a view's cursor stays valid for the view's lifetime). A key
// passed to a write of a live map must not point into that map (a cursor's
// key() does): the write may free the node it points into. Copy it first.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/prefetch.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define GV_POISON_MEMORY_REGION(addr, size) ASAN_POISON_MEMORY_REGION(addr, size)
#define GV_UNPOISON_MEMORY_REGION(addr, size) ASAN_UNPOISON_MEMORY_REGION(addr, size)
#else
#define GV_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define GV_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

namespace gv::statestore {

template <typename V>
class PersistentMap {
 public:
  // A value and the epoch it was made in. Its key lives in its leaf only
  // (Node::keys): copying an item on a write while a view is held then
  // allocates no key, and a walk in key order reads keys from the leaf.
  struct Item {
    Item(std::uint64_t made_in, V v) : epoch(made_in), value(std::move(v)) {}
    std::uint64_t epoch;  // the domain's epoch when made (see the header comment)
    V value;
  };

  // Fan-out: 64 keeps a 1M-key tree 4 levels deep; a first write to a leaf
  // while a view is held copies the used part of it (at 16-byte keys and 48
  // items, about 1.7 KiB) into a pooled block.
  static constexpr std::size_t kMaxLeafItems = 64;
  static constexpr std::size_t kMaxChildren = 64;
  // A node under this size after an erase merges with a neighbour when the
  // two fit in one node; bulk-built nodes are filled to kBuildFill so the
  // first inserts after a load do not split every leaf.
  static constexpr std::size_t kMinFill = 16;
  static constexpr std::size_t kBuildFill = 48;

 private:
  // A node holds one entry more than its maximum between an insert and the
  // split that follows it.
  static constexpr std::size_t kSlots = kMaxLeafItems + 1;
  static_assert(kMaxChildren == kMaxLeafItems, "one slot array serves both node kinds");

  struct Node;
  // A node's keys (a leaf's item keys, an internal node's separators), stored
  // flat inside the node: the keys' bytes concatenated, their end offsets and
  // their lookup heads. Copying a node (path copying while a snapshot is
  // held) then copies contiguous memory and allocates nothing unless the keys
  // outgrow kInlineKeyBytes (they move to one heap block then); a lookup's
  // binary search reads the node alone.
  class Separators {
   public:
    // 24 bytes a key at 64 keys: 16-byte keys never leave the node.
    static constexpr std::size_t kInlineKeyBytes = 1536;

    Separators() = default;
    Separators(const Separators& other) : size_(other.size_), prefix_(other.prefix_), bytes_size_(other.bytes_size_) {
      if (bytes_size_ > kInlineKeyBytes) {
        heap_capacity_ = bytes_size_;
        heap_ = new char[heap_capacity_];
      }
      std::memcpy(data(), other.data(), bytes_size_);
      std::copy_n(other.ends_.begin(), size_, ends_.begin());
      std::copy_n(other.heads_.begin(), size_, heads_.begin());
    }
    Separators& operator=(const Separators&) = delete;
    ~Separators() { delete[] heap_; }
    // Prefetches what the copy constructor reads from this and writes to the
    // raw memory at `to` (where a copy is about to be constructed).
    void PrefetchCopyTo(char* to) const {
      PrefetchBytes(ends_.data(), size_ * sizeof(ends_[0]));
      PrefetchBytes(heads_.data(), size_ * sizeof(heads_[0]));
      PrefetchBytes(data(), bytes_size_);
      PrefetchBytesForWrite(to + offsetof(Separators, ends_), size_ * sizeof(ends_[0]));
      PrefetchBytesForWrite(to + offsetof(Separators, heads_), size_ * sizeof(heads_[0]));
      PrefetchBytesForWrite(to + offsetof(Separators, inline_), std::min<std::size_t>(bytes_size_, kInlineKeyBytes));
    }

    std::size_t size() const { return size_; }
    std::string_view operator[](std::size_t i) const {
      const std::size_t begin = Begin(i);
      return std::string_view(data() + begin, ends_[i] - begin);
    }
    // The number of keys below `key` (upper = false) or not above it
    // (upper = true). Keys are kept sorted and unique by the tree.
    std::size_t Rank(std::string_view key, bool upper) const {
      const std::size_t n = size();
      if (n == 0) return 0;
      // Every key starts with the first prefix_ bytes of key 0: a key that
      // differs there sorts before or after all of them.
      const std::size_t shared = std::min<std::size_t>(prefix_, key.size());
      const int c = std::char_traits<char>::compare(key.data(), data(), shared);
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
      std::copy_backward(heads_.begin() + static_cast<std::ptrdiff_t>(i),
                         heads_.begin() + static_cast<std::ptrdiff_t>(size_ - 1),
                         heads_.begin() + static_cast<std::ptrdiff_t>(size_));
      heads_[i] = 0;
      // Only a new first or last key can shorten the common prefix.
      if ((i == 0 || i + 1 == size()) && RefreshPrefix()) return;
      heads_[i] = HeadOf(key, prefix_);
    }
    void PushBack(std::string_view key) { Insert(size(), key); }
    void Erase(std::size_t i) {
      const std::size_t begin = Begin(i);
      const std::size_t length = ends_[i] - begin;
      std::memmove(data() + begin, data() + begin + length, bytes_size_ - begin - length);
      bytes_size_ -= static_cast<std::uint32_t>(length);
      for (std::size_t j = i; j + 1 < size_; ++j) {
        ends_[j] = ends_[j + 1] - static_cast<std::uint32_t>(length);
        heads_[j] = heads_[j + 1];
      }
      --size_;
      if (i == 0 || i == size()) RefreshPrefix();
    }
    // Keeps the first n.
    void Truncate(std::size_t n) {
      bytes_size_ = static_cast<std::uint32_t>(Begin(n));
      size_ = static_cast<std::uint32_t>(n);
      RefreshPrefix();
    }
    // Appends other[from, other.size()).
    void AppendFrom(const Separators& other, std::size_t from) {
      for (std::size_t i = from; i < other.size(); ++i) InsertBytes(size(), other[i]);
      RefreshPrefix(/*recompute=*/true);
    }
    // "" when the lookup aids agree with the keys (CheckInvariants).
    std::string Check() const {
      for (std::size_t i = 0; i < size(); ++i) {
        const std::string_view key = (*this)[i];
        if (key.size() < prefix_ || key.substr(0, prefix_) != std::string_view(data(), prefix_)) {
          return "key " + std::string(key) + " lacks its node's common prefix";
        }
        if (heads_[i] != HeadOf(key, prefix_)) return "stale head for key " + std::string(key);
      }
      return "";
    }

   private:
    char* data() { return heap_ != nullptr ? heap_ : inline_; }
    const char* data() const { return heap_ != nullptr ? heap_ : inline_; }
    // Room for `bytes` key bytes (doubling on the heap past the inline room).
    void Reserve(std::size_t bytes) {
      const std::size_t capacity = heap_ != nullptr ? heap_capacity_ : kInlineKeyBytes;
      if (bytes <= capacity) return;
      const std::size_t grown = std::max(bytes, 2 * capacity);
      char* block = new char[grown];
      std::memcpy(block, data(), bytes_size_);
      delete[] heap_;
      heap_ = block;
      heap_capacity_ = static_cast<std::uint32_t>(grown);
    }
    std::size_t Begin(std::size_t i) const { return i == 0 ? 0 : ends_[i - 1]; }
    // Inserts key i's bytes and end offset (its head is the caller's).
    void InsertBytes(std::size_t i, std::string_view key) {
      if (size_ >= kSlots) std::abort();  // the tree splits before this: a broken invariant
      const std::size_t at = Begin(i);
      Reserve(bytes_size_ + key.size());
      std::memmove(data() + at + key.size(), data() + at, bytes_size_ - at);
      if (!key.empty()) std::memcpy(data() + at, key.data(), key.size());
      bytes_size_ += static_cast<std::uint32_t>(key.size());
      for (std::size_t j = size_; j > i; --j) ends_[j] = ends_[j - 1] + static_cast<std::uint32_t>(key.size());
      ends_[i] = static_cast<std::uint32_t>(at + key.size());
      ++size_;
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
    std::uint32_t size_ = 0;
    // Lookup aids: every key starts with key bytes [0, prefix_) (the keys' common
    // prefix), and heads_[i] is HeadOf(key i, prefix_). A binary search then
    // compares one integer per probe and reads the keys' bytes only on a tie
    // (keys under one prefix, "config/app/…", share their first bytes, which
    // made every probe a memcmp call over the same prefix).
    std::uint32_t prefix_ = 0;
    // [0, size_) are set. Keys are <= 1 KiB, 65 to a node: offsets fit 32 bits.
    std::array<std::uint32_t, kSlots> ends_;
    std::array<std::uint64_t, kSlots> heads_;
    // The keys' bytes: inline_ until they outgrow it, then heap_.
    std::uint32_t bytes_size_ = 0;
    std::uint32_t heap_capacity_ = 0;
    char* heap_ = nullptr;
    char inline_[kInlineKeyBytes];
  };

  struct Node {
    std::uint64_t epoch = 0;  // the domain's epoch when made (see the header comment)
    bool leaf = true;
    std::uint32_t count = 0;  // items (leaf) or children (internal)
    // [0, count) are set: items (leaf) or children (internal, count >= 1).
    union Slot {
      Item* item;
      Node* child;
    };
    std::array<Slot, kSlots> slots;
    // Leaf: the items' keys (keys[i] is item i's). Internal: count - 1 separators.
    Separators keys;

    Node(std::uint64_t made_in, bool is_leaf) : epoch(made_in), leaf(is_leaf) {}
    // A copy made in `made_in`, sharing the children or items.
    Node(std::uint64_t made_in, const Node& other)
        : epoch(made_in), leaf(other.leaf), count(other.count), keys(other.keys) {
      std::copy_n(other.slots.begin(), count, slots.begin());
    }
    // Prefetches every line a copy of this node into `block` reads and
    // writes, so that their misses overlap instead of following one another
    // through the copy (a first write to a leaf while a view is held; the
    // old leaf is cold, and so is the block it is copied to).
    void PrefetchCopyTo(void* block) const {
      char* to = static_cast<char*>(block);
      PrefetchBytes(this, offsetof(Node, slots) + count * sizeof(Slot));
      PrefetchBytesForWrite(to, offsetof(Node, slots) + count * sizeof(Slot));
      keys.PrefetchCopyTo(to + offsetof(Node, keys));
    }
    Item*& item(std::size_t i) { return slots[i].item; }
    const Item* item(std::size_t i) const { return slots[i].item; }
    Node*& child(std::size_t i) { return slots[i].child; }
    const Node* child(std::size_t i) const { return slots[i].child; }
    // Opens slot i (moving [i, count) one up).
    void OpenSlot(std::size_t i) {
      if (count >= kSlots) std::abort();  // the tree splits before this: a broken invariant
      std::copy_backward(slots.begin() + static_cast<std::ptrdiff_t>(i),
                         slots.begin() + static_cast<std::ptrdiff_t>(count),
                         slots.begin() + static_cast<std::ptrdiff_t>(count + 1));
      ++count;
    }
    void CloseSlot(std::size_t i) {
      std::copy(slots.begin() + static_cast<std::ptrdiff_t>(i + 1), slots.begin() + static_cast<std::ptrdiff_t>(count),
                slots.begin() + static_cast<std::ptrdiff_t>(i));
      --count;
    }
  };

  // The epochs, the pinned views, the retired objects and the node and item
  // memory of one live map (and of its views, which keep it alive). See the
  // header comment.
  //
  // Why its own memory. A write while a view is held copies an item (and, on
  // a first write to a leaf, the leaf) and retires the old one; the thread
  // that drops the view frees them in bulk. Through malloc, those bulk frees
  // made glibc consolidate its fast bins and the store thread's next
  // allocations took the slow path: the write path's tail (issue 5). Nodes
  // and items now come from this domain's slabs and go back to its free
  // lists, and the retired list lives in chunks it recycles: a write while a
  // view is held calls malloc only for what its value itself allocates (and
  // when a slab or the spare chunks run out, which a steady load soon stops
  // doing).
  class Domain {
   public:
    Domain() = default;
    Domain(const Domain&) = delete;
    Domain& operator=(const Domain&) = delete;
    ~Domain() {
      // No view is left (each holds the domain) and the live map is gone.
      Freed discarded;
      for (RetiredChunk* chunk = retired_; chunk != nullptr; chunk = chunk->next) {
        for (std::size_t i = 0; i < chunk->count; ++i) Free(chunk->entries[i], discarded);
      }
      DeleteChunks(retired_);
      DeleteChunks(spare_chunks_);
      // The blocks' memory is the slabs': the pools free those.
    }

    // The epoch objects are made in now. Owner thread.
    std::uint64_t epoch() const { return epoch_.load(std::memory_order_relaxed); }
    // Whether `made_in` is after every pinned epoch: then no view can reach
    // the object and the owner may write it in place. Owner thread.
    bool Exclusive(std::uint64_t made_in) const { return made_in > newest_pin_.load(std::memory_order_acquire); }

    // Pins the current epoch for a new view and starts the next one. Owner thread.
    std::uint64_t Pin() {
      std::lock_guard<std::mutex> lock(mu_);
      const std::uint64_t pinned = epoch_.load(std::memory_order_relaxed);
      ++pins_[pinned];
      newest_pin_.store(pinned, std::memory_order_release);
      epoch_.store(pinned + 1, std::memory_order_relaxed);
      return pinned;
    }
    // A view pinned at `pinned` is gone: frees what no remaining view can
    // reach. Any thread.
    //
    // One scan at a time: a scan decides against the pins it copied, so a
    // view dropped during it (on another thread) would otherwise leave what
    // only that view could reach in the list, maybe with no later scan to
    // free it. An Unpin that finds a scan running asks it to go again.
    void Unpin(std::uint64_t pinned) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = pins_.find(pinned);
        if (it != pins_.end() && --it->second == 0) pins_.erase(it);
        newest_pin_.store(pins_.empty() ? 0 : pins_.rbegin()->first, std::memory_order_release);
        if (scanning_) {
          rescan_ = true;
          return;
        }
        scanning_ = true;
      }
      for (;;) {
        RetiredChunk* candidates;
        std::vector<std::uint64_t> pins;  // ascending
        // Spares this scan may add. Only a scan adds spares, one scan runs at
        // a time, and the owner only takes them: the room can only grow.
        std::size_t spare_room;
        {
          std::lock_guard<std::mutex> lock(mu_);
          rescan_ = false;
          candidates = std::exchange(retired_, nullptr);
          for (const auto& entry : pins_) pins.push_back(entry.first);
          spare_room = kMaxSpareChunks - spare_chunk_count_;
        }
        // Outside the lock, so the owner's writes do not wait for this scan.
        // Pins made meanwhile are at or after every candidate's unlink epoch,
        // so they cannot reach one; pins dropped meanwhile set rescan_.
        // What is kept is packed into the first chunks, in place (the write
        // position never passes the read position); the chunks left over
        // become spares.
        Freed freed;
        RetiredChunk* write_chunk = candidates;
        std::size_t write_index = 0;
        for (RetiredChunk* chunk = candidates; chunk != nullptr; chunk = chunk->next) {
          for (std::size_t i = 0; i < chunk->count; ++i) {
            const Retired& retired = chunk->entries[i];
            if (!Reachable(retired, pins)) {
              Free(retired, freed);
              continue;
            }
            if (write_index == kRetiredPerChunk) {
              write_chunk->count = kRetiredPerChunk;
              write_chunk = write_chunk->next;
              write_index = 0;
            }
            write_chunk->entries[write_index++] = retired;
          }
        }
        RetiredChunk* kept = nullptr;  // the packed chunks
        RetiredChunk* kept_tail = nullptr;
        RetiredChunk* emptied = candidates;  // the rest
        if (write_index > 0) {
          write_chunk->count = write_index;
          kept = candidates;
          kept_tail = write_chunk;
          emptied = std::exchange(write_chunk->next, nullptr);
        }
        // The emptied chunks become spares, up to the room; the rest are deleted.
        std::size_t emptied_count = 0;
        RetiredChunk* emptied_tail = nullptr;
        RetiredChunk* surplus = nullptr;
        for (RetiredChunk* chunk = emptied; chunk != nullptr && emptied_count < spare_room; chunk = chunk->next) {
          chunk->count = 0;
          emptied_tail = chunk;
          ++emptied_count;
        }
        if (emptied_tail != nullptr) {
          surplus = std::exchange(emptied_tail->next, nullptr);
        } else {
          surplus = std::exchange(emptied, nullptr);
        }
        bool done;
        {
          std::lock_guard<std::mutex> lock(mu_);
          // Order does not matter; the owner fills whichever chunk is first.
          if (kept != nullptr) {
            kept_tail->next = retired_;
            retired_ = kept;
          }
          if (emptied != nullptr) {
            emptied_tail->next = spare_chunks_;
            spare_chunks_ = emptied;
            spare_chunk_count_ += emptied_count;
          }
          SpliceShared(freed.nodes, nodes_);
          SpliceShared(freed.items, items_);
          done = !rescan_;
          if (done) scanning_ = false;
        }
        DeleteChunks(surplus);
        if (done) return;
      }
    }

    // Test support: objects waiting for views to go; memory held.
    std::size_t RetiredCount() {
      std::lock_guard<std::mutex> lock(mu_);
      std::size_t count = 0;
      for (const RetiredChunk* chunk = retired_; chunk != nullptr; chunk = chunk->next) count += chunk->count;
      return count;
    }
    struct MemoryForTest {
      std::size_t node_slabs = 0;
      std::size_t item_slabs = 0;
      std::size_t retired_chunks = 0;  // in use
      std::size_t spare_chunks = 0;
    };
    // Owner thread.
    MemoryForTest Memory() {
      std::lock_guard<std::mutex> lock(mu_);
      MemoryForTest memory{nodes_.slabs.size(), items_.slabs.size(), 0, spare_chunk_count_};
      for (const RetiredChunk* chunk = retired_; chunk != nullptr; chunk = chunk->next) ++memory.retired_chunks;
      return memory;
    }
    static constexpr std::size_t kMaxSpareChunksForTest() { return kMaxSpareChunks; }

    // Unlinked from the live tree by the owner: a node alone (not its
    // children), an item, or a whole tree (the live map went away).
    void RetireNode(Node* node) { Retire(Retired{node, Kind::kNode, node->epoch, 0}); }
    void RetireItem(Item* item) { Retire(Retired{item, Kind::kItem, item->epoch, 0}); }
    // A tree holds objects of every age: any view may reach some of it.
    void RetireTree(Node* root) { Retire(Retired{root, Kind::kTree, 0, 0}); }

    // Node and item memory, owner thread. Nodes are one size (about 2.8 KiB,
    // over glibc's per-thread cache limit, so malloc would take its slow path
    // and consolidate its fast bins on every copy), and so are items (which
    // other threads free in bulk: see above); both come from this domain's
    // slabs and go back to its free lists.
    template <typename... Args>
    Node* NewNode(Args&&... args) {
      return Construct<Node>(nodes_, std::forward<Args>(args)...);
    }
    template <typename... Args>
    Item* NewItem(Args&&... args) {
      return Construct<Item>(items_, std::forward<Args>(args)...);
    }
    // Room for one node, to be constructed with placement new; a failed
    // construction gives it back with ReturnNodeBlock.
    void* AllocateNode() { return Allocate(nodes_); }
    // The block the next AllocateNode will most likely return (null if it
    // will have to look further), for prefetching.
    void* PeekNodeBlock() const {
      if (nodes_.free != nullptr) return nodes_.free;
      return nodes_.slab_left > 0 ? nodes_.slab_next : nullptr;
    }
    void ReturnNodeBlock(void* block) { Push(nodes_, block); }
    // Every node and item under `node` (a builder's leaves).
    void DeleteTree(Node* node) {
      Freed freed;
      FreeTree(node, freed);
      freed.nodes.SpliceInto(nodes_.free);
      freed.items.SpliceInto(items_.free);
    }
    // `node` alone, or an item, unlinked and unreachable from any view.
    void DeleteNode(Node* node) {
      node->~Node();
      Push(nodes_, node);
    }
    void DeleteItem(Item* item) {
      item->~Item();
      Push(items_, item);
    }

   private:
    // A free block, linked into a free list.
    struct FreeBlock {
      FreeBlock* next;
    };
    static_assert(sizeof(Node) >= sizeof(FreeBlock) && sizeof(Item) >= sizeof(FreeBlock));
    // Blocks are carved from ::operator new's memory at multiples of their size.
    static_assert(alignof(Node) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__ &&
                  alignof(Item) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
    // Blocks of one size from slabs. `free` is the owner's; `shared_free`
    // holds what other threads freed (under mu_), taken when `free` runs out.
    struct Pool {
      Pool(std::size_t block, std::size_t per_slab) : block_bytes(block), blocks_per_slab(per_slab) {}
      Pool(const Pool&) = delete;
      Pool& operator=(const Pool&) = delete;
      ~Pool() {
        for (void* slab : slabs) {
          GV_UNPOISON_MEMORY_REGION(slab, block_bytes * blocks_per_slab);
          ::operator delete(slab);
        }
      }
      const std::size_t block_bytes;
      const std::size_t blocks_per_slab;
      FreeBlock* free = nullptr;
      FreeBlock* shared_free = nullptr;  // under mu_
      // shared_free is not empty. Written under mu_; read without it as a
      // hint (a stale false only means a slab block is carved instead).
      std::atomic<bool> shared_available{false};
      std::vector<void*> slabs;
      char* slab_next = nullptr;
      std::size_t slab_left = 0;
    };
    // Destroyed objects' blocks, linked in a chain to be spliced into a list.
    struct BlockChain {
      FreeBlock* head = nullptr;
      FreeBlock* tail = nullptr;
      // `object` (of `bytes`) is destroyed.
      void Add(void* object, std::size_t bytes) {
        auto* block = new (object) FreeBlock{head};
        PoisonPastLink(block, bytes);
        head = block;
        if (tail == nullptr) tail = block;
      }
      // Puts the chain's blocks at the front of `list` (and empties it).
      void SpliceInto(FreeBlock*& list) {
        if (head == nullptr) return;
        tail->next = list;
        list = head;
        head = tail = nullptr;
      }
    };
    struct Freed {
      BlockChain nodes;
      BlockChain items;
    };

    void* Allocate(Pool& pool) {
      // What other threads freed; the flag spares the lock when there is
      // none (a map that grows allocates on every insert).
      if (pool.free == nullptr && pool.shared_available.load(std::memory_order_relaxed)) {
        std::lock_guard<std::mutex> lock(mu_);
        pool.free = std::exchange(pool.shared_free, nullptr);
        pool.shared_available.store(false, std::memory_order_relaxed);
      }
      void* block;
      if (pool.free != nullptr) {
        block = pool.free;
        pool.free = pool.free->next;
        GV_UNPOISON_MEMORY_REGION(block, pool.block_bytes);
        // The next allocation reads this block's link first: fetch it now,
        // not as a dependent miss then.
        if (pool.free != nullptr) PrefetchLine(pool.free);
      } else {
        if (pool.slab_left == 0) {
          // Room first, so that push_back cannot throw with the slab unowned.
          if (pool.slabs.size() == pool.slabs.capacity()) pool.slabs.reserve(2 * pool.slabs.size() + 8);
          const std::size_t slab_bytes = pool.block_bytes * pool.blocks_per_slab;
          pool.slabs.push_back(::operator new(slab_bytes));
          pool.slab_next = static_cast<char*>(pool.slabs.back());
          pool.slab_left = pool.blocks_per_slab;
          // Fault the slab's fresh pages in now, in one go, rather than one
          // in most of the copies it will serve (a first snapshot under load
          // grows the pools: those faults were its writes' tail).
          for (std::size_t offset = 0; offset < slab_bytes; offset += kPageBytes) pool.slab_next[offset] = 0;
        }
        block = pool.slab_next;
        pool.slab_next += pool.block_bytes;
        --pool.slab_left;
      }
      return block;
    }
    static void Push(Pool& pool, void* block) {
      pool.free = new (block) FreeBlock{pool.free};
      PoisonPastLink(pool.free, pool.block_bytes);
    }
    // Under AddressSanitizer a free block is poisoned past its link, so that
    // a read of a freed node or item (a view that outlived what it reached)
    // fails the tests as a read of freed malloc memory would: the pools would
    // otherwise hide it from ASan. No code elsewhere.
    static void PoisonPastLink(FreeBlock* block, std::size_t bytes) {
      GV_POISON_MEMORY_REGION(reinterpret_cast<char*>(block) + sizeof(FreeBlock), bytes - sizeof(FreeBlock));
    }
    // Under mu_: blocks freed on any thread, for the owner to take.
    static void SpliceShared(BlockChain& chain, Pool& pool) {
      if (chain.head == nullptr) return;
      chain.SpliceInto(pool.shared_free);
      pool.shared_available.store(true, std::memory_order_relaxed);
    }
    template <typename T, typename... Args>
    T* Construct(Pool& pool, Args&&... args) {
      void* block = Allocate(pool);
      try {
        return new (block) T(std::forward<Args>(args)...);
      } catch (...) {
        Push(pool, block);
        throw;
      }
    }

    enum class Kind : std::uint8_t { kNode, kItem, kTree };
    struct Retired {
      void* object;
      Kind kind;
      std::uint64_t made;      // the epoch it was made in (0: a whole tree)
      std::uint64_t unlinked;  // the domain's epoch when it was unlinked
    };
    // The retired list: chunks of entries, in no order. About 4 KiB each.
    static constexpr std::size_t kRetiredPerChunk = 127;
    static constexpr std::size_t kPageBytes = 4096;
    struct RetiredChunk {
      RetiredChunk* next = nullptr;
      std::size_t count = 0;
      Retired entries[kRetiredPerChunk];
    };
    // Emptied chunks kept for reuse: 8 MiB, room for 260,000 retired
    // objects; past that they are deleted.
    static constexpr std::size_t kMaxSpareChunks = 2048;
    static void DeleteChunks(RetiredChunk* chunk) {
      while (chunk != nullptr) delete std::exchange(chunk, chunk->next);
    }
    // Whether a view pinned at one of `pins` (ascending) can reach it: one
    // pinned after it was made and before it was unlinked.
    static bool Reachable(const Retired& retired, const std::vector<std::uint64_t>& pins) {
      auto it = std::lower_bound(pins.begin(), pins.end(), retired.made);
      return it != pins.end() && *it < retired.unlinked;
    }
    // Destroys every node and item reachable from `node`; their blocks go to `freed`.
    static void FreeTree(Node* node, Freed& freed) {
      if (node->leaf) {
        for (std::size_t i = 0; i < node->count; ++i) {
          Item* item = node->item(i);
          item->~Item();
          freed.items.Add(item, sizeof(Item));
        }
      } else {
        for (std::size_t i = 0; i < node->count; ++i) FreeTree(node->child(i), freed);
      }
      node->~Node();
      freed.nodes.Add(node, sizeof(Node));
    }
    static void Free(const Retired& retired, Freed& freed) {
      switch (retired.kind) {
        case Kind::kNode: {
          auto* node = static_cast<Node*>(retired.object);
          node->~Node();
          freed.nodes.Add(node, sizeof(Node));
          break;
        }
        case Kind::kItem: {
          auto* item = static_cast<Item*>(retired.object);
          item->~Item();
          freed.items.Add(item, sizeof(Item));
          break;
        }
        case Kind::kTree: FreeTree(static_cast<Node*>(retired.object), freed); break;
      }
    }
    // Owner thread.
    void Retire(Retired retired) {
      retired.unlinked = epoch();
      {
        std::lock_guard<std::mutex> lock(mu_);
        // A view released since the owner looked: nothing can reach it.
        if (!pins_.empty()) {
          if (retired_ == nullptr || retired_->count == kRetiredPerChunk) {
            RetiredChunk* chunk = spare_chunks_;
            if (chunk != nullptr) {
              spare_chunks_ = chunk->next;
              --spare_chunk_count_;
            } else {
              chunk = new RetiredChunk;  // the list outgrew its spares (rare)
            }
            chunk->next = retired_;
            retired_ = chunk;
          }
          retired_->entries[retired_->count++] = retired;
          return;
        }
      }
      Freed freed;
      Free(retired, freed);
      freed.nodes.SpliceInto(nodes_.free);
      freed.items.SpliceInto(items_.free);
    }
    std::atomic<std::uint64_t> epoch_{1};
    std::atomic<std::uint64_t> newest_pin_{0};  // 0: no view
    std::mutex mu_;
    std::map<std::uint64_t, std::size_t> pins_;  // pinned epoch -> views sharing it; under mu_
    // Under mu_: the retired objects (the owner adds to the first chunk),
    // and emptied chunks for reuse.
    RetiredChunk* retired_ = nullptr;
    RetiredChunk* spare_chunks_ = nullptr;
    std::size_t spare_chunk_count_ = 0;
    bool scanning_ = false;  // an Unpin is scanning retired_; under mu_
    bool rescan_ = false;    // a view went during that scan; under mu_
    // Node and item memory: the pools' `free` lists are the owner's, their
    // `shared_free` lists under mu_.
    Pool nodes_{sizeof(Node), 128};
    Pool items_{sizeof(Item), 512};
  };

  // A view's pin: shared by the view and its copies; the last one unpins.
  class PinHandle {
   public:
    explicit PinHandle(std::shared_ptr<Domain> domain) : domain_(std::move(domain)), epoch_(domain_->Pin()) {}
    ~PinHandle() { domain_->Unpin(epoch_); }
    PinHandle(const PinHandle&) = delete;
    PinHandle& operator=(const PinHandle&) = delete;

   private:
    std::shared_ptr<Domain> domain_;
    std::uint64_t epoch_;
  };

 public:
  PersistentMap() = default;
  // O(1). A copy of a live map is a view pinning its current state; a copy
  // of a view shares its pin. Copying a live map is its owner thread's.
  PersistentMap(const PersistentMap& other) : root_(other.root_), size_(other.size_) {
    if (other.pin_) {
      pin_ = other.pin_;
    } else if (other.root_ != nullptr) {
      pin_ = std::make_shared<PinHandle>(other.domain_);
    }
  }
  PersistentMap& operator=(const PersistentMap& other) {
    if (this != &other) *this = PersistentMap(other);
    return *this;
  }
  PersistentMap(PersistentMap&& other) noexcept
      : root_(std::exchange(other.root_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        domain_(std::move(other.domain_)),
        pin_(std::move(other.pin_)) {}
  PersistentMap& operator=(PersistentMap&& other) noexcept {
    if (this != &other) {
      Release();
      root_ = std::exchange(other.root_, nullptr);
      size_ = std::exchange(other.size_, 0);
      domain_ = std::move(other.domain_);
      pin_ = std::move(other.pin_);
    }
    return *this;
  }
  ~PersistentMap() { Release(); }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // A view (a copy): read-only, a write first copies every item (O(n)).
  bool is_view() const { return pin_ != nullptr; }

  // A live map of its own holding copies of every item (O(n)).
  PersistentMap Clone() const {
    Builder builder;
    for (auto cursor = Begin(); cursor.valid(); cursor.Next()) (void)builder.Append(cursor.key(), cursor.value());
    return std::move(builder).Finish();
  }

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
    const Node* leaf = nullptr;
    return FindInLeaf(key, path, leaf);
  }

  // Find, for the owner of a live map who is about to write `key` (the
  // store reads a key's entry to build a local write, then applies the
  // write): when a view shares the key's leaf, that write will copy the
  // leaf, so the leaf's lines, and those of the block it will be copied
  // into, are fetched now. The work in between then hides their misses,
  // which a copy would otherwise wait for (issue 5). A hint only: the block
  // is the owner's next free one, which a copy of an ancestor may take
  // first, and a delta of several keys prefetches each leaf into the same
  // block. Owner thread.
  const V* FindAheadOfWrite(std::string_view key) {
    const Node* leaf = nullptr;
    const V* value = FindInLeaf(key, nullptr, leaf);
    if (leaf != nullptr && domain_ && !is_view() && !domain_->Exclusive(leaf->epoch)) {
      if (void* block = domain_->PeekNodeBlock(); block != nullptr) leaf->PrefetchCopyTo(block);
    }
    return value;
  }

  // The value at a found `path` (from Find(key, &path) on this map, with no
  // write in between) made exclusively owned by path copying. Valid until the
  // next call on this map.
  V* MutableAt(const Path& path, std::string_view key) {
    return MutableAt(path, key, CopyOf);
  }
  // The same, where the value is shared with a view, making the live tree's
  // own copy with `copy(const V&) -> V`: a caller about to overwrite part of
  // the value can leave that part out instead of copying it for nothing (the
  // store leaves out a value it replaces). A value that is already the live
  // tree's own is returned as it is.
  template <typename CopyFn>
  V* MutableAt(const Path& path, std::string_view key, CopyFn&& copy) {
    if (!path.found) return nullptr;
    std::string key_copy;
    if (is_view()) {  // key may point into what MakeLive lets go
      key_copy = key;
      key = key_copy;
    }
    const bool was_view = MakeLive();  // a view's path does not fit its copy
    const bool by_key = was_view || !path.complete;
    Node* node = &Own(root_);
    std::size_t position = path.position;
    for (std::size_t level = 0; !node->leaf; ++level) {
      const std::size_t index = by_key ? ChildIndex(*node, key) : path.child[level];
      node = &Own(node->child(index));
    }
    if (by_key) position = LeafPosition(*node, key);
    return &OwnItem(node->item(position), copy).value;
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
  void InsertAt(const Path& path, std::string_view key, V value) {
    std::string key_copy;
    if (is_view()) {  // as in MutableAt
      key_copy = key;
      key = key_copy;
    }
    const bool was_view = MakeLive();
    const bool by_key = was_view || !path.complete;
    if (!domain_) domain_ = std::make_shared<Domain>();
    if (root_ == nullptr) root_ = domain_->NewNode(domain_->epoch(), /*is_leaf=*/true);
    Split split;
    InsertInto(Own(root_), key, std::move(value), split, by_key ? nullptr : &path, 0);
    if (split.right != nullptr) {
      Node* new_root = domain_->NewNode(domain_->epoch(), /*is_leaf=*/false);
      new_root->count = 2;
      new_root->child(0) = root_;
      new_root->child(1) = split.right;
      new_root->keys.PushBack(split.separator);
      root_ = new_root;
    }
    ++size_;
  }

  // Inserts key -> value if key is absent; false (and no change) if present.
  bool Insert(std::string_view key, V value) {
    Path path;
    if (Find(key, &path) != nullptr) return false;
    InsertAt(path, key, std::move(value));
    return true;
  }

  // Removes key; false if absent (then nothing is copied).
  bool Erase(std::string_view key) {
    if (Find(key) == nullptr) return false;
    std::string key_copy;
    if (is_view()) {  // as in MutableAt
      key_copy = key;
      key = key_copy;
    }
    MakeLive();
    EraseFrom(Own(root_), key);
    --size_;
    // A root with one child adds a level for nothing.
    while (!root_->leaf && root_->count == 1) {
      Node* child = root_->child(0);
      Discard(root_);
      root_ = child;
    }
    return true;
  }

  // Calls fn(std::string_view key, V&) on every item in key order, each made exclusively owned
  // (a held view keeps its own copies).
  template <typename Fn>
  void ForEachMutable(Fn&& fn) {
    MakeLive();
    if (root_ == nullptr) return;  // a view of a map emptied by erases clones to no tree
    ForEachMutableIn(Own(root_), fn);
  }

  // A position in key order. Raw pointers: see the header comment.
  class Cursor {
   public:
    bool valid() const { return !path_.empty(); }
    // In the leaf: valid as long as the cursor is.
    std::string_view key() const { return Top().node->keys[Top().index]; }
    const V& value() const { return Top().node->item(Top().index)->value; }
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
          if (index < node->count) return;
        } else if (index < node->count) {
          path_.push_back(Step{node->child(index), 0});
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
    if (root_ != nullptr) {
      cursor.path_.push_back(typename Cursor::Step{root_, 0});
      cursor.Settle();
    }
    return cursor;
  }
  // The first item whose key is >= key.
  Cursor LowerBound(std::string_view key) const {
    Cursor cursor;
    const Node* node = root_;
    if (node == nullptr) return cursor;
    while (!node->leaf) {
      const std::size_t index = ChildIndex(*node, key);
      cursor.path_.push_back(typename Cursor::Step{node, index});
      node = node->child(index);
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
    if (root_ == nullptr) return out;
    std::vector<typename Cursor::Step> path;
    CollectSegments(*root_, path, out);
    return out;
  }

  // Builds a map in O(n) from items appended in strictly increasing key order
  // (snapshot restore). Append refuses an out-of-order or duplicate key.
  // Leaves are filled to kBuildFill as items come; Finish builds the levels
  // above them.
  class Builder {
   public:
    Builder() : domain_(std::make_shared<Domain>()) {}
    Builder(const Builder&) = delete;
    Builder& operator=(const Builder&) = delete;
    Builder(Builder&&) noexcept = default;
    Builder& operator=(Builder&&) = delete;
    ~Builder() {
      for (Node* leaf : leaves_) domain_->DeleteTree(leaf);
    }

    bool Append(std::string_view key, V value) {
      Node* leaf = leaves_.empty() ? nullptr : leaves_.back();
      if (leaf != nullptr && !(leaf->keys[leaf->count - 1] < key)) return false;
      if (leaf == nullptr || leaf->count == kBuildFill) {
        leaf = domain_->NewNode(domain_->epoch(), /*is_leaf=*/true);
        leaves_.push_back(leaf);
      }
      leaf->keys.PushBack(key);
      leaf->item(leaf->count++) = domain_->NewItem(domain_->epoch(), std::move(value));
      ++size_;
      return true;
    }
    std::size_t size() const { return size_; }
    // The last key appended, if any (valid until the next call).
    std::optional<std::string_view> last_key() const {
      if (leaves_.empty()) return std::nullopt;
      return leaves_.back()->keys[leaves_.back()->count - 1];
    }

    PersistentMap Finish() && {
      PersistentMap map;
      map.size_ = std::exchange(size_, 0);
      if (leaves_.empty()) return map;
      map.domain_ = domain_;
      const std::uint64_t epoch = domain_->epoch();
      // The last leaf may be short: share items with the one before it.
      if (leaves_.size() >= 2 && leaves_.back()->count < kMinFill) {
        Node& left = *leaves_[leaves_.size() - 2];
        Node& right = *leaves_.back();
        const std::size_t move = (left.count - right.count) / 2;
        const std::size_t keep = left.count - move;
        Separators moved_keys;
        moved_keys.AppendFrom(left.keys, keep);
        moved_keys.AppendFrom(right.keys, 0);
        std::copy_backward(right.slots.begin(), right.slots.begin() + right.count,
                           right.slots.begin() + static_cast<std::ptrdiff_t>(right.count + move));
        std::copy_n(left.slots.begin() + static_cast<std::ptrdiff_t>(keep), move, right.slots.begin());
        right.count += static_cast<std::uint32_t>(move);
        left.count = static_cast<std::uint32_t>(keep);
        left.keys.Truncate(keep);
        right.keys.Truncate(0);
        right.keys.AppendFrom(moved_keys, 0);
      }
      // Each node with its subtree's smallest key (in a leaf's key bytes,
      // which stay put); internal levels until one node is left, the nodes
      // of a level filled evenly.
      std::vector<std::pair<Node*, std::string_view>> level;
      level.reserve(leaves_.size());
      for (Node* leaf : leaves_) level.emplace_back(leaf, leaf->keys[0]);
      leaves_.clear();  // the tree owns them now
      while (level.size() > 1) {
        std::vector<std::pair<Node*, std::string_view>> parents;
        const std::size_t count = (level.size() + kBuildFill - 1) / kBuildFill;
        for (std::size_t i = 0, begin = 0; i < count; ++i) {
          const std::size_t end = level.size() * (i + 1) / count;
          Node* parent = domain_->NewNode(epoch, /*is_leaf=*/false);
          for (std::size_t c = begin; c < end; ++c) {
            if (c > begin) parent->keys.PushBack(level[c].second);
            parent->child(parent->count++) = level[c].first;
          }
          parents.emplace_back(parent, level[begin].second);
          begin = end;
        }
        level = std::move(parents);
      }
      map.root_ = level.front().first;
      return map;
    }

   private:
    std::shared_ptr<Domain> domain_;
    std::vector<Node*> leaves_;  // owned until Finish
    std::size_t size_ = 0;
  };

  // Test support: how many unlinked nodes and items (or whole trees) wait
  // for the views that can reach them to go. 0 for a view.
  std::size_t RetiredCountForTest() const { return domain_ ? domain_->RetiredCount() : 0; }
  // Test support: the live map's slabs and retired-list chunks ({} for a view).
  using MemoryForTest = typename Domain::MemoryForTest;
  MemoryForTest MemoryUseForTest() const { return domain_ ? domain_->Memory() : MemoryForTest{}; }
  static constexpr std::size_t MaxSpareRetiredChunksForTest() { return Domain::kMaxSpareChunksForTest(); }

  // Test support: checks the structural invariants (sorted unique keys,
  // separators bound their subtrees, node sizes, size()). Returns "" or what broke.
  std::string CheckInvariants() const {
    if (root_ == nullptr) return size_ == 0 ? "" : "null root with non-zero size";
    std::size_t count = 0;
    std::string_view previous;
    bool any = false;
    std::string error = CheckNode(*root_, nullptr, nullptr, previous, any, count);
    if (!error.empty()) return error;
    if (count != size_) return "size() is " + std::to_string(size_) + " but the tree holds " + std::to_string(count);
    return "";
  }

 private:
  struct Split {
    Node* right = nullptr;  // new right sibling, or null
    std::string separator;  // smallest key of right's subtree
  };

  static std::size_t ChildIndex(const Node& node, std::string_view key) {
    return node.keys.Rank(key, /*upper=*/true);  // separators <= key
  }
  static std::size_t LeafPosition(const Node& node, std::string_view key) {
    return node.keys.Rank(key, /*upper=*/false);  // keys < key
  }

  // Gives up what this map holds: a view its pin; a live map its tree, which
  // its domain frees now or once the views that can reach it are gone.
  void Release() {
    if (pin_) {
      pin_.reset();
    } else if (root_ != nullptr) {
      domain_->RetireTree(root_);
    }
    root_ = nullptr;
    size_ = 0;
    domain_.reset();
  }

  // Makes a view (about to be written) a live map of its own. Returns whether
  // it was a view, so paths found in it no longer apply.
  bool MakeLive() {
    if (!pin_) return false;
    *this = Clone();
    return true;
  }

  // Find's descent; `leaf` is set to the leaf it ends in (null for an empty map).
  const V* FindInLeaf(std::string_view key, Path* path, const Node*& leaf) const {
    const Node* node = root_;
    if (node == nullptr) return nullptr;
    std::size_t depth = 0;
    while (!node->leaf) {
      const std::size_t index = ChildIndex(*node, key);
      if (path != nullptr && depth < Path::kMaxDepth) path->child[depth] = static_cast<std::uint32_t>(index);
      ++depth;
      node = node->child(index);
    }
    leaf = node;
    const std::size_t pos = LeafPosition(*node, key);
    const bool found = pos < node->keys.size() && node->keys[pos] == key;
    if (path != nullptr) {
      path->depth = depth;
      path->position = pos;
      path->found = found;
      path->complete = depth <= Path::kMaxDepth;
    }
    return found ? &node->item(pos)->value : nullptr;
  }

  // Copy-on-write step for the live tree's node at `slot` (see the header
  // comment): in place when no view can reach it, else a copy replaces it
  // and the old one is retired.
  Node& Own(Node*& slot) {
    Node* node = slot;
    if (domain_->Exclusive(node->epoch)) return *node;
    void* block = domain_->AllocateNode();
    node->PrefetchCopyTo(block);
    try {
      slot = new (block) Node(domain_->epoch(), *node);
    } catch (...) {
      domain_->ReturnNodeBlock(block);
      throw;
    }
    domain_->RetireNode(node);
    return *slot;
  }
  // The copy function of MutableAt and ForEachMutable: the whole value.
  static V CopyOf(const V& shared) { return shared; }
  // `copy(const V&) -> V` makes the live tree's own value from the shared one.
  template <typename CopyFn>
  Item& OwnItem(Item*& slot, CopyFn&& copy) {
    Item* item = slot;
    if (domain_->Exclusive(item->epoch)) return *item;
    slot = domain_->NewItem(domain_->epoch(), copy(std::as_const(item->value)));
    domain_->RetireItem(item);
    return *slot;
  }
  // Unlinked from the live tree: freed now when no view can reach it.
  void Discard(Node* node) {
    if (domain_->Exclusive(node->epoch)) {
      domain_->DeleteNode(node);
    } else {
      domain_->RetireNode(node);
    }
  }
  void Discard(Item* item) {
    if (domain_->Exclusive(item->epoch)) {
      domain_->DeleteItem(item);
    } else {
      domain_->RetireItem(item);
    }
  }

  // `node` is exclusively owned; key is absent. `path` (may be null) is the
  // route Find recorded; `level` is node's depth.
  void InsertInto(Node& node, std::string_view key, V value, Split& split, const Path* path, std::size_t level) {
    const std::uint64_t epoch = domain_->epoch();
    if (node.leaf) {
      const std::size_t pos = path != nullptr ? path->position : LeafPosition(node, key);
      // The item first: if making it throws, the leaf is as it was.
      Item* item = domain_->NewItem(epoch, std::move(value));
      try {
        node.keys.Insert(pos, key);
      } catch (...) {
        domain_->DeleteItem(item);
        throw;
      }
      node.OpenSlot(pos);
      node.item(pos) = item;
      if (node.count > kMaxLeafItems) {
        const std::size_t half = node.count / 2;
        Node* right = domain_->NewNode(epoch, /*is_leaf=*/true);
        right->count = static_cast<std::uint32_t>(node.count - half);
        std::copy_n(node.slots.begin() + static_cast<std::ptrdiff_t>(half), right->count, right->slots.begin());
        node.count = static_cast<std::uint32_t>(half);
        right->keys.AppendFrom(node.keys, half);
        node.keys.Truncate(half);
        split.separator = std::string(right->keys[0]);
        split.right = right;
      }
      return;
    }
    const std::size_t index = path != nullptr ? path->child[level] : ChildIndex(node, key);
    Split child_split;
    InsertInto(Own(node.child(index)), key, std::move(value), child_split, path, level + 1);
    if (child_split.right == nullptr) return;
    node.OpenSlot(index + 1);
    node.child(index + 1) = child_split.right;
    node.keys.Insert(index, child_split.separator);
    if (node.count > kMaxChildren) {
      // Children [0, mid) stay, [mid, n) move right; separators[mid - 1]
      // (the smallest key of children[mid]) moves up.
      const std::size_t mid = node.count / 2;
      Node* right = domain_->NewNode(epoch, /*is_leaf=*/false);
      right->count = static_cast<std::uint32_t>(node.count - mid);
      std::copy_n(node.slots.begin() + static_cast<std::ptrdiff_t>(mid), right->count, right->slots.begin());
      right->keys.AppendFrom(node.keys, mid);
      split.separator = std::string(node.keys[mid - 1]);
      node.count = static_cast<std::uint32_t>(mid);
      node.keys.Truncate(mid - 1);
      split.right = right;
    }
  }

  // `node` is exclusively owned; key is present in its subtree.
  void EraseFrom(Node& node, std::string_view key) {
    if (node.leaf) {
      const std::size_t pos = LeafPosition(node, key);
      Item* item = node.item(pos);
      node.CloseSlot(pos);
      node.keys.Erase(pos);
      Discard(item);
      return;
    }
    const std::size_t index = ChildIndex(node, key);
    Node& child = Own(node.child(index));
    EraseFrom(child, key);
    if (child.count < kMinFill) MergeWithNeighbour(node, index);
  }

  // Merges children[index] with a neighbour when both fit in one node. A
  // separator between them keeps bounding the merged keys from both sides.
  // The right one's children or items move to the left one; the right node
  // itself is discarded (a view may still reach it, and through it them).
  void MergeWithNeighbour(Node& parent, std::size_t index) {
    if (parent.count < 2) return;
    const std::size_t left = index > 0 ? index - 1 : index;
    const std::size_t right = left + 1;
    if (parent.child(left)->count + parent.child(right)->count > kMaxChildren) return;
    Node& into = Own(parent.child(left));
    Node* from = parent.child(right);
    if (!into.leaf) into.keys.PushBack(parent.keys[left]);
    into.keys.AppendFrom(from->keys, 0);
    std::copy_n(from->slots.begin(), from->count, into.slots.begin() + into.count);
    into.count += from->count;
    parent.CloseSlot(right);
    parent.keys.Erase(left);
    Discard(from);
  }

  template <typename Fn>
  void ForEachMutableIn(Node& node, Fn& fn) {
    if (node.leaf) {
      for (std::size_t i = 0; i < node.count; ++i) {
        Item& item = OwnItem(node.item(i), CopyOf);
        fn(node.keys[i], item.value);
      }
      return;
    }
    for (std::size_t i = 0; i < node.count; ++i) ForEachMutableIn(Own(node.child(i)), fn);
  }

  static void CollectSegments(const Node& node, std::vector<typename Cursor::Step>& path,
                              std::vector<SegmentStart>& out) {
    if (node.leaf || node.child(0)->leaf) {
      SegmentStart start;
      start.items = 0;
      if (node.leaf) {
        start.items = node.count;
      } else {
        // One load per leaf: issue them all before summing.
        for (std::size_t i = 0; i < node.count; ++i) PrefetchLine(&node.child(i)->count);
        for (std::size_t i = 0; i < node.count; ++i) start.items += node.child(i)->count;
      }
      start.begin.path_ = path;
      start.begin.path_.push_back(typename Cursor::Step{&node, 0});
      start.begin.Settle();
      // An empty segment would settle into the next one; it has no items to encode.
      if (start.items == 0) start.begin.path_.clear();
      out.push_back(std::move(start));
      return;
    }
    for (std::size_t i = 0; i < node.count; ++i) {
      path.push_back(typename Cursor::Step{&node, i});
      CollectSegments(*node.child(i), path, out);
      path.pop_back();
    }
  }

  static std::string CheckNode(const Node& node, const std::string_view* lower, const std::string_view* upper,
                               std::string_view& previous, bool& any, std::size_t& count) {
    if (std::string error = node.keys.Check(); !error.empty()) return error;
    if (node.leaf) {
      if (node.count > kMaxLeafItems) return "leaf over capacity";
      if (node.keys.size() != node.count) return "leaf key count mismatch";
      for (std::size_t i = 0; i < node.count; ++i) {
        const std::string_view key = node.keys[i];
        if (node.item(i) == nullptr) return "leaf without its item at " + std::string(key);
        if (any && !(previous < key)) return "keys not strictly increasing at " + std::string(key);
        if (lower != nullptr && key < *lower) return "key " + std::string(key) + " below its separator";
        if (upper != nullptr && !(key < *upper)) return "key " + std::string(key) + " not below the next separator";
        previous = key;
        any = true;
        ++count;
      }
      return "";
    }
    if (node.count == 0 || node.count > kMaxChildren) return "internal node size out of range";
    if (node.keys.size() + 1 != node.count) return "separator count mismatch";
    for (std::size_t i = 0; i < node.count; ++i) {
      const std::string_view lo_key = i == 0 ? std::string_view() : node.keys[i - 1];
      const std::string_view hi_key = i + 1 == node.count ? std::string_view() : node.keys[i];
      const std::string_view* lo = i == 0 ? lower : &lo_key;
      const std::string_view* hi = i + 1 == node.count ? upper : &hi_key;
      std::string error = CheckNode(*node.child(i), lo, hi, previous, any, count);
      if (!error.empty()) return error;
    }
    return "";
  }

  Node* root_ = nullptr;  // owned by the live map (see Release), or read through a view's pin
  std::size_t size_ = 0;
  std::shared_ptr<Domain> domain_;  // a live map's; null for a view and for a map never written
  std::shared_ptr<PinHandle> pin_;  // a view's; null for a live map
};

}  // namespace gv::statestore

// Expanded where the templates above are defined: not for includers.
#undef GV_POISON_MEMORY_REGION
#undef GV_UNPOISON_MEMORY_REGION
