#include "common/status.h"

#include <doctest/doctest.h>

using namespace gv;

namespace {
Status Fails() { return Status::Corruption("wal/1.wal offset 7: bad crc"); }
Status Propagates() {
  GV_RETURN_IF_ERROR(Fails());
  return Status::Ok();
}
Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd");
  return x / 2;
}
}  // namespace

TEST_CASE("status carries code and message; macro propagates") {
  CHECK(Status::Ok().ok());
  Status s = Propagates();
  CHECK(s.IsCorruption());
  CHECK(s.ToString() == "corruption: wal/1.wal offset 7: bad crc");
}

TEST_CASE("result holds a value or an error") {
  Result<int> a = Half(4);
  REQUIRE(a.ok());
  CHECK(*a == 2);
  Result<int> b = Half(3);
  CHECK(!b.ok());
  CHECK(b.status().code() == StatusCode::kInvalidArgument);
  Result<int> c = Status::Ok();
  CHECK(!c.ok());
}
