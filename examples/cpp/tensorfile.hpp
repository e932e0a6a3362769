// Read and write lossport tensor files (see lossport/tensorfile.py for the format):
// "LPT1", uint32 header length n, n bytes of JSON header, raw little-endian C-order data.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "json.hpp"

namespace tensorfile {

struct TensorFile {
  torch::Tensor tensor;
  json::Value header;
};

inline void check_little_endian_host() {
  const uint16_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  if (first != 1) throw std::runtime_error("tensor files are little-endian; this host is not");
}

inline torch::ScalarType scalar_type(const std::string& dtype) {
  if (dtype == "float32") return torch::kFloat32;
  if (dtype == "int64") return torch::kInt64;
  throw std::runtime_error("unsupported tensor file dtype \"" + dtype + "\" (float32 or int64)");
}

inline TensorFile read(const std::string& path) {
  check_little_endian_host();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  const std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint32_t length = 0;
  if (raw.size() < 8 || std::string(raw.data(), 4) != "LPT1") {
    throw std::runtime_error(path + ": not a lossport tensor file (make one with `lossport preprocess`)");
  }
  std::memcpy(&length, raw.data() + 4, 4);
  if (raw.size() < 8 + static_cast<size_t>(length)) throw std::runtime_error(path + ": truncated header");

  TensorFile file;
  file.header = json::parse(std::string(raw.data() + 8, length));
  std::vector<int64_t> shape;
  for (const auto& dim : file.header.at("shape").array) shape.push_back(static_cast<int64_t>(dim.number));
  const auto type = scalar_type(file.header.at("dtype").string);
  file.tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
  const size_t bytes = file.tensor.numel() * file.tensor.element_size();
  if (raw.size() - 8 - length != bytes) {
    throw std::runtime_error(path + ": data size does not match the header's shape (truncated or corrupt)");
  }
  std::memcpy(file.tensor.data_ptr(), raw.data() + 8 + length, bytes);
  return file;
}

// Write `tensor` as float32 (or int64, if it is an integer tensor) with a minimal header.
inline void write(const std::string& path, const torch::Tensor& tensor) {
  check_little_endian_host();
  const bool integer = !torch::isFloatingType(tensor.scalar_type());
  const auto data = tensor.detach().to(torch::kCPU, integer ? torch::kInt64 : torch::kFloat32).contiguous();
  std::string header = "{\"shape\": [";
  for (int64_t i = 0; i < data.dim(); ++i) header += (i ? ", " : "") + std::to_string(data.size(i));
  header += std::string("], \"dtype\": \"") + (integer ? "int64" : "float32") + "\"}";
  header.append((8 - (8 + header.size()) % 8) % 8, ' ');  // data starts at a multiple of 8
  const uint32_t length = static_cast<uint32_t>(header.size());

  std::ofstream out(path, std::ios::binary);
  out.write("LPT1", 4);
  out.write(reinterpret_cast<const char*>(&length), 4);
  out.write(header.data(), length);
  out.write(static_cast<const char*>(data.data_ptr()), data.numel() * data.element_size());
  if (!out) throw std::runtime_error(path + ": cannot write");
}

}  // namespace tensorfile
