#pragma once

// What every fuzz target shares: the libFuzzer entry point each one defines, and a check that
// stops the run (a crash libFuzzer reports, with the input saved) when an invariant breaks.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace leadflow::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

/// Aborts with `what` when `condition` is false: an invariant of the code under test broke.
inline void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace leadflow::fuzz
