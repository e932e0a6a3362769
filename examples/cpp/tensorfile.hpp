// Read and write lossport tensor files (see lossport/io/tensorfile.py for the format):
// "LPT1", uint32 header length n, n bytes of JSON header, raw little-endian C-order data.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "json.hpp"
#include "tensorfile_header.hpp"  // parse_header: every check, before anything is allocated

namespace tensorfile {

struct TensorFile {
  torch::Tensor tensor;
  json::Value header;
};

inline torch::ScalarType scalar_type(const std::string& dtype) {
  if (dtype == "float32") return torch::kFloat32;
  if (dtype == "int64") return torch::kInt64;
  throw std::runtime_error("unsupported tensor file dtype \"" + dtype + "\" (float32 or int64)");
}

// The tensor and header of a tensor file; throws std::runtime_error naming the file and what is
// wrong with it. Allocates only once the header is checked against the file size.
inline TensorFile read(const std::string& path) {
  check_little_endian_host();
  const std::vector<char> raw = read_bytes(path);
  Header header = parse_header(raw, path);
  TensorFile file;
  file.tensor = torch::empty(header.shape, torch::TensorOptions().dtype(scalar_type(header.dtype)));
  if (header.data_bytes > 0) std::memcpy(file.tensor.data_ptr(), raw.data() + header.data_offset, header.data_bytes);
  file.header = std::move(header.json);
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
