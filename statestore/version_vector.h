// VersionVector: node -> counter, sorted by node, in one flat array.
//
// Why not std::map: a key's vector is copied by every write that supersedes
// the key while a snapshot is held (statestore/persistent_map.h copies the
// entry), and read for every entry a snapshot encodes. Almost every key is
// written by one node, so its vector has one entry. Kept inline here, that
// entry costs no allocation and no cache line of its own; a std::map node
// cost a malloc per copy and one more cold line per entry encoded
// (docs/benchmarks.md, 2026-12-06, "a flat version vector"). Larger vectors
// (a key written by several nodes; a store's applied vector, one entry per
// node of the cluster) live in one heap array.
//
// The interface is the part of std::map's that the code uses, with the same
// meaning: iteration in node order, emplace keeps an existing entry,
// operator[] inserts a zero counter, at() throws std::out_of_range. Unlike a
// map, an insertion invalidates iterators and references (as a vector's
// does); inserting in the middle moves the entries after it, so a vector is
// best filled in node order (emplace_hint at end() is O(1)). And an entry's
// node (`first`) is not const as a map's key is: change counters only, never
// nodes, through an iterator.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "common/node_id.h"

namespace gv::statestore {

class VersionVector {
 public:
  using value_type = std::pair<NodeId, std::uint64_t>;
  using iterator = value_type*;
  using const_iterator = const value_type*;
  using size_type = std::size_t;

  VersionVector() noexcept {}
  // Entries in any order; of two with one node the first is kept (as a map's).
  // (Delegating: if a later allocation throws, the destructor frees the first.)
  VersionVector(std::initializer_list<value_type> entries) : VersionVector() {
    for (const value_type& e : entries) emplace(e.first, e.second);
  }
  VersionVector(const VersionVector& other) { AssignFrom(other); }
  VersionVector(VersionVector&& other) noexcept { StealFrom(other); }
  VersionVector& operator=(const VersionVector& other) {
    if (this != &other) AssignFrom(other);
    return *this;
  }
  VersionVector& operator=(VersionVector&& other) noexcept {
    if (this != &other) {
      FreeHeap();
      StealFrom(other);
    }
    return *this;
  }
  VersionVector& operator=(std::initializer_list<value_type> entries) {
    clear();
    for (const value_type& e : entries) emplace(e.first, e.second);
    return *this;
  }
  ~VersionVector() { FreeHeap(); }

  size_type size() const { return size_; }
  bool empty() const { return size_ == 0; }
  iterator begin() { return data(); }
  iterator end() { return data() + size_; }
  const_iterator begin() const { return data(); }
  const_iterator end() const { return data() + size_; }
  const_iterator cbegin() const { return begin(); }
  const_iterator cend() const { return end(); }

  // Keeps the storage (a vector that grew past one entry stays on the heap).
  void clear() { size_ = 0; }
  void reserve(size_type n) {
    if (n > capacity_) Reallocate(n);
  }

  const_iterator find(NodeId node) const {
    const_iterator it = LowerBound(node);
    return it != end() && it->first == node ? it : end();
  }
  iterator find(NodeId node) {
    iterator it = LowerBound(node);
    return it != end() && it->first == node ? it : end();
  }
  size_type count(NodeId node) const { return find(node) != end() ? 1 : 0; }
  bool contains(NodeId node) const { return find(node) != end(); }
  const std::uint64_t& at(NodeId node) const {
    const_iterator it = find(node);
    if (it == end()) throw std::out_of_range("VersionVector::at: no entry for node " + node.ToString());
    return it->second;
  }
  std::uint64_t& operator[](NodeId node) { return emplace(node, 0).first->second; }

  // Inserts {node, counter} unless node has an entry; returns the entry and
  // whether it was inserted.
  std::pair<iterator, bool> emplace(NodeId node, std::uint64_t counter) {
    iterator it = LowerBound(node);
    if (it != end() && it->first == node) return {it, false};
    return {InsertAt(static_cast<size_type>(it - begin()), node, counter), true};
  }
  // As emplace; O(1) when hint is end() and node sorts after every entry
  // (decoders fill vectors in order).
  iterator emplace_hint(const_iterator hint, NodeId node, std::uint64_t counter) {
    if (hint == end() && (size_ == 0 || data()[size_ - 1].first < node)) return InsertAt(size_, node, counter);
    return emplace(node, counter).first;
  }

  friend bool operator==(const VersionVector& a, const VersionVector& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  static_assert(std::is_trivially_destructible_v<value_type>);
  static constexpr std::uint32_t kInlineCapacity = 1;
  static constexpr size_type kFirstHeapCapacity = 4;

  bool is_inline() const { return capacity_ == kInlineCapacity; }
  value_type* data() { return is_inline() ? &storage_.one : storage_.heap; }
  const value_type* data() const { return is_inline() ? &storage_.one : storage_.heap; }

  iterator LowerBound(NodeId node) {
    return std::lower_bound(begin(), end(), node, [](const value_type& e, NodeId n) { return e.first < n; });
  }
  const_iterator LowerBound(NodeId node) const {
    return std::lower_bound(begin(), end(), node, [](const value_type& e, NodeId n) { return e.first < n; });
  }

  // Moves the entries to a heap array of `capacity` (>= size_, > 1).
  void Reallocate(size_type capacity) {
    if (capacity > UINT32_MAX) throw std::length_error("VersionVector: more than 2^32-1 entries");
    auto* fresh = static_cast<value_type*>(::operator new(capacity * sizeof(value_type)));
    std::uninitialized_copy(begin(), end(), fresh);
    FreeHeap();
    storage_.heap = fresh;
    capacity_ = static_cast<std::uint32_t>(capacity);
  }

  iterator InsertAt(size_type index, NodeId node, std::uint64_t counter) {
    if (size_ == capacity_) Reallocate(std::max<size_type>(kFirstHeapCapacity, 2 * size_type{capacity_}));
    value_type* d = data();
    if (index < size_) {
      // Construct the new last slot, then shift the rest up by one.
      ::new (static_cast<void*>(d + size_)) value_type(d[size_ - 1]);
      std::move_backward(d + index, d + size_ - 1, d + size_);
      d[index] = value_type(node, counter);
    } else {
      ::new (static_cast<void*>(d + index)) value_type(node, counter);
    }
    ++size_;
    return d + index;
  }

  void AssignFrom(const VersionVector& other) {
    if (other.size_ > capacity_) Reallocate(other.size_);
    // Entries are trivially destructible: constructing over old ones is fine.
    std::uninitialized_copy(other.begin(), other.end(), data());
    size_ = other.size_;
  }

  // Takes other's entries and leaves it empty and inline. *this owns no heap
  // array (freed or never had one).
  void StealFrom(VersionVector& other) noexcept {
    size_ = other.size_;
    capacity_ = other.capacity_;
    if (other.is_inline()) {
      if (other.size_ == 1) ::new (static_cast<void*>(&storage_.one)) value_type(other.storage_.one);
    } else {
      storage_.heap = other.storage_.heap;
    }
    other.size_ = 0;
    other.capacity_ = kInlineCapacity;
  }

  // Frees the heap array, if any; size_ and capacity_ are the caller's to set.
  void FreeHeap() noexcept {
    if (!is_inline()) ::operator delete(storage_.heap);
  }

  union Storage {
    // Zeroed, so that no path reads uninitialized bytes (and GCC can see so).
    Storage() noexcept : one() {}
    value_type one;     // capacity_ == kInlineCapacity
    value_type* heap;   // otherwise
  } storage_;
  std::uint32_t size_ = 0;
  std::uint32_t capacity_ = kInlineCapacity;
};

}  // namespace gv::statestore
