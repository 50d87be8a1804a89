#include "daemon/commands.h"

namespace gv::cli {

int& ExitCode() {
  static int code = 0;
  return code;
}

}  // namespace gv::cli
