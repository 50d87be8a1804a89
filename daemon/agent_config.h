// The agent's configuration: command-line flags (DESIGN.md §6) and a TOML
// file with the same keys as the flags (`data-dir = "/var/lib/grapevine"`).
// A flag given on the command line wins over the file. Validate() checks
// every field and says what to change.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "daemon/net_address.h"
#include "wal/wal.h"

namespace gv::daemon {

// Member tags: keys and values together at most this many bytes (issue 6).
inline constexpr std::size_t kMaxTagBytes = 4096;

struct AgentConfig {
  std::string name;
  std::string data_dir;
  std::string bind = "0.0.0.0:7400";
  std::string advertise;  // address peers dial; defaults to bind (which must then not be 0.0.0.0)
  std::string http = "127.0.0.1:7401";
  std::string dns = "127.0.0.1:7402";
  std::vector<std::string> join;
  std::vector<std::string> tags;      // "KEY=VALUE" (--tag, repeatable): the member list's tags
  std::string cluster = "grapevine";  // agents of different clusters refuse each other
  std::string cluster_key;            // base64 of 32 bytes; empty = no encryption
  std::string durability = "sync";
  std::string log_level = "info";
  std::uint64_t snapshot_every = 100000;
  std::uint64_t catchup_tail = 50000;
  std::uint64_t max_value_bytes = 64 * 1024;
  std::uint64_t wal_segment_bytes = 64ull << 20;
  std::uint64_t dns_ttl = 0;  // seconds
  std::string tombstone_gc = "24h";
  std::string sync_interval = "10s";
  std::string config_file;
};

// Registers the agent's flags on `cmd`, bound to `config`.
void AddAgentFlags(CLI::App& cmd, AgentConfig& config);

// Reads `config.config_file` (if set) and fills every field whose flag was not
// given on `cmd`'s command line. Unknown keys and wrong types are errors that
// name the key and the file.
Status ApplyConfigFile(const CLI::App& cmd, AgentConfig& config);

// The checked, parsed form the agent runs with.
struct ResolvedAgentConfig {
  AgentConfig raw;
  net::SocketAddress bind;
  net::SocketAddress advertise;
  net::SocketAddress http;
  net::SocketAddress dns;
  std::vector<net::SocketAddress> join;
  std::map<std::string, std::string> tags;  // at most kMaxTagBytes of keys and values in all
  std::string cluster_key_bytes;  // 32 bytes, or empty
  wal::Durability durability = wal::Durability::kSync;
  std::uint64_t tombstone_gc_ms = 0;
  std::uint64_t sync_interval_ms = 0;
};

Result<ResolvedAgentConfig> Resolve(const AgentConfig& config);

}  // namespace gv::daemon
