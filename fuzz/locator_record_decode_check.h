// The property the locator record fuzz target checks, shared by the
// libFuzzer entry point (locator_record_decode_fuzz.cc) and the regular test
// that runs it over the seed corpus and seeded mutations (tests/fuzz).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gv::fuzz {

// Decodes `data` as a member record, a service record and a locator table
// (wire/member_record.h, wire/service_record.h) — every input through all
// three decoders, at its own address and again one byte off 8-byte
// alignment: both must give the same outcome, and a refusal must say why. An
// accepted value must obey the record rules (membership::Validate*), re-encode
// to bytes that decode to the same value, and encode to those same bytes again.
// Returns "" when the property holds, otherwise what broke.
std::string CheckLocatorRecordDecode(const std::uint8_t* data, std::size_t size);

// Whether any of the three decoders accepts `input` (for the mutation test's counts).
bool LocatorRecordDecodes(std::string_view input);

}  // namespace gv::fuzz
