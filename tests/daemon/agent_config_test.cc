#include "daemon/agent_config.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

using namespace gv;
using namespace gv::daemon;

namespace {

struct Parsed {
  AgentConfig config;
  Status status;
};

Parsed ParseArgs(std::vector<std::string> args) {
  Parsed out;
  CLI::App app;
  AddAgentFlags(app, out.config);
  std::vector<const char*> argv{"agent"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  out.status = ApplyConfigFile(app, out.config);
  return out;
}

std::string WriteTemp(const std::string& name, const std::string& text) {
  std::string path = "/tmp/gv_agent_config_test_" + name + ".toml";
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("flags parse and resolve to addresses") {
  Parsed p = ParseArgs({"--name", "n1", "--data-dir", "/tmp/d", "--bind", "127.0.0.1:7500", "--join",
                        "127.0.0.1:7501,127.0.0.1:7502", "--durability", "interval"});
  REQUIRE(p.status.ok());
  auto r = Resolve(p.config);
  REQUIRE(r.ok());
  CHECK(r->bind.port == 7500);
  CHECK(r->advertise.ToString() == "127.0.0.1:7500");
  CHECK(r->http.ToString() == "127.0.0.1:7401");
  CHECK(r->dns.ToString() == "127.0.0.1:7402");
  REQUIRE(r->join.size() == 2);
  CHECK(r->join[1].port == 7502);
  CHECK(r->durability == wal::Durability::kInterval);
  CHECK(r->tombstone_gc_ms == 24ull * 3600 * 1000);
  CHECK(r->sync_interval_ms == 10000);
}

TEST_CASE("the config file fills what the command line did not give") {
  std::string path = WriteTemp("ok", R"(
name = "from-file"
data-dir = "/var/lib/gv"
bind = "127.0.0.1:7600"
join = ["127.0.0.1:7601"]
snapshot-every = 500
log-level = "debug"
)");
  Parsed p = ParseArgs({"--config", path, "--name", "from-flag"});
  REQUIRE(p.status.ok());
  CHECK(p.config.name == "from-flag");
  CHECK(p.config.data_dir == "/var/lib/gv");
  CHECK(p.config.bind == "127.0.0.1:7600");
  CHECK(p.config.join == std::vector<std::string>{"127.0.0.1:7601"});
  CHECK(p.config.snapshot_every == 500);
  CHECK(Resolve(p.config).ok());
  std::remove(path.c_str());
}

TEST_CASE("config file errors name the file, key or line") {
  std::string unknown = WriteTemp("unknown", "datadir = \"/x\"\n");
  Parsed a = ParseArgs({"--config", unknown});
  CHECK_FALSE(a.status.ok());
  CHECK(a.status.message().find("unknown key 'datadir'") != std::string::npos);

  std::string wrong_type = WriteTemp("type", "snapshot-every = \"many\"\n");
  Parsed b = ParseArgs({"--config", wrong_type});
  CHECK(b.status.message().find("'snapshot-every' must be a non-negative integer") != std::string::npos);

  std::string broken = WriteTemp("broken", "name = \"a\"\nbind = \n");
  Parsed c = ParseArgs({"--config", broken});
  CHECK(c.status.message().find("line 2") != std::string::npos);

  Parsed d = ParseArgs({"--config", "/nonexistent/gv.toml"});
  CHECK_FALSE(d.status.ok());
  for (const auto& path : {unknown, wrong_type, broken}) std::remove(path.c_str());
}

TEST_CASE("resolve refuses bad values with a message that says what to do") {
  auto check = [](std::vector<std::string> args, const std::string& expected) {
    Parsed p = ParseArgs(std::move(args));
    REQUIRE(p.status.ok());
    auto r = Resolve(p.config);
    CHECK_FALSE(r.ok());
    CHECK_MESSAGE(r.status().message().find(expected) != std::string::npos, r.status().message());
  };
  check({"--data-dir", "/d"}, "--name is required");
  check({"--name", "bad name", "--data-dir", "/d"}, "DNS label");
  check({"--name", "n"}, "--data-dir is required");
  check({"--name", "n", "--data-dir", "/d"}, "--advertise");  // default bind is 0.0.0.0
  check({"--name", "n", "--data-dir", "/d", "--bind", "127.0.0.1"}, "missing :PORT");
  check({"--name", "n", "--data-dir", "/d", "--bind", "127.0.0.1:1", "--durability", "always"}, "--durability");
  check({"--name", "n", "--data-dir", "/d", "--bind", "127.0.0.1:1", "--cluster-key", "c2hvcnQ="}, "grapevine keygen");
  check({"--name", "n", "--data-dir", "/d", "--bind", "127.0.0.1:1", "--max-value-bytes", "2000000"}, "1..1048576");
  check({"--name", "n", "--data-dir", "/d", "--bind", "127.0.0.1:1", "--tombstone-gc", "soon"}, "--tombstone-gc");
  check({"--name", "n", "--data-dir", "/d", "--bind", "127.0.0.1:1", "--log-level", "loud"}, "--log-level");
}
