// A minimal client of Serf's agent RPC (the protocol `serf members` speaks):
// MessagePack over one TCP connection, a request header
// {"Command","Seq"} followed by an optional body, answered by a response
// header {"Seq","Error"} and, for commands that return data, a body.
//
// members_bench polls every Serf agent's member list every ~20 ms; forking the
// `serf members` CLI for that costs several milliseconds of CPU per call on
// this machine, so with 100 agents a sweep would take seconds and blur the
// detection time it measures. One kept-open RPC connection per agent answers
// in well under a millisecond.
//
// The framing has no length prefix: a response ends where its MessagePack
// value ends, so MsgpackValueLength finds that boundary before the value is
// decoded (nlohmann::json::from_msgpack on exactly those bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gv::bench {

// The byte length of the first complete MessagePack value in `bytes`:
// nullopt when `bytes` ends before the value does (read more), an error for a
// byte that starts no value (0xc1) or a value nested deeper than `max_depth`.
Result<std::optional<std::size_t>> MsgpackValueLength(std::string_view bytes, std::size_t max_depth = 32);

class SerfRpcClient {
 public:
  // `address` is "127.0.0.1:PORT" (the agent's -rpc-addr).
  SerfRpcClient(std::string address, std::uint64_t timeout_ms) : address_(std::move(address)), timeout_ms_(timeout_ms) {}
  ~SerfRpcClient();
  SerfRpcClient(const SerfRpcClient&) = delete;
  SerfRpcClient& operator=(const SerfRpcClient&) = delete;

  // name -> status ("alive", "leaving", "left", "failed") of every member the
  // agent knows, or only of `name` when given (Serf's members-filtered, whose
  // Name is an anchored regular expression: pass plain node names only).
  // Connects and handshakes on first use; reconnects once after an error.
  Result<std::map<std::string, std::string>> Members(const std::optional<std::string>& name = std::nullopt);

  const std::string& address() const { return address_; }

 private:
  Status Connect();
  void Close();
  Status Send(const std::string& bytes);
  // Reads one complete MessagePack value (header or body) from the socket.
  Result<std::string> ReadValue();
  Result<std::map<std::string, std::string>> MembersOnce(const std::optional<std::string>& name);

  std::string address_;
  std::uint64_t timeout_ms_;
  int fd_ = -1;
  std::uint64_t next_seq_ = 0;
  std::string buffer_;  // bytes read past the last value
};

}  // namespace gv::bench
