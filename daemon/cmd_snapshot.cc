// grapevine snapshot save|restore|inspect: online backup and restore through
// the local agent (GET/PUT /v1/snapshot), and an offline look at a file.
//
// save writes FILE.tmp, verifies every chunk, fsyncs and renames it, so FILE
// is either the previous file or a complete, verified snapshot.
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/cli_common.h"
#include "daemon/commands.h"
#include "daemon/http_client.h"
#include "fs/posix_file_system.h"
#include "snapshot/codec.h"
#include "snapshot/files.h"

namespace gv::cli {

namespace {

// A snapshot is one HTTP body: the CLI holds it in memory once.
constexpr std::size_t kMaxSnapshotBytes = 4ull << 30;
constexpr std::uint64_t kTransferTimeoutMs = 10 * 60 * 1000;

struct SnapshotFlags {
  std::string http;
  std::string file;
  bool json = false;
};

std::string VectorText(const statestore::VersionVector& vector) {
  std::string out;
  for (const auto& [node, seq] : vector) out += (out.empty() ? "" : " ") + node.ToString() + ":" + std::to_string(seq);
  return out.empty() ? "(empty)" : out;
}

int RunSave(const SnapshotFlags& f) {
  HttpClientOptions options;
  options.timeout_ms = kTransferTimeoutMs;
  options.max_response_bytes = kMaxSnapshotBytes;
  HttpClient client(f.http, options);
  auto r = client.Get("/v1/snapshot");
  if (!r.ok()) return Fail(r.status().message());
  if (r->status != 200) return Fail(ServerError(*r));
  snapshot::SnapshotDecoder decoder;
  Status verified = decoder.Feed(r->body);
  if (verified.ok() && !decoder.complete()) verified = Status::Corruption("the download ended before the snapshot did");
  if (!verified.ok()) return Fail("the agent at " + f.http + " sent a snapshot that fails verification: " + verified.message());
  fs::PosixFileSystem fs;
  Status written = fs::WriteFileDurably(fs, f.file, r->body);
  if (!written.ok()) return Fail("writing " + f.file + ": " + written.message());
  std::printf("saved %s: %" PRIu64 " entries, %zu bytes, %" PRIu64 " chunks, all checksums good\n", f.file.c_str(),
              decoder.entries(), r->body.size(), decoder.chunks());
  return 0;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  fs::PosixFileSystem fs;
  auto file = fs.Open(path, fs::OpenMode::kReadOnly);
  if (!file.ok()) return file.status();
  auto size = (*file)->Size();
  if (!size.ok()) return size.status();
  if (*size > kMaxSnapshotBytes) return Status::TooLarge(path + " is larger than " + std::to_string(kMaxSnapshotBytes) + " bytes");
  std::string bytes(static_cast<std::size_t>(*size), '\0');
  auto n = (*file)->ReadAt(0, bytes.size(), bytes.data());
  if (!n.ok()) return n.status();
  bytes.resize(*n);
  return bytes;
}

int RunRestore(const SnapshotFlags& f) {
  auto bytes = ReadWholeFile(f.file);
  if (!bytes.ok()) return Fail("reading " + f.file + ": " + bytes.status().message());
  // Check it here first: a damaged file is named before anything is sent.
  snapshot::SnapshotDecoder decoder;
  Status verified = decoder.Feed(*bytes);
  if (verified.ok() && !decoder.complete()) verified = Status::Corruption("the file ends before the snapshot does");
  if (!verified.ok()) return Fail(f.file + " is not a valid snapshot: " + verified.message());
  HttpClientOptions options;
  options.timeout_ms = kTransferTimeoutMs;
  HttpClient client(f.http, options);
  auto r = client.Request("PUT", "/v1/snapshot", *bytes, {{"content-type", "application/octet-stream"}});
  if (!r.ok()) return Fail(r.status().message());
  if (r->status != 200) return Fail(ServerError(*r));
  std::printf("restored %s into the agent at %s: %" PRIu64 " entries\n", f.file.c_str(), f.http.c_str(),
              decoder.entries());
  return 0;
}

int RunInspect(const SnapshotFlags& f) {
  fs::PosixFileSystem fs;
  auto report = snapshot::InspectSnapshotFile(fs, f.file);
  if (!report.ok()) return Fail("inspecting " + f.file + ": " + report.status().message());
  const snapshot::InspectReport& r = *report;
  const bool good = r.header_ok && r.chunks_bad == 0 && r.first_error.empty();
  if (f.json) {
    nlohmann::json out;
    out["file"] = f.file;
    out["valid"] = good;
    out["header_ok"] = r.header_ok;
    if (r.header_ok) {
      out["format_version"] = r.meta.format_version;
      out["node"] = r.meta.node.ToString();
      nlohmann::json applied = nlohmann::json::object();
      for (const auto& [node, seq] : r.meta.applied) applied[node.ToString()] = seq;
      out["applied"] = applied;
      out["hlc"] = r.meta.hlc.ToString();
      out["index"] = r.meta.index;
      out["entries"] = r.meta.entry_count;
      out["live_keys"] = r.meta.live_keys;
      out["created_wall_ms"] = r.meta.created_wall_ms;
    }
    out["chunks"] = r.chunks;
    out["chunks_bad"] = r.chunks_bad;
    out["entries_read"] = r.entries;
    if (!r.first_error.empty()) out["error"] = r.first_error;
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("file:      %s\n", f.file.c_str());
    if (r.header_ok) {
      std::printf("format:    %u\n", r.meta.format_version);
      std::printf("node:      %s\n", r.meta.node.ToString().c_str());
      std::printf("hlc:       %s\n", r.meta.hlc.ToString().c_str());
      std::printf("index:     %" PRIu64 "\n", r.meta.index);
      std::printf("vector:    %s\n", VectorText(r.meta.applied).c_str());
      std::printf("keys:      %" PRIu64 " live, %" PRIu64 " entries with tombstones\n", r.meta.live_keys,
                  r.meta.entry_count);
    } else {
      std::printf("header:    unreadable\n");
    }
    std::printf("chunks:    %" PRIu64 " read, %" PRIu64 " bad\n", r.chunks, r.chunks_bad);
    std::printf("checksums: %s\n", good ? "all good" : ("FAILED: " + r.first_error).c_str());
  }
  return good ? 0 : 1;
}

}  // namespace

void AddSnapshotCommand(CLI::App& app) {
  auto* snap = app.add_subcommand("snapshot", "Back up, restore and inspect snapshots of the replicated state");
  snap->require_subcommand(1);
  auto flags = std::make_shared<SnapshotFlags>();

  auto* save = snap->add_subcommand("save", "Download a consistent snapshot from the agent while writes go on");
  save->add_option("file", flags->file, "where to write it (replaced atomically)")->required();
  AddHttpOption(save, &flags->http);
  save->callback([flags] { ExitCode() = RunSave(*flags); });

  auto* restore = snap->add_subcommand(
      "restore", "Verify a snapshot file and install it in the agent (it then catches up from its peers)");
  restore->add_option("file", flags->file, "a file written by `grapevine snapshot save`")->required();
  AddHttpOption(restore, &flags->http);
  restore->callback([flags] { ExitCode() = RunRestore(*flags); });

  auto* inspect = snap->add_subcommand(
      "inspect", "Print a snapshot file's header, vector, key count and checksum status (no agent needed)");
  inspect->add_option("file", flags->file, "a snapshot file (DATA/snapshots/*.snap or a saved backup)")->required();
  inspect->add_flag("--json", flags->json, "print the report as JSON");
  inspect->callback([flags] { ExitCode() = RunInspect(*flags); });
}

}  // namespace gv::cli
