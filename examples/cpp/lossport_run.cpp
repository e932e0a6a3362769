// lossport_run: run a lossport TorchScript artifact (the TIGAS scorer or any loss) with libtorch.
//
//   lossport_run ARTIFACT.pt INPUT.bin... [--save DIR]
//
// The inputs are lossport tensor files (`lossport preprocess`), one per artifact input, in the
// order of the artifact's `lossport.inputs` metadata. Prints one JSON object:
//   {"spec": ..., "outputs": {NAME: {"shape": [...], "values": [...]}}, "grad_norm": {NAME: L2 norm}}
// where gradient outputs (`--with-grad` artifacts) appear only as norms. `--save DIR` also
// writes every output, gradients included, to DIR/NAME.bin. Exit code 2 on bad input.
#include <torch/script.h>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "json.hpp"
#include "tensorfile.hpp"

namespace {

const char* const kMetadataKeys[] = {"lossport.spec", "lossport.inputs", "lossport.outputs",
                                     "lossport.with_grad", "lossport.preprocess"};

struct Arguments {
  std::string artifact;
  std::vector<std::string> inputs;
  std::string save_dir;
};

Arguments parse_arguments(int argc, char** argv) {
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
  if (positional.empty()) throw std::runtime_error("usage: lossport_run ARTIFACT.pt INPUT.bin... [--save DIR]");
  args.artifact = positional.front();
  args.inputs.assign(positional.begin() + 1, positional.end());
  return args;
}

std::string number(double value) {
  if (!std::isfinite(value)) return "null";
  std::ostringstream out;
  out << std::setprecision(9) << value;  // 9 significant digits round-trip a float32
  return out.str();
}

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Checks the inputs against the artifact's `lossport.inputs` (count, dtype, rank).
void check_inputs(const json::Value& specs, const std::vector<tensorfile::TensorFile>& files,
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
void check_contract(const json::Value& contract, const tensorfile::TensorFile& file, const std::string& path) {
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

int run(const Arguments& args) {
  torch::jit::ExtraFilesMap metadata;
  for (const char* key : kMetadataKeys) metadata[key] = "";
  torch::jit::Module module = torch::jit::load(args.artifact, torch::kCPU, metadata);
  if (metadata["lossport.inputs"].empty()) {
    throw std::runtime_error(args.artifact + ": not a lossport TorchScript artifact (no lossport.inputs metadata)");
  }
  module.eval();
  const json::Value inputs = json::parse(metadata["lossport.inputs"]);
  const json::Value outputs = json::parse(metadata["lossport.outputs"]);
  const bool with_grad = metadata["lossport.with_grad"] == "true";

  std::vector<tensorfile::TensorFile> files;
  for (const auto& path : args.inputs) files.push_back(tensorfile::read(path));
  check_inputs(inputs, files, args.inputs);
  if (!metadata["lossport.preprocess"].empty()) {
    check_contract(json::parse(metadata["lossport.preprocess"]), files.front(), args.inputs.front());
  }

  std::set<std::string> gradients;  // outputs named grad_<input> for each differentiable input
  if (with_grad) {
    for (const auto& spec : inputs.array) {
      if (spec.at("differentiable").boolean) gradients.insert("grad_" + spec.at("name").string);
    }
  }

  std::vector<torch::jit::IValue> arguments;
  for (const auto& file : files) arguments.emplace_back(file.tensor);
  // Gradient artifacts run autograd inside, so grad mode stays on for them only.
  torch::AutoGradMode grad_mode(with_grad);
  const torch::jit::IValue result = module.forward(arguments);
  std::vector<torch::Tensor> tensors;
  if (result.isTuple()) {
    for (const auto& item : result.toTupleRef().elements()) tensors.push_back(item.toTensor());
  } else {
    tensors.push_back(result.toTensor());
  }
  if (tensors.size() != outputs.array.size()) throw std::runtime_error("output count differs from lossport.outputs");

  std::string values_json, norms_json;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string& name = outputs.array[i].string;
    const torch::Tensor output = tensors[i].detach().to(torch::kFloat64).contiguous();
    if (!args.save_dir.empty()) tensorfile::write(args.save_dir + "/" + name + ".bin", tensors[i]);
    if (gradients.count(name)) {
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
  std::cout << "{\"spec\": " << quoted(metadata["lossport.spec"]) << ", \"outputs\": {" << values_json << "}";
  if (with_grad) std::cout << ", \"grad_norm\": {" << norms_json << "}";
  std::cout << "}" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_arguments(argc, argv));
  } catch (const c10::Error& error) {
    std::cerr << "error: " << error.what_without_backtrace() << "\n";
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
  }
  return 2;
}
