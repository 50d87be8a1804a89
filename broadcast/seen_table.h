// SeenTable: what a Plumtree node remembers of every message id it delivered
// (first-copy sender, delivery hop, where its cached payload is), in one flat
// open-addressing hash table.
//
// Why not std::unordered_map: every GOSSIP and every IHAVE entry a node
// receives is looked up here, and a 10,000-node simulation holds ~10 million
// ids at once. A node-based map costs a bucket-array miss plus a node miss
// per lookup and an allocation per id; this table is one contiguous array of
// 32-byte records (linear probing, load <= 3/4, backward-shift deletion, so
// there are no tombstones and a lookup stops at the first vacant slot).
//
// Iteration order is the hash order: callers never let it reach their output
// (Plumtree only iterates it to check invariants).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "broadcast/message_id.h"
#include "common/node_id.h"
#include "common/prefetch.h"

namespace gv::broadcast {

class SeenTable {
 public:
  // `payload` names a payload-cache cell, or kNoPayload.
  static constexpr std::uint32_t kNoPayload = 0xfffffffeu;

  struct Record {
    MessageId id;
    NodeId from;              // who gave us the first copy (self for own broadcasts)
    std::uint32_t hops = 0;   // our delivery hop
    std::uint32_t payload = kVacant;  // kVacant marks an empty slot
  };

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t capacity() const { return slots_.size(); }

  Record* Find(const MessageId& id) {
    if (size_ == 0) return nullptr;
    for (std::size_t i = Home(id);; i = (i + 1) & mask_) {
      Record& r = slots_[i];
      if (r.payload == kVacant) return nullptr;
      if (r.id == id) return &r;
    }
  }
  const Record* Find(const MessageId& id) const { return const_cast<SeenTable*>(this)->Find(id); }
  // A hint: fetch the slot where a lookup of `id` starts.
  void Prefetch(const MessageId& id) const {
    if (!slots_.empty()) PrefetchLine(&slots_[Home(id)]);
  }
  bool Contains(const MessageId& id) const { return Find(id) != nullptr; }

  // Adds `id` (which must not be present) with no payload and returns its
  // record. Pointers to records are invalidated by Insert and Erase.
  Record& Insert(const MessageId& id, NodeId from, std::uint32_t hops) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
    std::size_t i = Home(id);
    while (slots_[i].payload != kVacant) i = (i + 1) & mask_;
    Record& r = slots_[i];
    r.id = id;
    r.from = from;
    r.hops = hops;
    r.payload = kNoPayload;
    ++size_;
    return r;
  }

  // Removes `id`; returns false if it was not present.
  bool Erase(const MessageId& id) {
    if (size_ == 0) return false;
    std::size_t hole = Home(id);
    while (true) {
      if (slots_[hole].payload == kVacant) return false;
      if (slots_[hole].id == id) break;
      hole = (hole + 1) & mask_;
    }
    // Backward shift: move every later record of the probe run whose home is
    // not cyclically within (hole, j] into the hole, so no lookup ever meets
    // a gap before its record.
    for (std::size_t j = (hole + 1) & mask_; slots_[j].payload != kVacant; j = (j + 1) & mask_) {
      const std::size_t home = Home(slots_[j].id);
      const bool stays = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (stays) continue;
      slots_[hole] = slots_[j];
      hole = j;
    }
    slots_[hole] = Record{};
    --size_;
    return true;
  }

  template <typename F>
  void ForEach(F&& f) const {
    for (const Record& r : slots_) {
      if (r.payload != kVacant) f(r);
    }
  }

 private:
  static constexpr std::uint32_t kVacant = 0xffffffffu;
  static constexpr std::size_t kMinCapacity = 16;

  std::size_t Home(const MessageId& id) const { return MessageIdHash{}(id) & mask_; }

  void Grow() {
    std::vector<Record> old;
    old.swap(slots_);
    const std::size_t capacity = old.empty() ? kMinCapacity : old.size() * 2;
    slots_.assign(capacity, Record{});
    mask_ = capacity - 1;
    for (const Record& r : old) {
      if (r.payload == kVacant) continue;
      std::size_t i = Home(r.id);
      while (slots_[i].payload != kVacant) i = (i + 1) & mask_;
      slots_[i] = r;
    }
  }

  std::vector<Record> slots_;  // size is 0 or a power of two
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace gv::broadcast
