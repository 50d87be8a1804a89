// FlatBuffers reads scalars in place, so a buffer must start 8-byte aligned
// before it is verified and read. WAL records and network frames sit at any
// offset: AlignedBytes points at the input when it is aligned already and at
// an owned aligned copy otherwise.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace gv::wire {

class AlignedBytes {
 public:
  explicit AlignedBytes(std::string_view bytes) : data_(reinterpret_cast<const std::uint8_t*>(bytes.data())) {
    if (reinterpret_cast<std::uintptr_t>(data_) % alignof(std::uint64_t) != 0) {
      copy_.reset(new std::uint64_t[(bytes.size() + 7) / 8]);
      std::memcpy(copy_.get(), bytes.data(), bytes.size());
      data_ = reinterpret_cast<const std::uint8_t*>(copy_.get());
    }
  }
  const std::uint8_t* data() const { return data_; }

 private:
  const std::uint8_t* data_;
  std::unique_ptr<std::uint64_t[]> copy_;
};

}  // namespace gv::wire
