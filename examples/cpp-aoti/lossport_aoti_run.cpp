// lossport_aoti_run: run a lossport AOTInductor package (`lossport export ... --aoti`, a `.pt2`
// holding the scorer or a loss compiled to native code) with libtorch's AOTIModelPackageLoader.
//
//   lossport_aoti_run PACKAGE.pt2 INPUT.bin... [--save DIR]
//
// Inputs, output JSON and `--save` are those of examples/cpp's lossport_run (report.hpp, shared
// with it): the names, input order, gradient outputs and preprocessing contract come from the
// `lossport.*` entries of the package's AOTInductor metadata. A gradient package computes its
// gradients in the compiled graph, so nothing here runs autograd. Exit code 2 on bad input.
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "report.hpp"

namespace {

int run(const report::Arguments& args) {
  if (!std::ifstream(args.artifact)) throw std::runtime_error(args.artifact + ": cannot open");
  torch::inductor::AOTIModelPackageLoader loader(args.artifact);
  std::map<std::string, std::string> metadata;
  const auto package_metadata = loader.get_metadata();
  for (const char* key : report::kMetadataKeys) {
    const auto found = package_metadata.find(key);
    metadata[key] = found == package_metadata.end() ? "" : found->second;
  }
  const report::Artifact artifact = report::parse_metadata(metadata, args.artifact, "AOTInductor package");
  const std::vector<tensorfile::TensorFile> files = report::read_inputs(artifact, args.inputs);

  // A package runs on the device it was compiled for (`lossport export ... --aoti --device`).
  const auto device_key = package_metadata.find("AOTI_DEVICE_KEY");
  const bool cuda = device_key != package_metadata.end() && device_key->second == "cuda";
  const torch::Device device = cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  std::vector<torch::Tensor> inputs;
  for (const auto& file : files) inputs.push_back(file.tensor.to(device));
  c10::InferenceMode inference;
  std::vector<torch::Tensor> outputs = loader.run(inputs);
  for (auto& output : outputs) output = output.cpu();
  report::print(artifact, outputs, args.save_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return report::guarded_main([&] {
    return run(report::parse_arguments(argc, argv, "lossport_aoti_run PACKAGE.pt2 INPUT.bin... [--save DIR]"));
  });
}
