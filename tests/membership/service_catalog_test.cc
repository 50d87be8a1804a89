// ServiceCatalog (membership/service_catalog.h): the owner's transitions
// (registered, critical on TTL lapse, passing again, removed) with the whole
// broadcast output compared as text, health combined with the owner's member
// record, refusals that change nothing, and merge order independence.
#include "membership/service_catalog.h"

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "common/prng.h"

using namespace gv;
using namespace gv::membership;

namespace {

constexpr std::uint64_t kEpoch = 1'000'000;

LocatorClock At(std::int64_t now_ms, std::uint64_t wall_ms) { return LocatorClock{TimeFromMicros(now_ms * 1000), wall_ms}; }

std::string Render(const std::vector<ServiceRecord>& records) {
  std::ostringstream s;
  for (const ServiceRecord& r : records) {
    s << "n" << r.owner.value << "/" << r.id << " " << r.name << " " << r.address << ":" << r.port << " v" << r.version
      << " " << ServiceStatusName(r.status) << " since=" << r.status_since_wall_ms << "\n";
  }
  return s.str();
}

std::string Render(const std::vector<ServiceInstance>& instances) {
  std::ostringstream s;
  for (const ServiceInstance& i : instances) {
    s << "n" << i.record->owner.value << "/" << i.record->id << " " << (i.passing ? "passing" : "critical") << "\n";
  }
  return s.str();
}

ServiceRegistration Web(std::string id, std::uint64_t ttl_ms) {
  ServiceRegistration r;
  r.id = std::move(id);
  r.name = "web";
  r.address = "10.0.0.1";
  r.port = 80;
  r.tags = {"v1"};
  r.meta = {{"zone", "a"}};
  r.ttl_ms = ttl_ms;
  return r;
}

MemberRecord Member(std::uint64_t node, std::uint64_t epoch, MemberStatus status = MemberStatus::kAlive) {
  MemberRecord r;
  r.node = NodeId(node);
  r.name = "node" + std::to_string(node);
  r.incarnation = epoch;
  r.epoch = epoch;
  r.status = status;
  r.reporter = status == MemberStatus::kAlive || status == MemberStatus::kLeft ? NodeId(node) : NodeId(99);
  return r;
}

ServiceRecord Remote(std::uint64_t owner, std::uint64_t epoch, std::string id, std::uint64_t version,
                     ServiceStatus status = ServiceStatus::kPassing) {
  ServiceRecord r;
  r.owner = NodeId(owner);
  r.owner_epoch = epoch;
  r.id = std::move(id);
  r.name = "web";
  r.address = "10.0.0." + std::to_string(owner);
  r.port = 80;
  r.version = version;
  r.status = status;
  return r;
}

MemberList Members() {
  return MemberList(LocalMember{NodeId(1), "node1", "127.0.0.1:7401", "", "", {}}, kEpoch);
}

}  // namespace

TEST_CASE("service catalog: the owner broadcasts transitions only: registered, critical, passing, removed") {
  MemberList members = Members();
  ServiceCatalog catalog(NodeId(1), kEpoch);
  std::vector<ServiceRecord> out;
  REQUIRE(catalog.Register(Web("web-1", 10'000), At(0, 100), out).ok());
  CHECK(Render(out) == "n1/web-1 web 10.0.0.1:80 v1 passing since=100\n");
  out.clear();
  // Passes within the TTL refresh it without a broadcast.
  REQUIRE(catalog.Pass("web-1", At(9'000, 9'100), out).ok());
  catalog.Tick(At(18'999, 19'099), members, out);
  CHECK(Render(out) == "");
  catalog.Tick(At(19'000, 19'100), members, out);
  CHECK(Render(out) == "n1/web-1 web 10.0.0.1:80 v2 critical since=19100\n");
  CHECK(Render(catalog.Instances("web", members, false)) == "");
  CHECK(Render(catalog.Instances("web", members, true)) == "n1/web-1 critical\n");
  out.clear();
  REQUIRE(catalog.Pass("web-1", At(20'000, 20'100), out).ok());
  CHECK(Render(out) == "n1/web-1 web 10.0.0.1:80 v3 passing since=20100\n");
  out.clear();
  // Re-registering the same fields is a pass; changed fields a new version.
  REQUIRE(catalog.Register(Web("web-1", 10'000), At(21'000, 21'100), out).ok());
  CHECK(Render(out) == "");
  ServiceRegistration moved = Web("web-1", 10'000);
  moved.port = 8080;
  REQUIRE(catalog.Register(moved, At(22'000, 22'100), out).ok());
  CHECK(Render(out) == "n1/web-1 web 10.0.0.1:8080 v4 passing since=22100\n");
  out.clear();
  REQUIRE(catalog.Deregister("web-1", At(23'000, 23'100), out).ok());
  CHECK(Render(out) == "n1/web-1 web 10.0.0.1:8080 v5 removed since=23100\n");
  CHECK(catalog.Instances("web", members, true).empty());
  CHECK(catalog.Names(members).empty());
  CHECK(catalog.Pass("web-1", At(24'000, 24'100), out).code() == StatusCode::kNotFound);
  CHECK(catalog.Deregister("web-1", At(24'000, 24'100), out).code() == StatusCode::kNotFound);
  // Registering the id again continues above the tombstone.
  out.clear();
  REQUIRE(catalog.Register(Web("web-1", 0), At(25'000, 25'100), out).ok());
  CHECK(Render(out) == "n1/web-1 web 10.0.0.1:80 v6 passing since=25100\n");
  CHECK(catalog.metrics().ttl_expiries == 1);
}

TEST_CASE("service catalog: a service without a TTL stays passing; invalid registrations change nothing") {
  MemberList members = Members();
  ServiceCatalogConfig config;
  config.max_local_services = 2;
  ServiceCatalog catalog(NodeId(1), kEpoch, config);
  std::vector<ServiceRecord> out;
  REQUIRE(catalog.Register(Web("a", 0), At(0, 0), out).ok());
  catalog.Tick(At(1'000'000'000, 1'000'000), members, out);
  CHECK(Render(catalog.Instances("web", members, false)) == "n1/a passing\n");

  const std::uint64_t index = catalog.index();
  out.clear();
  ServiceRegistration bad_name = Web("b", 0);
  bad_name.name = "Web_Server";
  ServiceRegistration bad_id = Web("b/c", 0);
  ServiceRegistration big_meta = Web("b", 0);
  big_meta.meta["k"] = std::string(5000, 'x');
  ServiceRegistration long_ttl = Web("b", 0);
  long_ttl.ttl_ms = 25ull * 3600 * 1000;
  for (const ServiceRegistration& r : {bad_name, bad_id, big_meta, long_ttl}) {
    auto result = catalog.Register(r, At(0, 0), out);
    CHECK_FALSE(result.ok());
  }
  CHECK(catalog.Register(bad_name, At(0, 0), out).status().code() == StatusCode::kInvalidArgument);
  CHECK(catalog.Register(big_meta, At(0, 0), out).status().code() == StatusCode::kTooLarge);
  REQUIRE(catalog.Register(Web("b", 0), At(0, 0), out).ok());
  out.clear();
  auto over = catalog.Register(Web("c", 0), At(0, 0), out);
  CHECK(over.status().code() == StatusCode::kTooLarge);
  CHECK(Render(out) == "");
  CHECK(catalog.local_count() == 2);
  CHECK(catalog.index() > index);  // "b" registered
}

TEST_CASE("service catalog: remote instances are healthy while their owner is alive") {
  MemberList members = Members();
  MemberOutbox member_out;
  members.Merge(Member(2, 500), At(0, 0), member_out);
  ServiceCatalog catalog(NodeId(1), kEpoch);
  CHECK(catalog.Merge(Remote(2, 500, "w2", 1), At(0, 0), members) == ServiceMergeOutcome::kApplied);
  CHECK(catalog.Merge(Remote(3, 700, "w3", 1), At(0, 0), members) == ServiceMergeOutcome::kApplied);
  // Owner 3 is not known (yet): critical until its member record arrives.
  CHECK(Render(catalog.Instances("web", members, true)) == "n2/w2 passing\nn3/w3 critical\n");
  members.Merge(Member(3, 700), At(0, 0), member_out);
  catalog.OwnerChanged(NodeId(3), members.Find(NodeId(3)));
  CHECK(Render(catalog.Instances("web", members, false)) == "n2/w2 passing\nn3/w3 passing\n");

  // Owner 2 suspected: still passing; failed: critical.
  const std::uint64_t before = catalog.NameIndex("web");
  members.Merge(Member(2, 500, MemberStatus::kSuspect), At(0, 0), member_out);
  catalog.OwnerChanged(NodeId(2), members.Find(NodeId(2)));
  CHECK(Render(catalog.Instances("web", members, false)) == "n2/w2 passing\nn3/w3 passing\n");
  members.Merge(Member(2, 500, MemberStatus::kFailed), At(0, 0), member_out);
  catalog.OwnerChanged(NodeId(2), members.Find(NodeId(2)));
  CHECK(Render(catalog.Instances("web", members, false)) == "n3/w3 passing\n");
  CHECK(Render(catalog.Instances("web", members, true)) == "n2/w2 critical\nn3/w3 passing\n");
  CHECK(catalog.NameIndex("web") > before);

  // Owner 3 restarted (a higher epoch): its earlier run's services are gone.
  members.Merge(Member(3, 900), At(0, 0), member_out);
  catalog.OwnerChanged(NodeId(3), members.Find(NodeId(3)));
  CHECK(Render(catalog.Instances("web", members, true)) == "n2/w2 critical\n");
  // ... and a late copy of them is refused.
  CHECK(catalog.Merge(Remote(3, 700, "w3", 2), At(0, 0), members) == ServiceMergeOutcome::kStale);
  CHECK(Render(catalog.Instances("web", members, true)) == "n2/w2 critical\n");

  // Owner 2 left: its services go at once.
  MemberRecord left = Member(2, 500, MemberStatus::kLeft);
  left.incarnation = 501;
  members.Merge(left, At(0, 0), member_out);
  catalog.OwnerChanged(NodeId(2), members.Find(NodeId(2)));
  CHECK(catalog.Instances("web", members, true).empty());
  CHECK(catalog.Names(members).empty());
}

TEST_CASE("service catalog: remote records follow precedence; records about our own services are ignored") {
  MemberList members = Members();
  ServiceCatalog catalog(NodeId(1), kEpoch);
  CHECK(catalog.Merge(Remote(2, 500, "w", 2, ServiceStatus::kCritical), At(0, 0), members) == ServiceMergeOutcome::kApplied);
  CHECK(catalog.Merge(Remote(2, 500, "w", 1), At(0, 0), members) == ServiceMergeOutcome::kStale);
  CHECK(catalog.Merge(Remote(2, 500, "w", 3, ServiceStatus::kRemoved), At(0, 0), members) == ServiceMergeOutcome::kApplied);
  CHECK(catalog.Merge(Remote(2, 500, "w", 2), At(0, 0), members) == ServiceMergeOutcome::kStale);
  CHECK(catalog.Merge(Remote(1, kEpoch, "mine", 9), At(0, 0), members) == ServiceMergeOutcome::kStale);
  ServiceRecord invalid = Remote(2, 500, "x", 0);
  CHECK(catalog.Merge(invalid, At(0, 0), members) == ServiceMergeOutcome::kRefused);
  CHECK(catalog.records().size() == 1);
  // The tombstone is reaped after reap_after_ms, and an old copy stays out.
  std::vector<ServiceRecord> out;
  catalog.Tick(At(0, 24ull * 3600 * 1000), members, out);
  CHECK(catalog.records().empty());
  CHECK(catalog.Merge(Remote(2, 500, "w", 3, ServiceStatus::kRemoved), At(0, 24ull * 3600 * 1000), members) ==
        ServiceMergeOutcome::kStale);
  CHECK(catalog.records().empty());
}

TEST_CASE("service catalog: merging is order-independent and idempotent (100 seeds)") {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    INFO("seed " << seed);
    Prng prng(seed);
    std::vector<ServiceRecord> records;
    for (int i = 0; i < 40; ++i) {
      ServiceRecord r = Remote(2 + prng.Uniform(3), 500 + prng.Uniform(2), "s" + std::to_string(prng.Uniform(4)),
                               1 + prng.Uniform(4), static_cast<ServiceStatus>(prng.Uniform(3)));
      r.port = static_cast<std::uint16_t>(prng.Uniform(3));
      r.status_since_wall_ms = prng.Uniform(3);
      records.push_back(r);
    }
    MemberList members = Members();
    auto replay = [&](const std::vector<ServiceRecord>& order) {
      ServiceCatalog catalog(NodeId(1), kEpoch);
      for (const ServiceRecord& r : order) catalog.Merge(r, At(0, 10), members);
      return catalog.records();
    };
    const auto reference = replay(records);
    for (int round = 0; round < 5; ++round) {
      std::vector<ServiceRecord> shuffled = records;
      for (int d = 0; d < 10; ++d) shuffled.push_back(records[prng.Index(records.size())]);
      prng.Shuffle(shuffled);
      CHECK(replay(shuffled) == reference);
    }
  }
}
