// grapevine keygen: prints a new random 32-byte cluster key, base64-encoded,
// for `grapevine agent --cluster-key`.
#include <sodium.h>

#include <cstdio>
#include <string>

#include "daemon/commands.h"

namespace gv::cli {

void AddKeygenCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("keygen", "Print a new random cluster key (base64) for --cluster-key");
  cmd->callback([] {
    if (sodium_init() < 0) {
      std::fprintf(stderr, "grapevine keygen: libsodium failed to initialise\n");
      ExitCode() = 1;
      return;
    }
    unsigned char key[crypto_secretbox_KEYBYTES];
    randombytes_buf(key, sizeof(key));
    std::string b64(sodium_base64_ENCODED_LEN(sizeof(key), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(b64.data(), b64.size(), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
    b64.resize(std::char_traits<char>::length(b64.c_str()));
    std::printf("%s\n", b64.c_str());
    sodium_memzero(key, sizeof(key));
    ExitCode() = 0;
  });
}

}  // namespace gv::cli
