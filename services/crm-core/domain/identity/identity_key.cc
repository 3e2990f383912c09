#include "crm-core/domain/identity/identity_key.h"

namespace leadflow::crm {

std::string IdentityLockKey(const IdentityKey& key) { return key.kind + ":" + key.value; }

}  // namespace leadflow::crm
