// Reader for the IDX file format used by MNIST and Fashion-MNIST.
//
// An IDX image file ("idx3-ubyte") is a big-endian header — magic 0x00000803 (2051), image
// count, rows, columns, each a 32-bit unsigned integer — followed by count * rows * cols
// unsigned bytes, one per pixel, row-major. An IDX label file ("idx1-ubyte") is magic
// 0x00000801 (2049) and a count, followed by one unsigned byte per label.
//
// Files are read through zlib, so gzip-compressed (".gz") and plain files both work.
// Trailing bytes after the amount the header announces are ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/data/dataset.hpp"

namespace dtsim {

// Where Debian's package `dataset-fashion-mnist` installs the four Fashion-MNIST files.
constexpr const char* kFashionMnistDefaultPath = "/usr/share/datasets/fashion-mnist";

// Reads one image file and its label file into a classification dataset named `name`.
//
// Pixels become floats in [0, 1] (byte / 255). The result has channels = 1, height = rows,
// width = cols, features = rows * cols, classes = 10 when every label is below 10 and
// max label + 1 otherwise, outputs = classes.
//
// Throws DatasetError, with SourcePlace.file the offending path and key:
//   "file"   the file is missing or cannot be opened or read;
//   "gzip"   the file starts like gzip but its stream is corrupt;
//   "magic"  the magic number is not 2051 (images) or 2049 (labels);
//   "header" the file ends inside the header;
//   "data"   the file ends before the count * rows * cols pixels (or count labels) announced;
//   "count"  zero images, or the label count differs from the image count (names both files);
//   "dims"   zero rows or columns, or more than 2^31 - 1 pixel values in total.
// Messages say what was expected and what was found.
Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 const std::string& name);

// Which of a file's `count` samples to keep, in the order to keep them (each below count).
// It may throw (e.g. an InputError when it asks for more samples than there are).
using RowPick = std::function<std::vector<std::uint32_t>(std::size_t count)>;

// read_idx keeping only the samples `pick` chooses: select_rows(read_idx(...), rows) without
// converting the others. Loading a few hundred samples converts a few hundred.
Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 const std::string& name, const RowPick& pick);

// Loads Fashion-MNIST from `dir`, which must hold train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each either
// gzipped (".gz", preferred when both exist) or plain. Both datasets are named "fashion-mnist"
// and get the same class count (the larger of the two read_idx results).
//
// Throws DatasetError with key "data.path" (SourcePlace.file = `dir`) when a file is missing;
// the message says to install Debian's package dataset-fashion-mnist or set [data] path.
// Throws what read_idx throws for bad files, and key "dims" when train and test images differ
// in shape.
DatasetPair load_fashion_mnist(const std::string& dir);
// The same, keeping the training and test samples `train` and `test` pick.
DatasetPair load_fashion_mnist(const std::string& dir, const RowPick& train, const RowPick& test);

}  // namespace dtsim
