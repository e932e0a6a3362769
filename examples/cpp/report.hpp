// What the C++ runners share (lossport_run for TorchScript, examples/cpp-aoti's lossport_aoti_run
// for AOTInductor packages): reading and checking the input tensor files against the artifact's
// `lossport.*` metadata, and printing one JSON object
//   {"spec": ..., "outputs": {NAME: {"shape": [...], "values": [...]}}, "grad_norm": {NAME: L2 norm}}
// where gradient outputs (`--with-grad` artifacts) appear only as norms; `--save DIR` also writes
// every output, gradients included, to DIR/NAME.bin.
#pragma once

#include <torch/script.h>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "json.hpp"
#include "tensorfile.hpp"

namespace report {

// The metadata keys the runners read (JSON values, as strings).
const char* const kMetadataKeys[] = {"lossport.spec", "lossport.inputs", "lossport.outputs",
                                     "lossport.with_grad", "lossport.preprocess"};

struct Arguments {
  std::string artifact;
  std::vector<std::string> inputs;
  std::string save_dir;
};

inline Arguments parse_arguments(int argc, char** argv, const std::string& usage) {
  Arguments args;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--save" && i + 1 < argc) {
      args.save_dir = argv[++i];
    } else if (arg.rfind("--", 0) == 0) {
      throw std::runtime_error("unknown option " + arg);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.empty()) throw std::runtime_error("usage: " + usage);
  args.artifact = positional.front();
  args.inputs.assign(positional.begin() + 1, positional.end());
  return args;
}

inline std::string number(double value) {
  if (!std::isfinite(value)) return "null";
  std::ostringstream out;
  out << std::setprecision(9) << value;  // 9 significant digits round-trip a float32
  return out.str();
}

inline std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Checks the inputs against the artifact's `lossport.inputs` (count, dtype, rank).
inline void check_inputs(const json::Value& specs, const std::vector<tensorfile::TensorFile>& files,
                         const std::vector<std::string>& paths) {
  if (specs.array.size() != files.size()) {
    std::string names;
    for (const auto& spec : specs.array) names += " " + spec.at("name").string;
    throw std::runtime_error("the artifact takes " + std::to_string(specs.array.size()) +
                             " input file(s), in this order:" + names + "; got " + std::to_string(files.size()));
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& spec = specs.array[i];
    const auto& tensor = files[i].tensor;
    if (tensor.scalar_type() != tensorfile::scalar_type(spec.at("dtype").string) ||
        static_cast<size_t>(tensor.dim()) != spec.at("shape").array.size()) {
      throw std::runtime_error(paths[i] + ": input " + spec.at("name").string + " must be " +
                               spec.at("dtype").string + " of rank " + std::to_string(spec.at("shape").array.size()));
    }
  }
}

// Warns on stderr when an image batch does not follow the model's preprocessing contract.
inline void check_contract(const json::Value& contract, const tensorfile::TensorFile& file, const std::string& path) {
  const auto& size = contract.at("size").array;
  const auto& tensor = file.tensor;
  const json::Value* layout = contract.find("layout");
  const int64_t h = layout && layout->string == "NHWC" ? 1 : 2;  // index of the height
  if (tensor.dim() == 4 && (tensor.size(h) != static_cast<int64_t>(size[0].number) ||
                            tensor.size(h + 1) != static_cast<int64_t>(size[1].number))) {
    std::cerr << "warning: " << path << " is " << tensor.size(h) << "x" << tensor.size(h + 1)
              << ", the model's preprocessing contract says " << size[0].number << "x" << size[1].number
              << " (lossport preprocess --model ARTIFACT makes a matching batch)\n";
  }
  for (const char* key : {"range", "layout", "channel_order"}) {
    const json::Value* wanted = contract.find(key);
    const json::Value* given = file.header.find(key);
    if (wanted && given && wanted->string != given->string) {
      std::cerr << "warning: " << path << " has " << key << " " << given->string << ", the model expects "
                << wanted->string << "\n";
    }
  }
}

// An artifact's lossport metadata, parsed; `metadata` maps each of kMetadataKeys to its value,
// "" where absent.
struct Artifact {
  std::string spec;
  json::Value inputs;
  std::vector<std::string> outputs;
  bool with_grad = false;
  std::set<std::string> gradients;  // outputs named grad_<input> for each differentiable input
  json::Value preprocess;  // the preprocessing contract, if has_preprocess
  bool has_preprocess = false;
};

inline Artifact parse_metadata(std::map<std::string, std::string> metadata, const std::string& path,
                               const std::string& kind) {
  if (metadata["lossport.inputs"].empty() || metadata["lossport.outputs"].empty()) {
    throw std::runtime_error(path + ": not a lossport " + kind + " (no lossport.inputs metadata)");
  }
  Artifact artifact;
  artifact.spec = metadata["lossport.spec"];
  artifact.inputs = json::parse(metadata["lossport.inputs"]);
  for (const auto& name : json::parse(metadata["lossport.outputs"]).array) artifact.outputs.push_back(name.string);
  artifact.with_grad = metadata["lossport.with_grad"] == "true";
  if (artifact.with_grad) {
    for (const auto& spec : artifact.inputs.array) {
      if (spec.at("differentiable").boolean) artifact.gradients.insert("grad_" + spec.at("name").string);
    }
  }
  if (!metadata["lossport.preprocess"].empty()) {
    artifact.preprocess = json::parse(metadata["lossport.preprocess"]);
    artifact.has_preprocess = true;
  }
  return artifact;
}

// The input tensor files, checked against the artifact (and its preprocessing contract).
inline std::vector<tensorfile::TensorFile> read_inputs(const Artifact& artifact, const std::vector<std::string>& paths) {
  std::vector<tensorfile::TensorFile> files;
  for (const auto& path : paths) files.push_back(tensorfile::read(path));
  check_inputs(artifact.inputs, files, paths);
  if (artifact.has_preprocess) check_contract(artifact.preprocess, files.front(), paths.front());
  return files;
}

// Prints the JSON object described at the top of this file; saves every output under save_dir.
inline void print(const Artifact& artifact, const std::vector<torch::Tensor>& tensors, const std::string& save_dir) {
  if (tensors.size() != artifact.outputs.size()) {
    throw std::runtime_error("the artifact returned " + std::to_string(tensors.size()) +
                             " outputs, its lossport.outputs names " + std::to_string(artifact.outputs.size()));
  }
  std::string values_json, norms_json;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string& name = artifact.outputs[i];
    const torch::Tensor output = tensors[i].detach().to(torch::kFloat64).contiguous();
    if (!save_dir.empty()) tensorfile::write(save_dir + "/" + name + ".bin", tensors[i]);
    if (artifact.gradients.count(name)) {
      norms_json += (norms_json.empty() ? "" : ", ") + quoted(name) + ": " + number(output.norm().item<double>());
      continue;
    }
    std::string shape, values;
    for (int64_t d = 0; d < output.dim(); ++d) shape += (d ? ", " : "") + std::to_string(output.size(d));
    const double* data = output.data_ptr<double>();
    for (int64_t k = 0; k < output.numel(); ++k) values += (k ? ", " : "") + number(data[k]);
    values_json += (values_json.empty() ? "" : ", ") + quoted(name) + ": {\"shape\": [" + shape +
                   "], \"values\": [" + values + "]}";
  }
  std::cout << "{\"spec\": " << quoted(artifact.spec) << ", \"outputs\": {" << values_json << "}";
  if (artifact.with_grad) std::cout << ", \"grad_norm\": {" << norms_json << "}";
  std::cout << "}" << std::endl;
}

// Runs `body` and turns every error into one line on stderr and exit code 2.
template <typename Body>
int guarded_main(Body body) {
  try {
    return body();
  } catch (const c10::Error& error) {
    std::cerr << "error: " << error.what_without_backtrace() << "\n";
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
  }
  return 2;
}

}  // namespace report
