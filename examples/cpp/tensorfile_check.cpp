// tensorfile_check: check lossport tensor files with the C++ reader's checks, without libtorch
// (tests/examples/test_tensorfile_readers.py fuzzes them with it).
//
//   g++ -std=c++17 -O1 examples/cpp/tensorfile_check.cpp -o tensorfile_check
//   tensorfile_check [--values] FILE...
//
// Prints one JSON line per file: {"shape": [...], "dtype": ...}, with "values" (in C order;
// int64 as decimal strings, non-finite floats as "NaN", "Infinity", "-Infinity") under --values,
// or {"error": MESSAGE} with "error: MESSAGE" on stderr. Exit code 0 if all files are valid, else 2.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "tensorfile_header.hpp"

namespace {

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(c));
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string value(const tensorfile::Header& header, const std::vector<char>& raw, size_t i) {
  const char* at = raw.data() + header.data_offset + i * header.itemsize;
  if (header.dtype == "int64") {
    int64_t number = 0;
    std::memcpy(&number, at, 8);
    return quoted(std::to_string(number));
  }
  float number = 0;
  std::memcpy(&number, at, 4);
  if (std::isnan(number)) return "\"NaN\"";
  if (std::isinf(number)) return number > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", static_cast<double>(number));  // 9 digits round-trip a float32
  return text;
}

std::string check(const std::string& path, bool values) {
  const std::vector<char> raw = tensorfile::read_bytes(path);
  const tensorfile::Header header = tensorfile::parse_header(raw, path);
  std::string line = "{\"shape\": [";
  for (size_t d = 0; d < header.shape.size(); ++d) line += (d ? ", " : "") + std::to_string(header.shape[d]);
  line += "], \"dtype\": " + quoted(header.dtype);
  if (values) {
    line += ", \"values\": [";
    for (size_t i = 0; i < header.data_bytes / header.itemsize; ++i) line += (i ? ", " : "") + value(header, raw, i);
    line += "]";
  }
  return line + "}";
}

}  // namespace

int main(int argc, char** argv) {
  tensorfile::check_little_endian_host();
  const bool values = argc > 1 && std::string(argv[1]) == "--values";
  int status = 0;
  for (int i = values ? 2 : 1; i < argc; ++i) {
    try {
      std::cout << check(argv[i], values) << "\n";
    } catch (const std::runtime_error& error) {  // anything else is a bug: it aborts
      std::cout << "{\"error\": " << quoted(error.what()) << "}\n";
      std::cerr << "error: " << error.what() << "\n";
      status = 2;
    }
  }
  return status;
}
