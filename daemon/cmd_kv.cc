// grapevine kv get|put|delete|ls|watch: the KV part of the HTTP API
// (daemon/kv_service.h) from the command line, one request per command
// (watch: one stream).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "daemon/cli_common.h"
#include "daemon/commands.h"
#include "daemon/http_client.h"

namespace gv::cli {

namespace {

// A value read from stdin larger than this is refused before it is sent (the
// agent's own limit is smaller; this bound only keeps the CLI's memory finite).
constexpr std::size_t kMaxStdinValueBytes = 64u << 20;
// The agent sends an SSE comment every 15 s; four missed ones mean it is gone.
constexpr std::uint64_t kWatchIdleTimeoutMs = 60 * 1000;

struct KvFlags {
  std::string http;
  std::string key;
  std::string value;
  bool json = false;
  bool recurse = false;
  std::optional<std::uint64_t> cas;
  std::optional<std::uint64_t> flags;
  std::uint64_t count = 0;
};

std::string KvTarget(const std::string& key) { return "/v1/kv/" + EncodeKeyPath(key); }

void WriteAll(std::string_view bytes) {
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
}

int RunGet(const KvFlags& f) {
  HttpClient client(f.http);
  auto r = client.Get(KvTarget(f.key) + (f.json ? "" : "?raw"));
  if (!r.ok()) return Fail(r.status().message());
  if (r->status == 404) return Fail("key '" + f.key + "' not found");
  if (r->status != 200) return Fail(ServerError(*r));
  if (f.json) {
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_discarded()) return Fail("the agent at " + f.http + " answered invalid JSON");
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    WriteAll(r->body);
    std::fputc('\n', stdout);
  }
  return 0;
}

Result<std::string> ReadStdin() {
  std::string value;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(std::string("reading the value from stdin: ") + std::strerror(errno));
    }
    value.append(buf, static_cast<std::size_t>(n));
    if (value.size() > kMaxStdinValueBytes) {
      return Status::TooLarge("the value on stdin exceeds " + std::to_string(kMaxStdinValueBytes) + " bytes");
    }
  }
  return value;
}

int RunPut(const KvFlags& f) {
  std::string value = f.value;
  if (value == "-") {
    auto in = ReadStdin();
    if (!in.ok()) return Fail(in.status().message());
    value = std::move(*in);
  }
  std::string target = KvTarget(f.key);
  char sep = '?';
  if (f.cas) {
    target += sep + std::string("cas=") + std::to_string(*f.cas);
    sep = '&';
  }
  if (f.flags) target += sep + std::string("flags=") + std::to_string(*f.flags);
  HttpClient client(f.http);
  auto r = client.Request("PUT", target, value);
  if (!r.ok()) return Fail(r.status().message());
  if (r->status != 200) return Fail(ServerError(*r));
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("version")) {
    return Fail("the agent at " + f.http + " answered without a version: " + r->body.substr(0, 200));
  }
  std::printf("%s\n", j["version"].dump().c_str());
  return 0;
}

int RunDelete(const KvFlags& f) {
  std::string target = KvTarget(f.key);
  if (f.recurse) {
    target += "?recurse";
  } else if (f.cas) {
    target += "?cas=" + std::to_string(*f.cas);
  }
  HttpClient client(f.http);
  auto r = client.Request("DELETE", target);
  if (!r.ok()) return Fail(r.status().message());
  if (r->status != 200) return Fail(ServerError(*r));
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  const std::string deleted = JsonText(j, "deleted");
  if (f.recurse) {
    std::printf("deleted %s key(s) under '%s'\n", deleted.empty() ? "?" : deleted.c_str(), f.key.c_str());
  } else if (deleted == "0") {
    std::printf("'%s' did not exist\n", f.key.c_str());
  } else {
    std::printf("deleted '%s' (version %s)\n", f.key.c_str(), JsonText(j, "version").c_str());
  }
  return 0;
}

int RunLs(const KvFlags& f) {
  HttpClient client(f.http);
  auto r = client.Get(KvTarget(f.key) + "?keys");
  if (!r.ok()) return Fail(r.status().message());
  nlohmann::json keys = nlohmann::json::array();
  if (r->status == 200) {
    keys = nlohmann::json::parse(r->body, nullptr, false);
    if (!keys.is_array()) return Fail("the agent at " + f.http + " answered a key list that is not a JSON array");
  } else if (r->status != 404) {  // 404: no key under the prefix, an empty listing
    return Fail(ServerError(*r));
  }
  if (f.json) {
    std::printf("%s\n", keys.dump().c_str());
    return 0;
  }
  for (const auto& k : keys) {
    if (k.is_string()) std::printf("%s\n", k.get<std::string>().c_str());
  }
  return 0;
}

// One line per change: `put KEY = "VALUE" (version N)` / `delete KEY (version N)`.
// The value is JSON-quoted so a value with newlines stays on one line.
std::string ChangeLine(std::string_view event, const nlohmann::json& data) {
  const std::string key = JsonText(data, "key");
  const std::string version = JsonText(data, "version");
  if (event == "delete") return "delete " + key + " (version " + version + ")";
  if (event == "reset") {
    return "reset: the agent installed a snapshot (index " + JsonText(data, "index") + "); read the prefix again";
  }
  std::string value = data.contains("value") ? data["value"].dump() : std::string("null");
  if (JsonText(data, "encoding") == "base64") value = "base64:" + value;
  std::string line = "put " + key + " = " + value + " (version " + version;
  if (data.contains("conflict") && data["conflict"].is_boolean() && data["conflict"].get<bool>()) {
    line += ", concurrent write";
  }
  return line + ")";
}

int RunWatch(const KvFlags& f) {
  HttpClient client(f.http);
  std::uint64_t seen = 0;
  std::string bad_event;
  Status s = client.StreamEvents(
      "/v1/watch?prefix=" + EncodeQueryValue(f.key), kWatchIdleTimeoutMs,
      [&](std::string_view event, std::string_view data) {
        if (event != "put" && event != "delete") return true;  // other events are not changes
        auto j = nlohmann::json::parse(data, nullptr, false);
        if (!j.is_object()) {
          bad_event = std::string(data.substr(0, 200));
          return false;
        }
        if (f.json) {
          j["event"] = std::string(event);
          std::printf("%s\n", j.dump().c_str());
        } else {
          std::printf("%s\n", ChangeLine(event, j).c_str());
        }
        std::fflush(stdout);  // one line per change, as it happens, also into a pipe
        ++seen;
        return f.count == 0 || seen < f.count;
      });
  if (!bad_event.empty()) return Fail("the agent at " + f.http + " sent an event that is not JSON: " + bad_event);
  if (!s.ok()) return Fail(s.message());
  if (f.count != 0 && seen >= f.count) return 0;
  return Fail("the agent at " + f.http + " ended the watch stream (is it shutting down?)");
}

}  // namespace

void AddKvCommand(CLI::App& app) {
  auto* kv = app.add_subcommand("kv", "Read, write and watch keys through the local agent's HTTP API");
  kv->require_subcommand(1);
  auto flags = std::make_shared<KvFlags>();

  auto* get = kv->add_subcommand("get", "Print a key's value (the bare value; --json: the full entry)");
  get->add_option("key", flags->key, "the key")->required();
  get->add_flag("--json", flags->json, "print the entry as JSON: key, value, version, hlc, origin, conflict, flags");
  AddHttpOption(get, &flags->http);
  get->callback([flags] { ExitCode() = RunGet(*flags); });

  auto* put = kv->add_subcommand("put", "Write a key; prints the new version");
  put->add_option("key", flags->key, "the key")->required();
  put->add_option("value", flags->value, "the value; '-' reads it from stdin (for a value starting with '-': options first, then -- VALUE)")->required();
  put->add_option("--cas", flags->cas, "write only if the key's current version is N (0: only if absent)");
  put->add_option("--flags", flags->flags, "an opaque 64-bit number stored with the value");
  AddHttpOption(put, &flags->http);
  put->callback([flags] { ExitCode() = RunPut(*flags); });

  auto* del = kv->add_subcommand("delete", "Delete a key, or every key under a prefix with --recurse");
  del->add_option("key", flags->key, "the key (with --recurse: the prefix)")->required();
  del->add_flag("--recurse", flags->recurse, "delete every key under the prefix");
  del->add_option("--cas", flags->cas, "delete only if the key's current version is N")->excludes("--recurse");
  AddHttpOption(del, &flags->http);
  del->callback([flags] { ExitCode() = RunDelete(*flags); });

  auto* ls = kv->add_subcommand("ls", "List the keys under a prefix (all keys without one)");
  ls->add_option("prefix", flags->key, "the prefix");
  ls->add_flag("--json", flags->json, "print the key names as a JSON array");
  AddHttpOption(ls, &flags->http);
  ls->callback([flags] { ExitCode() = RunLs(*flags); });

  auto* watch = kv->add_subcommand(
      "watch", "Print one line per change under a prefix as it happens, until interrupted (GET /v1/watch)");
  watch->add_option("prefix", flags->key, "the prefix (all keys without one)");
  watch->add_option("--count", flags->count, "stop after N changes (0: never)")->capture_default_str();
  watch->add_flag("--json", flags->json, "print each change as one JSON object with an \"event\" field");
  AddHttpOption(watch, &flags->http);
  watch->callback([flags] { ExitCode() = RunWatch(*flags); });
}

}  // namespace gv::cli
