// The checks of a lossport tensor file that come before any allocation, without libtorch (see
// lossport/io/tensorfile.py for the format): "LPT1", uint32 LE header length n, n bytes of JSON
// header {"shape", "dtype", ...}, then exactly prod(shape) * itemsize bytes of data.
// tensorfile.hpp reads tensors with it; tensorfile_check.cpp fuzzes it with plain g++.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "json.hpp"

namespace tensorfile {

constexpr size_t kMaxDims = 32;
constexpr double kMaxSize = 9007199254740991.0;  // 2^53 - 1, the largest size a JSON reader holds exactly

struct Header {
  json::Value json;            // the header object, descriptive keys included
  std::vector<int64_t> shape;  // sizes, each at most kMaxSize
  std::string dtype;           // "float32" or "int64"
  size_t itemsize = 0;         // bytes per element
  size_t data_offset = 0;      // where the data starts in the file
  size_t data_bytes = 0;       // prod(shape) * itemsize: every byte after the header
};

inline void check_little_endian_host() {
  const uint16_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  if (first != 1) throw std::runtime_error("tensor files are little-endian; this host is not");
}

inline std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  try {
    return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  } catch (const std::ios_base::failure&) {  // a directory, for one
    throw std::runtime_error(path + ": cannot read");
  }
}

// The header of the tensor file whose bytes are `raw`, checked against the file size: the data
// is exactly the bytes after the header. Throws std::runtime_error naming `path` and the problem.
inline Header parse_header(const std::vector<char>& raw, const std::string& path) {
  using Type = json::Value::Type;
  const auto error = [&](const std::string& what) { return std::runtime_error(path + ": " + what); };
  if (raw.size() < 8 || std::string(raw.data(), 4) != "LPT1") {
    throw error("not a lossport tensor file (no LPT1 magic); make one with `lossport preprocess`");
  }
  uint32_t length = 0;  // little-endian, whatever the host
  for (int i = 7; i >= 4; --i) length = length << 8 | static_cast<unsigned char>(raw[i]);
  if (length > raw.size() - 8) {
    throw error("header length " + std::to_string(length) + " runs past the end of the file (" +
                std::to_string(raw.size()) + " bytes)");
  }

  Header header;
  try {
    header.json = json::parse(std::string(raw.data() + 8, length));
  } catch (const std::runtime_error& e) {
    throw error(std::string("corrupt tensor file header (") + e.what() + ")");
  }
  if (header.json.type != Type::Object) throw error("tensor file header is not a JSON object");
  const json::Value* shape = header.json.find("shape");
  const auto bad_shape = error("header 'shape' must be a list of at most " + std::to_string(kMaxDims) +
                               " sizes (integers from 0 to 2^53 - 1)");
  if (shape == nullptr || shape->type != Type::Array || shape->array.size() > kMaxDims) throw bad_shape;
  std::string shown;  // the shape, for messages
  for (const auto& dim : shape->array) {
    // An exact integer: not true, 2.5, 2.0 or 2e0 (as in Python), nor past what a double holds exactly.
    if (dim.type != Type::Number || !dim.integer || dim.number < 0 || dim.number > kMaxSize) throw bad_shape;
    header.shape.push_back(static_cast<int64_t>(dim.number));
    shown += (shown.empty() ? "" : ", ") + std::to_string(header.shape.back());
  }
  shown = "shape [" + shown + "]";
  const json::Value* dtype = header.json.find("dtype");
  if (dtype == nullptr || dtype->type != Type::String || (dtype->string != "float32" && dtype->string != "int64")) {
    throw error("header 'dtype' must be float32 or int64");
  }
  header.dtype = dtype->string;
  header.itemsize = header.dtype == "float32" ? 4 : 8;
  header.data_offset = 8 + static_cast<size_t>(length);

  // prod(shape) * itemsize, exact: the product of the nonzero sizes must fit in int64 (as in numpy
  // and libtorch), and a shape with a 0 holds no data at all.
  uint64_t bytes = header.itemsize;
  bool empty = false;
  for (const int64_t dim : header.shape) {
    if (dim == 0) {
      empty = true;
    } else if (bytes > static_cast<uint64_t>(INT64_MAX) / static_cast<uint64_t>(dim)) {
      throw error(shown + " of " + header.dtype + " is too large");
    } else {
      bytes *= static_cast<uint64_t>(dim);
    }
  }
  header.data_bytes = empty ? 0 : bytes;
  const size_t available = raw.size() - header.data_offset;
  if (header.data_bytes != available) {  // nothing may follow the data
    throw error(std::to_string(available) + " data bytes, but " + shown + " of " + header.dtype + " needs " +
                std::to_string(header.data_bytes) + " (truncated or corrupt file)");
  }
  return header;
}

}  // namespace tensorfile
