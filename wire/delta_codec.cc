#include "wire/delta_codec.h"

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include "wire/aligned_bytes.h"
#include "wire/grapevine_generated.h"

namespace gv::wire {

namespace sst = gv::statestore;

std::string EncodeDelta(const sst::Delta& delta) {
  flatbuffers::FlatBufferBuilder builder(sst::EncodedSizeBound(delta) < 1024 ? 1024 : sst::EncodedSizeBound(delta));
  std::vector<flatbuffers::Offset<fb::Op>> ops;
  ops.reserve(delta.ops.size());
  std::vector<fb::VvEntry> entries;
  for (const sst::Op& op : delta.ops) {
    auto key = builder.CreateString(op.key.data(), op.key.size());
    flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> value;
    if (!op.value.empty()) {
      value = builder.CreateVector(reinterpret_cast<const std::uint8_t*>(op.value.data()), op.value.size());
    }
    entries.clear();
    for (const auto& [node, counter] : op.vv) entries.emplace_back(node.value, counter);
    auto vv = builder.CreateVectorOfStructs(entries);
    ops.push_back(fb::CreateOp(builder, op.kind == sst::OpKind::kDelete ? fb::OpKind_Delete : fb::OpKind_Put, key,
                               value, op.flags, vv));
  }
  auto ops_vector = builder.CreateVector(ops);
  auto root = fb::CreateDelta(builder, delta.origin.value, delta.seq, delta.hlc.Pack(), ops_vector);
  builder.Finish(root, kDeltaFileIdentifier);
  return std::string(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
}

namespace {

// Depth: Delta -> Op is 2 nested tables; anything deeper is malformed.
constexpr flatbuffers::uoffset_t kMaxDepth = 4;
// One Delta table plus at most kMaxOpsPerDeltaCap Op tables.
constexpr flatbuffers::uoffset_t kMaxTables = sst::kMaxOpsPerDeltaCap + 1;

Status Malformed(const std::string& what) { return Status::Corruption("delta decode: " + what); }

Status Refine(const Status& status) {
  // Keep the code of a semantic failure, add where it was found.
  switch (status.code()) {
    case StatusCode::kTooLarge: return Status::TooLarge("delta decode: " + status.message());
    default: return Status::InvalidArgument("delta decode: " + status.message());
  }
}

Result<sst::Delta> DecodeVerified(const std::uint8_t* data) {
  const fb::Delta* root = flatbuffers::GetRoot<fb::Delta>(data);
  sst::Delta delta;
  delta.origin = NodeId(root->origin());
  delta.seq = root->seq();
  delta.hlc = sst::Hlc::Unpack(root->hlc());
  const auto* ops = root->ops();  // required: the verifier checked presence
  if (ops->size() > sst::kMaxOpsPerDeltaCap) {
    return Status::TooLarge("delta decode: " + std::to_string(ops->size()) + " ops, over the cap of " +
                            std::to_string(sst::kMaxOpsPerDeltaCap));
  }
  delta.ops.reserve(ops->size());
  for (flatbuffers::uoffset_t i = 0; i < ops->size(); ++i) {
    const fb::Op* in = ops->Get(i);
    const std::string at = "op " + std::to_string(i) + ": ";
    sst::Op op;
    switch (in->kind()) {
      case fb::OpKind_Put: op.kind = sst::OpKind::kPut; break;
      case fb::OpKind_Delete: op.kind = sst::OpKind::kDelete; break;
      default: return Status::InvalidArgument("delta decode: " + at + "unknown op kind " +
                                              std::to_string(static_cast<int>(in->kind())));
    }
    const flatbuffers::String* key = in->key();
    if (key->size() > sst::kMaxKeyBytes) {
      return Status::TooLarge("delta decode: " + at + "key is " + std::to_string(key->size()) + " bytes, over " +
                              std::to_string(sst::kMaxKeyBytes));
    }
    op.key.assign(key->data(), key->size());
    if (const auto* value = in->value(); value != nullptr) {
      if (value->size() > sst::kMaxValueBytesCap) {
        return Status::TooLarge("delta decode: " + at + "value is " + std::to_string(value->size()) +
                                " bytes, over the cap of " + std::to_string(sst::kMaxValueBytesCap));
      }
      op.value.assign(reinterpret_cast<const char*>(value->data()), value->size());
    }
    op.flags = in->flags();
    const auto* vv = in->vv();
    // The verifier checks a vector's length word alignment (4) only; the
    // 8-byte struct fields must be aligned too before they are read.
    if (reinterpret_cast<std::uintptr_t>(vv->Data()) % alignof(fb::VvEntry) != 0) {
      return Malformed(at + "misaligned version vector");
    }
    if (vv->size() > sst::kMaxVvEntries) {
      return Status::TooLarge("delta decode: " + at + "version vector has " + std::to_string(vv->size()) +
                              " entries, over " + std::to_string(sst::kMaxVvEntries));
    }
    std::uint64_t previous_node = 0;
    op.vv.reserve(vv->size());
    for (flatbuffers::uoffset_t j = 0; j < vv->size(); ++j) {
      const fb::VvEntry* entry = vv->Get(j);
      // Canonical form: strictly increasing nodes (so no duplicates and a unique encoding).
      if (j > 0 && entry->node() <= previous_node) {
        return Status::InvalidArgument("delta decode: " + at + "version vector not strictly sorted by node");
      }
      previous_node = entry->node();
      op.vv.emplace_hint(op.vv.end(), NodeId(entry->node()), entry->counter());
    }
    delta.ops.push_back(std::move(op));
  }
  if (Status valid = sst::ValidateDelta(delta); !valid.ok()) return Refine(valid);
  return delta;
}

}  // namespace

Result<sst::Delta> DecodeDelta(std::string_view bytes) {
  if (bytes.size() > sst::kMaxEncodedDeltaBytes) {
    return Status::TooLarge("delta decode: buffer is " + std::to_string(bytes.size()) + " bytes, over the limit of " +
                            std::to_string(sst::kMaxEncodedDeltaBytes));
  }
  if (bytes.size() < 2 * sizeof(flatbuffers::uoffset_t)) {
    return Malformed("buffer of " + std::to_string(bytes.size()) + " bytes is too short");
  }
  const AlignedBytes aligned(bytes);  // FlatBuffers reads scalars in place
  const std::uint8_t* data = aligned.data();
  if (!flatbuffers::BufferHasIdentifier(data, kDeltaFileIdentifier)) {
    return Malformed(std::string("not a delta buffer (file identifier is not ") + kDeltaFileIdentifier + ")");
  }
  flatbuffers::Verifier::Options options;
  options.max_depth = kMaxDepth;
  options.max_tables = kMaxTables;
  options.check_alignment = true;
  options.check_nested_flatbuffers = true;
  flatbuffers::Verifier verifier(data, bytes.size(), options);
  if (!verifier.VerifyBuffer<fb::Delta>(kDeltaFileIdentifier)) {
    return Malformed("FlatBuffers verification failed (truncated or corrupt buffer)");
  }
  return DecodeVerified(data);
}

}  // namespace gv::wire
