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

#include <map>
#include <string>
#include <vector>

#include "report.hpp"

namespace {

int run(const report::Arguments& args) {
  torch::jit::ExtraFilesMap extra_files;
  for (const char* key : report::kMetadataKeys) extra_files[key] = "";
  torch::jit::Module module = torch::jit::load(args.artifact, torch::kCPU, extra_files);
  const report::Artifact artifact = report::parse_metadata(
      std::map<std::string, std::string>(extra_files.begin(), extra_files.end()), args.artifact,
      "TorchScript artifact");
  module.eval();
  const std::vector<tensorfile::TensorFile> files = report::read_inputs(artifact, args.inputs);

  std::vector<torch::jit::IValue> arguments;
  for (const auto& file : files) arguments.emplace_back(file.tensor);
  // Gradient artifacts run autograd inside, so grad mode stays on for them only.
  torch::AutoGradMode grad_mode(artifact.with_grad);
  const torch::jit::IValue result = module.forward(arguments);
  std::vector<torch::Tensor> tensors;
  if (result.isTuple()) {
    for (const auto& item : result.toTupleRef().elements()) tensors.push_back(item.toTensor());
  } else {
    tensors.push_back(result.toTensor());
  }
  report::print(artifact, tensors, args.save_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return report::guarded_main([&] {
    return run(report::parse_arguments(argc, argv, "lossport_run ARTIFACT.pt INPUT.bin... [--save DIR]"));
  });
}
