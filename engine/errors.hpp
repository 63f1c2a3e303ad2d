// Typed errors for bad user input (scenario files, dataset files, command-line values).
//
// Library code throws these and never exits; only `main` turns them into an exit code.
// Every error says where (file, and line/column when known), which key or field, and what
// was expected, so a user can fix the input without reading the source.
#pragma once

#include <stdexcept>
#include <string>

namespace dtsim {

// Where a bad value came from. `line`/`column` are 1-based; 0 means "not known".
struct SourcePlace {
  std::string file;
  int line = 0;
  int column = 0;
};

// Bad input. `what()` reads "FILE:LINE:COL: KEY: MESSAGE" with the unknown parts left out.
class InputError : public std::runtime_error {
 public:
  InputError(SourcePlace place, std::string key, std::string message);

  const SourcePlace& place() const { return place_; }
  const std::string& key() const { return key_; }
  const std::string& message() const { return message_; }

 private:
  SourcePlace place_;
  std::string key_;
  std::string message_;
};

// A dataset file that is missing, truncated or malformed.
class DatasetError : public InputError {
 public:
  using InputError::InputError;
};

}  // namespace dtsim
