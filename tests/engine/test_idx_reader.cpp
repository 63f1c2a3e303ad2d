#include <doctest/doctest.h>
#include <zlib.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/data/idx_reader.hpp"
#include "engine/data/partition.hpp"
#include "engine/errors.hpp"

namespace dtsim {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = fs::temp_directory_path() /
            ("dtsim_idx_test_" + std::to_string(stamp) + "_" + std::to_string(++counter));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<unsigned char>(v >> shift));
  }
}

Bytes idx3(std::uint32_t magic, std::uint32_t count, std::uint32_t rows, std::uint32_t cols,
           const Bytes& pixels) {
  Bytes out;
  for (std::uint32_t v : {magic, count, rows, cols}) put_u32(out, v);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

Bytes idx1(std::uint32_t magic, std::uint32_t count, const Bytes& labels) {
  Bytes out;
  put_u32(out, magic);
  put_u32(out, count);
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

// 3 images of 2 x 3 pixels, chosen to include 0, 255 and values in between.
const Bytes kPixels = {0,  255, 1,   128, 7,   254,  //
                       10, 20,  30,  40,  50,  60,   //
                       99, 100, 101, 200, 201, 202};
const Bytes kLabels = {3, 0, 9};

DatasetError catch_dataset_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const DatasetError& e) {
    return e;
  }
  FAIL("expected a DatasetError");
  return DatasetError({}, "", "");
}

void check_error(const DatasetError& e, const std::string& file, const std::string& key,
                 const std::vector<std::string>& phrases) {
  CHECK(e.place().file == file);
  CHECK(e.key() == key);
  const std::string what = e.what();
  CHECK_MESSAGE(what.find(file) != std::string::npos, what);
  for (const std::string& phrase : phrases) {
    CHECK_MESSAGE(what.find(phrase) != std::string::npos, what);
  }
}

TEST_CASE("read_idx reads every pixel and label of plain and gzipped files") {
  TempDir dir;
  const std::string images = dir.file("images");
  const std::string labels = dir.file("labels");
  SUBCASE("plain") {
    write_plain(images, idx3(2051, 3, 2, 3, kPixels));
    write_plain(labels, idx1(2049, 3, kLabels));
  }
  SUBCASE("gzipped") {
    write_gz(images, idx3(2051, 3, 2, 3, kPixels));
    write_gz(labels, idx1(2049, 3, kLabels));
  }
  SUBCASE("gzipped images, plain labels") {
    write_gz(images, idx3(2051, 3, 2, 3, kPixels));
    write_plain(labels, idx1(2049, 3, kLabels));
  }

  const Dataset d = read_idx(images, labels, "tiny");
  CHECK(d.name == "tiny");
  CHECK(d.task == LearningTask::kClassification);
  CHECK(d.samples() == 3);
  CHECK(d.features == 6);
  CHECK(d.channels == 1);
  CHECK(d.height == 2);
  CHECK(d.width == 3);
  CHECK(d.classes == 10);
  CHECK(d.outputs == 10);
  REQUIRE(d.x.size() == kPixels.size());
  for (std::size_t i = 0; i < kPixels.size(); ++i) {
    CHECK(d.x[i] == doctest::Approx(kPixels[i] / 255.0).epsilon(1e-6));
  }
  CHECK(d.x[0] == 0.0f);
  CHECK(d.x[1] == 1.0f);
  CHECK(d.labels == std::vector<std::int32_t>{3, 0, 9});
}

TEST_CASE("read_idx with a pick keeps those samples in that order, as select_rows would") {
  TempDir dir;
  const std::string images = dir.file("images");
  const std::string labels = dir.file("labels");
  write_gz(images, idx3(2051, 3, 2, 3, kPixels));
  write_gz(labels, idx1(2049, 3, kLabels));
  std::size_t asked_for = 0;
  const Dataset d = read_idx(images, labels, "tiny", [&](std::size_t count) {
    asked_for = count;
    return std::vector<std::uint32_t>{2, 0};
  });
  CHECK(asked_for == 3);
  const Dataset all = read_idx(images, labels, "tiny");
  const std::vector<std::uint32_t> rows = {2, 0};
  const Dataset expected = select_rows(all, rows);
  CHECK(d.samples() == 2);
  CHECK(d.x == expected.x);  // (bit for bit)
  CHECK(d.labels == std::vector<std::int32_t>{9, 3});
  CHECK(d.classes == 10);
  CHECK(d.features == 6);
  // A pick's error comes out as it is.
  CHECK_THROWS_WITH_AS(read_idx(images, labels, "tiny",
                                [](std::size_t) -> std::vector<std::uint32_t> {
                                  throw std::runtime_error("too many");
                                }),
                       "too many", std::runtime_error);
}

TEST_CASE("read_idx takes the class count from the largest label when it is 10 or more") {
  TempDir dir;
  write_plain(dir.file("i"), idx3(2051, 3, 2, 3, kPixels));
  write_plain(dir.file("l"), idx1(2049, 3, {0, 12, 3}));
  const Dataset d = read_idx(dir.file("i"), dir.file("l"), "tiny");
  CHECK(d.classes == 13);
  CHECK(d.outputs == 13);
  CHECK(d.labels == std::vector<std::int32_t>{0, 12, 3});
}

TEST_CASE("read_idx rejects a wrong magic number, saying what it found and expected") {
  TempDir dir;
  const std::string images = dir.file("images");
  const std::string labels = dir.file("labels");
  SUBCASE("image file") {
    write_plain(images, idx3(2049, 3, 2, 3, kPixels));
    write_plain(labels, idx1(2049, 3, kLabels));
    check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), images, "magic",
                {"expected magic number 2051", "found 2049", "label file"});
  }
  SUBCASE("label file") {
    write_plain(images, idx3(2051, 3, 2, 3, kPixels));
    write_plain(labels, idx1(0x12345678, 3, kLabels));
    check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), labels, "magic",
                {"expected magic number 2049", "found 305419896", "0x12345678"});
  }
}

// One SUBCASE per truncation point; called once for plain and once for gzipped files.
void check_truncations(const TempDir& dir, bool gz) {
  const std::string images = dir.file("images");
  const std::string labels = dir.file("labels");
  const Bytes full_images = idx3(2051, 3, 2, 3, kPixels);
  const Bytes full_labels = idx1(2049, 3, kLabels);
  const auto put = [gz](const std::string& path, const Bytes& bytes) {
    gz ? write_gz(path, bytes) : write_plain(path, bytes);
  };

  SUBCASE("image header") {
    put(images, Bytes(full_images.begin(), full_images.begin() + 10));
    put(labels, full_labels);
    check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), images, "header",
                {"expected 16 bytes, found 10"});
  }
  SUBCASE("label header") {
    put(images, full_images);
    put(labels, Bytes(full_labels.begin(), full_labels.begin() + 5));
    check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), labels, "header",
                {"expected 8 bytes, found 5"});
  }
  SUBCASE("image body") {
    put(images, Bytes(full_images.begin(), full_images.end() - 7));
    put(labels, full_labels);
    check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), images, "data",
                {"expected 18 bytes", "3 images of 2 x 3", "found 11"});
  }
  SUBCASE("label body") {
    put(images, full_images);
    put(labels, Bytes(full_labels.begin(), full_labels.end() - 1));
    check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), labels, "data",
                {"expected 3 bytes", "found 2"});
  }
}

TEST_CASE("read_idx rejects truncated files, saying how many bytes it expected and found") {
  TempDir dir;
  SUBCASE("plain") { check_truncations(dir, false); }
  SUBCASE("gzipped") { check_truncations(dir, true); }
}

TEST_CASE("read_idx rejects a gzip file cut short as truncated") {
  TempDir dir;
  const std::string images = dir.file("images.gz");
  const std::string labels = dir.file("labels");
  // Pseudo-random pixels do not compress, so cutting the file in half cuts the pixel data.
  Bytes pixels(3 * 40 * 40);
  std::uint32_t state = 12345;
  for (unsigned char& p : pixels) {
    state = state * 1664525u + 1013904223u;
    p = static_cast<unsigned char>(state >> 24);
  }
  write_gz(images, idx3(2051, 3, 40, 40, pixels));
  write_plain(labels, idx1(2049, 3, kLabels));
  fs::resize_file(images, fs::file_size(images) / 2);
  check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), images, "data",
              {"expected 4800 bytes", "3 images of 40 x 40"});
}

TEST_CASE("read_idx rejects a corrupt gzip stream") {
  TempDir dir;
  const std::string images = dir.file("images.gz");
  const std::string labels = dir.file("labels");
  // A valid gzip header (magic, deflate, no flags) followed by bytes that are not deflate data.
  Bytes bad = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03};
  for (int i = 0; i < 64; ++i) bad.push_back(0xff);
  write_plain(images, bad);
  write_plain(labels, idx1(2049, 3, kLabels));
  check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), images, "gzip",
              {"corrupt gzip stream"});
}

TEST_CASE("read_idx rejects garbage that is neither gzip nor IDX as a wrong magic number") {
  TempDir dir;
  const std::string images = dir.file("images");
  const std::string text = "hello, this is not an IDX file at all\n";
  write_plain(images, Bytes(text.begin(), text.end()));
  write_plain(dir.file("labels"), idx1(2049, 3, kLabels));
  // "hell" read as a big-endian 32-bit number.
  check_error(catch_dataset_error([&] { read_idx(images, dir.file("labels"), "t"); }), images,
              "magic", {"expected magic number 2051", "found 1751477356"});
}

TEST_CASE("read_idx rejects different image and label counts, naming both") {
  TempDir dir;
  const std::string images = dir.file("images");
  const std::string labels = dir.file("labels");
  write_plain(images, idx3(2051, 3, 2, 3, kPixels));
  write_plain(labels, idx1(2049, 4, {1, 2, 3, 4}));
  check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), labels, "count",
              {images, "3 images", "4 labels"});
}

TEST_CASE("read_idx rejects an empty dataset") {
  TempDir dir;
  const std::string images = dir.file("images");
  write_plain(images, idx3(2051, 0, 2, 3, {}));
  write_plain(dir.file("labels"), idx1(2049, 0, {}));
  check_error(catch_dataset_error([&] { read_idx(images, dir.file("labels"), "t"); }), images,
              "count", {"expected at least 1 image, found 0"});
}

TEST_CASE("read_idx rejects zero or absurd image dimensions") {
  TempDir dir;
  const std::string images = dir.file("images");
  const std::string labels = dir.file("labels");
  write_plain(labels, idx1(2049, 3, kLabels));
  SUBCASE("zero rows") {
    write_plain(images, idx3(2051, 3, 0, 3, {}));
    check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), images, "dims",
                {"found 0 x 3"});
  }
  SUBCASE("zero columns") {
    write_plain(images, idx3(2051, 3, 2, 0, {}));
    check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), images, "dims",
                {"found 2 x 0"});
  }
  SUBCASE("more than 2^31 values") {
    write_plain(images, idx3(2051, 70000, 100, 1000, kPixels));
    check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), images, "dims",
                {"70000 images of 100 x 1000", "2147483647"});
  }
  SUBCASE("one image larger than 2^31 values") {
    write_plain(images, idx3(2051, 1, 0xffffffffu, 0xffffffffu, kPixels));
    check_error(catch_dataset_error([&] { read_idx(images, labels, "t"); }), images, "dims",
                {"4294967295 x 4294967295"});
  }
}

TEST_CASE("read_idx reports a missing file") {
  TempDir dir;
  const std::string images = dir.file("images");
  const std::string missing = dir.file("no-such-labels");
  SUBCASE("images") {
    check_error(catch_dataset_error([&] { read_idx(dir.file("nope"), missing, "t"); }),
                dir.file("nope"), "file", {"not found"});
  }
  SUBCASE("labels") {
    write_plain(images, idx3(2051, 3, 2, 3, kPixels));
    check_error(catch_dataset_error([&] { read_idx(images, missing, "t"); }), missing, "file",
                {"not found"});
  }
}

TEST_CASE("load_fashion_mnist on a directory without the files says how to get them") {
  TempDir dir;
  const DatasetError e = catch_dataset_error([&] { load_fashion_mnist(dir.path()); });
  check_error(e, dir.path(), "data.path",
              {"dataset-fashion-mnist", "apt-get install dataset-fashion-mnist", "[data] path",
               "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"});
}

TEST_CASE("load_fashion_mnist reads gzipped or plain files from a directory") {
  TempDir dir;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx3(2051, 3, 2, 3, kPixels));
  write_plain(dir.file("train-labels-idx1-ubyte"), idx1(2049, 3, kLabels));
  write_plain(dir.file("t10k-images-idx3-ubyte"), idx3(2051, 1, 2, 3, Bytes(6, 51)));
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx1(2049, 1, {7}));
  const DatasetPair p = load_fashion_mnist(dir.path());
  CHECK(p.train.name == "fashion-mnist");
  CHECK(p.test.name == "fashion-mnist");
  CHECK(p.train.samples() == 3);
  CHECK(p.test.samples() == 1);
  CHECK(p.train.labels == std::vector<std::int32_t>{3, 0, 9});
  CHECK(p.test.labels == std::vector<std::int32_t>{7});
  CHECK(p.test.x[5] == doctest::Approx(0.2));
}

TEST_CASE("load_fashion_mnist rejects test images of another shape") {
  TempDir dir;
  write_plain(dir.file("train-images-idx3-ubyte"), idx3(2051, 3, 2, 3, kPixels));
  write_plain(dir.file("train-labels-idx1-ubyte"), idx1(2049, 3, kLabels));
  write_plain(dir.file("t10k-images-idx3-ubyte"), idx3(2051, 1, 3, 2, Bytes(6, 51)));
  write_plain(dir.file("t10k-labels-idx1-ubyte"), idx1(2049, 1, {7}));
  check_error(catch_dataset_error([&] { load_fashion_mnist(dir.path()); }),
              dir.file("t10k-images-idx3-ubyte"), "dims", {"3 x 2", "expected 2 x 3"});
}

TEST_CASE("load_fashion_mnist reads the installed Fashion-MNIST") {
  if (!fs::exists(kFashionMnistDefaultPath)) {
    MESSAGE("skipped: " << kFashionMnistDefaultPath
                        << " is absent (apt-get install dataset-fashion-mnist)");
    return;
  }
  const DatasetPair p = load_fashion_mnist(kFashionMnistDefaultPath);
  CHECK(p.train.samples() == 60000);
  CHECK(p.test.samples() == 10000);
  CHECK(p.train.features == 784);
  CHECK(p.train.height == 28);
  CHECK(p.train.width == 28);
  CHECK(p.train.classes == 10);
  CHECK(p.test.classes == 10);
  std::array<int, 10> per_class{};
  for (const std::int32_t l : p.train.labels) {
    REQUIRE(l >= 0);
    REQUIRE(l < 10);
    ++per_class[static_cast<std::size_t>(l)];
  }
  for (const int count : per_class) CHECK(count == 6000);
  const auto [lo, hi] = std::minmax_element(p.train.x.begin(), p.train.x.end());
  CHECK(*lo == 0.0f);
  CHECK(*hi == 1.0f);

  // Loading a shuffled subset converts only it, and equals shuffling and taking after the load.
  const auto take = [](std::size_t n, std::uint32_t stream) {
    return [n, stream](std::size_t have) { return shuffled_subset(have, n, 7, stream); };
  };
  const DatasetPair some = load_fashion_mnist(kFashionMnistDefaultPath, take(300, 0), take(0, 1));
  DatasetPair expected = p;
  shuffle_and_take(expected.train, 300, 7, 0);
  shuffle_and_take(expected.test, 0, 7, 1);
  CHECK(some.train.samples() == 300);
  CHECK(some.train.x == expected.train.x);
  CHECK(some.train.labels == expected.train.labels);
  CHECK(some.test.samples() == 10000);
  CHECK(some.test.x == expected.test.x);
  CHECK(some.test.labels == expected.test.labels);
}

}  // namespace
}  // namespace dtsim
