// FlatBuffers codec for deltas. The same bytes are the WAL record payload and
// the broadcast payload. DecodeDelta never trusts its input: it runs the
// FlatBuffers verifier with explicit limits before reading anything, then the
// store's semantic checks (statestore::ValidateDelta against the protocol caps).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "statestore/delta.h"

namespace gv::wire {

// File identifier at bytes 4..7 of every encoded delta.
inline constexpr char kDeltaFileIdentifier[] = "GVD1";

// Deterministic: equal deltas encode to equal bytes.
std::string EncodeDelta(const statestore::Delta& delta);

// Corruption (malformed buffer) / InvalidArgument or TooLarge (well-formed but
// breaks a rule), each naming what is wrong. Any alignment of `bytes` is accepted.
Result<statestore::Delta> DecodeDelta(std::string_view bytes);

}  // namespace gv::wire
