#include "engine/data/idx_reader.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <span>
#include <stdexcept>
#include <vector>

#include "engine/errors.hpp"
#include "engine/memory.hpp"

namespace dtsim {
namespace {

constexpr std::uint32_t kImageMagic = 2051;
constexpr std::uint32_t kLabelMagic = 2049;
// Features and sample counts are ints elsewhere in dtsim; this keeps every product in range.
constexpr std::uint64_t kMaxValues = INT_MAX;

[[noreturn]] void fail(const std::string& path, const std::string& key,
                       const std::string& message) {
  throw DatasetError(SourcePlace{path}, key, message);
}

// Owns a zlib file handle. gzread passes plain files through unchanged, so one code path
// serves .gz and uncompressed files.
class GzReader {
 public:
  explicit GzReader(std::string path) : path_(std::move(path)) {
    errno = 0;
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr) {
      if (errno == ENOENT) fail(path_, "file", "file not found");
      fail(path_, "file", fmt::format("cannot open: {}", errno ? std::strerror(errno) : "zlib"));
    }
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  const std::string& path() const { return path_; }

  // Fills `bytes` as far as the file allows; returns how many bytes were read.
  std::size_t read(std::span<unsigned char> bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      // gzread takes an unsigned and returns an int, so read in chunks well below INT_MAX.
      const auto chunk =
          static_cast<unsigned>(std::min<std::size_t>(bytes.size() - done, 1u << 30));
      const int got = gzread(file_, bytes.data() + done, chunk);
      if (got < 0) {
        int code = 0;
        const char* what = gzerror(file_, &code);
        if (code == Z_ERRNO) {
          fail(path_, "file", fmt::format("cannot read: {}", std::strerror(errno)));
        }
        fail(path_, "gzip", fmt::format("corrupt gzip stream ({})", what));
      }
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

// Reads `N` big-endian 32-bit header fields.
template <std::size_t N>
std::array<std::uint32_t, N> read_header(GzReader& in) {
  std::array<unsigned char, 4 * N> bytes{};
  const std::size_t got = in.read(bytes);
  if (got < bytes.size()) {
    fail(in.path(), "header",
         fmt::format("file ends inside the IDX header: expected {} bytes, found {}", bytes.size(),
                     got));
  }
  std::array<std::uint32_t, N> fields{};
  for (std::size_t i = 0; i < N; ++i) {
    fields[i] = std::uint32_t{bytes[4 * i]} << 24 | std::uint32_t{bytes[4 * i + 1]} << 16 |
                std::uint32_t{bytes[4 * i + 2]} << 8 | std::uint32_t{bytes[4 * i + 3]};
  }
  return fields;
}

void check_magic(const GzReader& in, std::uint32_t found, std::uint32_t expected) {
  if (found == expected) return;
  const char* kind = expected == kImageMagic ? "IDX3 image file" : "IDX1 label file";
  std::string hint;
  if (found == kImageMagic) hint = "; this looks like an image file";
  if (found == kLabelMagic) hint = "; this looks like a label file";
  fail(in.path(), "magic",
       fmt::format("not an {}: expected magic number {} (0x{:08x}), found {} (0x{:08x}){}", kind,
                   expected, expected, found, found, hint));
}

std::vector<unsigned char> read_body(GzReader& in, std::uint64_t bytes, const std::string& what) {
  std::vector<unsigned char> body;
  resize_large(body, static_cast<std::size_t>(bytes));
  const std::size_t got = in.read(body);
  if (got < body.size()) {
    fail(in.path(), "data",
         fmt::format("file is truncated: expected {} bytes of {} after the header, found {}", bytes,
                     what, got));
  }
  return body;
}

// Returns the path of `base`.gz or `base` in `dir`, or "" when neither exists.
std::string find_file(const std::filesystem::path& dir, const std::string& base) {
  std::error_code ec;
  for (const std::string& candidate : {base + ".gz", base}) {
    const std::filesystem::path p = dir / candidate;
    if (std::filesystem::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

}  // namespace

Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 const std::string& name) {
  return read_idx(images_path, labels_path, name, {});
}

Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 const std::string& name, const RowPick& pick) {
  GzReader images(images_path);
  const auto [image_magic, count, rows, cols] = read_header<4>(images);
  check_magic(images, image_magic, kImageMagic);
  if (rows == 0 || cols == 0) {
    fail(images_path, "dims",
         fmt::format("images must have at least 1 row and 1 column, found {} x {}", rows, cols));
  }
  const std::uint64_t pixels = std::uint64_t{rows} * cols;
  if (pixels > kMaxValues || count * pixels > kMaxValues) {
    fail(images_path, "dims",
         fmt::format("{} images of {} x {} pixels exceed the limit of {} values; the header is "
                     "probably corrupt",
                     count, rows, cols, kMaxValues));
  }
  if (count == 0) fail(images_path, "count", "empty dataset: expected at least 1 image, found 0");

  GzReader labels(labels_path);
  const auto [label_magic, label_count] = read_header<2>(labels);
  check_magic(labels, label_magic, kLabelMagic);
  if (label_count != count) {
    fail(labels_path, "count",
         fmt::format("expected one label per image: {} holds {} images, this file {} labels",
                     images_path, count, label_count));
  }

  const std::vector<unsigned char> pixel_bytes = read_body(
      images, count * pixels, fmt::format("pixels ({} images of {} x {})", count, rows, cols));
  const std::vector<unsigned char> label_bytes =
      read_body(labels, label_count, fmt::format("labels ({} labels)", label_count));

  Dataset d;
  d.name = name;
  d.task = LearningTask::kClassification;
  d.channels = 1;
  d.height = static_cast<int>(rows);
  d.width = static_cast<int>(cols);
  d.features = static_cast<int>(pixels);
  // Every label counts for the class count, whichever samples are kept.
  int max_label = 0;
  for (const unsigned char l : label_bytes) max_label = std::max(max_label, int{l});
  d.classes = max_label < 10 ? 10 : max_label + 1;
  d.outputs = d.classes;
  std::vector<std::uint32_t> keep;
  if (pick) {
    keep = pick(count);
  } else {
    keep.resize(count);
    std::iota(keep.begin(), keep.end(), 0u);
  }
  resize_large(d.x, keep.size() * pixels);
  d.labels.resize(keep.size());
  float* x = d.x.data();
  for (std::size_t i = 0; i < keep.size(); ++i) {
    if (keep[i] >= count) {  // (a caller bug, not bad input)
      throw std::out_of_range(fmt::format("read_idx: row {} of {} samples", keep[i], count));
    }
    const unsigned char* from = pixel_bytes.data() + keep[i] * pixels;
    for (std::uint64_t j = 0; j < pixels; ++j) *x++ = from[j] / 255.0f;
    d.labels[i] = label_bytes[keep[i]];
  }
  return d;
}

DatasetPair load_fashion_mnist(const std::string& dir) { return load_fashion_mnist(dir, {}, {}); }

DatasetPair load_fashion_mnist(const std::string& dir, const RowPick& train, const RowPick& test) {
  const std::array<std::string, 4> bases = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  std::array<std::string, 4> paths;
  std::string missing;
  for (std::size_t i = 0; i < bases.size(); ++i) {
    paths[i] = find_file(dir, bases[i]);
    if (paths[i].empty()) missing += (missing.empty() ? "" : ", ") + bases[i] + "[.gz]";
  }
  if (!missing.empty()) {
    fail(dir, "data.path",
         fmt::format("Fashion-MNIST not found in directory {} (missing {}); install Debian's "
                     "package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or set "
                     "[data] path to a directory holding the four IDX files",
                     dir, missing));
  }
  DatasetPair pair{read_idx(paths[0], paths[1], "fashion-mnist", train),
                   read_idx(paths[2], paths[3], "fashion-mnist", test)};
  if (pair.test.height != pair.train.height || pair.test.width != pair.train.width) {
    fail(paths[2], "dims",
         fmt::format("test images are {} x {}, expected {} x {} like the training images",
                     pair.test.height, pair.test.width, pair.train.height, pair.train.width));
  }
  // A model sized from one set must accept the labels of the other.
  pair.train.classes = pair.test.classes = std::max(pair.train.classes, pair.test.classes);
  pair.train.outputs = pair.test.outputs = pair.train.classes;
  return pair;
}

}  // namespace dtsim
