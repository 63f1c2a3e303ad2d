#include "engine/errors.hpp"

namespace dtsim {
namespace {

std::string describe(const SourcePlace& place, const std::string& key, const std::string& message) {
  std::string text;
  if (!place.file.empty()) {
    text += place.file;
    if (place.line > 0) {
      text += ':' + std::to_string(place.line);
      if (place.column > 0) text += ':' + std::to_string(place.column);
    }
    text += ": ";
  }
  if (!key.empty()) text += key + ": ";
  return text + message;
}

}  // namespace

InputError::InputError(SourcePlace place, std::string key, std::string message)
    : std::runtime_error(describe(place, key, message)),
      place_(std::move(place)),
      key_(std::move(key)),
      message_(std::move(message)) {}

}  // namespace dtsim
