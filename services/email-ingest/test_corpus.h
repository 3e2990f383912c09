#pragma once

// Test-only: the email corpus in testdata/, read by the parser, message and webhook tests.

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace leadflow::email {

/// The bytes of testdata/<name>, from $EMAIL_TESTDATA (set by ctest) or, run by hand from the
/// source root, services/email-ingest/testdata. Throws when the file is missing, so that a
/// renamed case fails instead of testing an empty message.
inline std::string Corpus(const std::string& name) {
  const char* dir = std::getenv("EMAIL_TESTDATA");
  std::string path = std::string(dir ? dir : "services/email-ingest/testdata") + "/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("missing corpus file " + path);
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace leadflow::email
