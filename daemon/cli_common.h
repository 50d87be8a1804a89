// Shared pieces of the client subcommands (kv, status, members, topology,
// demo): the --http option and the one-line "error: ..." convention of the
// contract (DESIGN.md §6: every command exits non-zero with a one-line error).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "daemon/http_client.h"

namespace gv::cli {

inline constexpr const char* kDefaultHttpAddress = "127.0.0.1:7401";

// Adds `--http IP:PORT` (also read from $GRAPEVINE_HTTP) bound to *address.
inline void AddHttpOption(CLI::App* cmd, std::string* address) {
  *address = kDefaultHttpAddress;
  cmd->add_option("--http", *address, "the agent's HTTP address, IP:PORT")
      ->envname("GRAPEVINE_HTTP")
      ->capture_default_str();
}

// Prints "error: <message>" as one line (newlines in the message become
// spaces) on stderr; returns the exit code 1.
inline int Fail(std::string_view message) {
  std::string line(message);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::fprintf(stderr, "error: %s\n", line.c_str());
  return 1;
}

// The server's {"error": ...} message of a failed response, or the start of
// its body when it is not the contract's error shape.
inline std::string ServerError(const HttpResponse& response) {
  auto j = nlohmann::json::parse(response.body, nullptr, false);
  std::string message;
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    message = j["error"].get<std::string>();
  } else {
    message = response.body.substr(0, 200);
    if (message.empty()) message = "no details";
  }
  return message + " (HTTP " + std::to_string(response.status) + ")";
}

// A string field of a JSON object, or "" (numbers and others as their JSON text).
inline std::string JsonText(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return {};
  const nlohmann::json& v = object[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump();
}

}  // namespace gv::cli
