#include "daemon/agent_config.h"

#include <sodium.h>

#include <toml++/toml.h>

#include <chrono>
#include <tuple>
#include <map>

#include "daemon/http/url.h"

namespace gv::daemon {

namespace {

// One table drives both the flags and the file keys, so they cannot drift.
struct StringField { const char* key; std::string AgentConfig::*field; const char* help; };
struct UintField { const char* key; std::uint64_t AgentConfig::*field; const char* help; };

const StringField kStringFields[] = {
    {"name", &AgentConfig::name, "Node name, unique in the cluster (default: the host name)"},
    {"data-dir", &AgentConfig::data_dir, "Data directory: node.id, wal/, snapshots/"},
    {"bind", &AgentConfig::bind, "Peer (gossip) address IP:PORT"},
    {"advertise", &AgentConfig::advertise, "Address peers dial IP:PORT (default: --bind)"},
    {"http", &AgentConfig::http, "HTTP API address IP:PORT"},
    {"dns", &AgentConfig::dns, "DNS (UDP) address IP:PORT"},
    {"cluster", &AgentConfig::cluster, "Cluster name; agents of other clusters are refused"},
    {"cluster-key", &AgentConfig::cluster_key, "Base64 32-byte key encrypting peer traffic (see `grapevine keygen`)"},
    {"durability", &AgentConfig::durability, "WAL durability: sync (ack after fdatasync), interval (100 ms), none"},
    {"log-level", &AgentConfig::log_level, "trace, debug, info, warn, error, critical or off"},
    {"tombstone-gc", &AgentConfig::tombstone_gc, "Keep deletes this long (e.g. 24h)"},
    {"sync-interval", &AgentConfig::sync_interval, "Anti-entropy period (e.g. 10s)"},
};
const UintField kUintFields[] = {
    {"snapshot-every", &AgentConfig::snapshot_every, "Deltas between local snapshots"},
    {"catchup-tail", &AgentConfig::catchup_tail, "Deltas kept after a snapshot for peers that fall behind"},
    {"max-value-bytes", &AgentConfig::max_value_bytes, "Largest value accepted by a local write (at most 1 MiB)"},
    {"wal-segment-bytes", &AgentConfig::wal_segment_bytes,
     "WAL segment size; segments are preallocated (8 MiB .. 1 GiB)"},
    {"dns-ttl", &AgentConfig::dns_ttl, "TTL in seconds of DNS answers (0: clients do not cache)"},
};

}  // namespace

void AddAgentFlags(CLI::App& cmd, AgentConfig& config) {
  for (const StringField& f : kStringFields) {
    cmd.add_option(std::string("--") + f.key, config.*(f.field), f.help)->capture_default_str();
  }
  for (const UintField& f : kUintFields) {
    cmd.add_option(std::string("--") + f.key, config.*(f.field), f.help)->capture_default_str();
  }
  cmd.add_option("--join", config.join, "Seed peers IP:PORT[,IP:PORT...]")->delimiter(',');
  cmd.add_option("--tag", config.tags, "Member tag KEY=VALUE (repeatable; 4 KiB in all)");
  cmd.add_option("--config", config.config_file, "TOML file with the same keys as these flags");
}

Status ApplyConfigFile(const CLI::App& cmd, AgentConfig& config) {
  if (config.config_file.empty()) return Status::Ok();
  const std::string& path = config.config_file;
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Status::InvalidArgument("config file " + path + " line " + std::to_string(where.line) + " column " +
                                   std::to_string(where.column) + ": " + std::string(e.description()));
  }
  auto given_on_command_line = [&](const std::string& key) { return cmd.count("--" + key) > 0; };
  for (const auto& [key_node, value] : table) {
    const std::string key(key_node.str());
    auto type_error = [&](const char* want) {
      return Status::InvalidArgument("config file " + path + ": key '" + key + "' must be " + want);
    };
    bool known = false;
    for (const StringField& f : kStringFields) {
      if (key != f.key) continue;
      known = true;
      auto s = value.value<std::string>();
      if (!s) return type_error("a string");
      if (!given_on_command_line(key)) config.*(f.field) = *s;
    }
    for (const UintField& f : kUintFields) {
      if (key != f.key) continue;
      known = true;
      auto n = value.value<std::int64_t>();
      if (!n || *n < 0) return type_error("a non-negative integer");
      if (!given_on_command_line(key)) config.*(f.field) = static_cast<std::uint64_t>(*n);
    }
    for (auto [list_key, list_field, shape] :
         {std::tuple{"join", &AgentConfig::join, "an array of \"IP:PORT\" strings"},
          std::tuple{"tag", &AgentConfig::tags, "an array of \"KEY=VALUE\" strings"}}) {
      if (key != list_key) continue;
      known = true;
      const toml::array* list = value.as_array();
      if (list == nullptr) return type_error(shape);
      std::vector<std::string> items;
      for (const auto& item : *list) {
        auto s = item.value<std::string>();
        if (!s) return type_error(shape);
        items.push_back(*s);
      }
      if (!given_on_command_line(key)) config.*list_field = std::move(items);
    }
    if (!known) {
      return Status::InvalidArgument("config file " + path + ": unknown key '" + key +
                                     "' (keys are the agent's flag names, e.g. data-dir, bind, join)");
    }
  }
  return Status::Ok();
}

Result<ResolvedAgentConfig> Resolve(const AgentConfig& config) {
  ResolvedAgentConfig out;
  out.raw = config;
  if (config.name.empty()) return Status::InvalidArgument("--name is required (a node name unique in the cluster)");
  if (config.name.size() > 63 || config.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
                                     std::string::npos) {
    return Status::InvalidArgument("--name '" + config.name +
                                   "' must be 1-63 letters, digits or '-' (it is also a DNS label)");
  }
  if (config.data_dir.empty()) return Status::InvalidArgument("--data-dir is required");
  auto parse = [](const std::string& flag, const std::string& text) -> Result<net::SocketAddress> {
    auto a = net::ParseSocketAddress(text);
    if (!a.ok()) return Status::InvalidArgument("--" + flag + ": " + a.status().message());
    return a;
  };
  auto bind = parse("bind", config.bind);
  if (!bind.ok()) return bind.status();
  out.bind = *bind;
  auto advertise = parse("advertise", config.advertise.empty() ? config.bind : config.advertise);
  if (!advertise.ok()) return advertise.status();
  out.advertise = *advertise;
  if (out.advertise.host == "0.0.0.0" || out.advertise.host == "::") {
    return Status::InvalidArgument("--bind " + config.bind +
                                   " listens on every interface; give --advertise IP:PORT, the address peers dial");
  }
  auto http = parse("http", config.http);
  if (!http.ok()) return http.status();
  out.http = *http;
  auto dns = parse("dns", config.dns);
  if (!dns.ok()) return dns.status();
  out.dns = *dns;
  for (const std::string& j : config.join) {
    auto a = parse("join", j);
    if (!a.ok()) return a.status();
    out.join.push_back(*a);
  }
  std::size_t tag_bytes = 0;
  for (const std::string& tag : config.tags) {
    const std::size_t eq = tag.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("--tag '" + tag + "' must be KEY=VALUE with a non-empty KEY");
    }
    std::string tag_key = tag.substr(0, eq);
    if (out.tags.count(tag_key) != 0) return Status::InvalidArgument("--tag " + tag_key + " is given twice");
    tag_bytes += tag.size() - 1;
    out.tags.emplace(std::move(tag_key), tag.substr(eq + 1));
  }
  if (tag_bytes > kMaxTagBytes) {
    return Status::InvalidArgument("--tag: " + std::to_string(tag_bytes) + " bytes of tags, over the 4096 allowed");
  }
  if (config.cluster.empty() || config.cluster.size() > 64) {
    return Status::InvalidArgument("--cluster must be 1-64 characters");
  }
  if (!config.cluster_key.empty()) {
    unsigned char key[64];
    std::size_t key_len = 0;
    if (sodium_init() < 0 ||
        sodium_base642bin(key, sizeof(key), config.cluster_key.data(), config.cluster_key.size(), nullptr, &key_len,
                          nullptr, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        key_len != 32) {
      return Status::InvalidArgument("--cluster-key must be base64 of 32 bytes; make one with `grapevine keygen`");
    }
    out.cluster_key_bytes.assign(reinterpret_cast<const char*>(key), key_len);
    sodium_memzero(key, sizeof(key));
  }
  auto durability = wal::ParseDurability(config.durability);
  if (!durability.ok()) return Status::InvalidArgument("--durability: " + durability.status().message());
  out.durability = *durability;
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  bool level_ok = false;
  for (const char* level : kLevels) level_ok |= config.log_level == level;
  if (!level_ok) {
    return Status::InvalidArgument("--log-level must be trace, debug, info, warn, error, critical or off (got '" +
                                   config.log_level + "')");
  }
  if (config.max_value_bytes == 0 || config.max_value_bytes > 1024 * 1024) {
    return Status::InvalidArgument("--max-value-bytes must be 1..1048576");
  }
  if (config.wal_segment_bytes < (8u << 20) || config.wal_segment_bytes > (1ull << 30)) {
    return Status::InvalidArgument("--wal-segment-bytes must be 8388608 (8 MiB) .. 1073741824 (1 GiB)");
  }
  if (config.dns_ttl > 86400) return Status::InvalidArgument("--dns-ttl must be 0..86400 seconds");
  if (config.snapshot_every == 0) return Status::InvalidArgument("--snapshot-every must be at least 1");
  auto gc = http::ParseDuration(config.tombstone_gc);
  if (!gc.ok()) return Status::InvalidArgument("--tombstone-gc: " + gc.status().message());
  out.tombstone_gc_ms = static_cast<std::uint64_t>(ToMillis(*gc));
  auto sync = http::ParseDuration(config.sync_interval);
  if (!sync.ok()) return Status::InvalidArgument("--sync-interval: " + sync.status().message());
  out.sync_interval_ms = static_cast<std::uint64_t>(ToMillis(*sync));
  if (out.sync_interval_ms == 0) return Status::InvalidArgument("--sync-interval must be more than 0");
  return out;
}

}  // namespace gv::daemon
