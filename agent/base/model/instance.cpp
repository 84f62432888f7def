#include "base/model/instance.h"

namespace hvtel::model {

const char* source_name(Source s) {
  switch (s) {
    case Source::kProcfs: return "procfs";
    case Source::kLibvirt: return "libvirt";
    case Source::kInventory: return "inventory";
  }
  return "unknown";
}

}  // namespace hvtel::model
