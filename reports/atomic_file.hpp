// Files that appear whole or not at all.
//
// An AtomicFile writes to "NAME.partial" and renames it to NAME on commit(), so a reader never
// sees half a file under the final name. Streaming writers flush after each row, so an
// interrupted run still leaves a readable NAME.partial. Not thread-safe; one writer per file.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace dtsim {

class AtomicFile {
 public:
  // Opens DIR/NAME.partial for writing; throws std::runtime_error naming the path on failure.
  explicit AtomicFile(std::filesystem::path path);
  ~AtomicFile();  // removes the .partial file if commit() was never called
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view text);
  void flush();
  // Closes and renames to the final name; throws on I/O errors.
  void commit();

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path partial_;
  std::FILE* file_ = nullptr;
};

// Writes `text` to `path` atomically.
void write_file_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace dtsim
