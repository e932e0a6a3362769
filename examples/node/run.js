#!/usr/bin/env node
'use strict';
/**
 * Run a lossport ONNX artifact (the TIGAS scorer or any loss) with ONNX Runtime for Node.js.
 *
 *   node examples/node/run.js ARTIFACT.onnx INPUT.bin... [--save DIR]
 *
 * The inputs are lossport tensor files (`lossport preprocess`), one per artifact input, in the
 * order of the artifact's `lossport.inputs` metadata. An image batch is checked against the
 * model's preprocessing contract (`lossport.preprocess`: size, range, layout, channel order).
 * Prints one JSON object, the same as the C++ example:
 *   {"spec": ..., "outputs": {NAME: {"shape": [...], "values": [...]}}, "grad_norm": {NAME: L2 norm}}
 * where gradient outputs (`--with-grad` artifacts) appear only as norms. `--save DIR` also
 * writes every output, gradients included, to DIR/NAME.bin. Exit code 2 on bad input.
 */
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { onnxMetadata } = require('./onnx-metadata');
const tensorfile = require('./tensorfile');

function parseArguments(argv) {
  const positional = [];
  let save = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--save' && i + 1 < argv.length) save = argv[++i];
    else if (argv[i].startsWith('--')) throw new Error(`unknown option ${argv[i]}`);
    else positional.push(argv[i]);
  }
  if (positional.length === 0) throw new Error('usage: node run.js ARTIFACT.onnx INPUT.bin... [--save DIR]');
  return { artifact: positional[0], inputs: positional.slice(1), save };
}

/** Checks the input files against the artifact's `lossport.inputs` (count, dtype, rank). */
function checkInputs(specs, files, paths) {
  if (specs.length !== files.length) {
    throw new Error(`the artifact takes ${specs.length} input file(s), in this order: ` +
                    `${specs.map((s) => s.name).join(' ')}; got ${files.length}`);
  }
  specs.forEach((spec, i) => {
    const { header } = files[i];
    if (header.dtype !== spec.dtype || header.shape.length !== spec.shape.length) {
      throw new Error(`${paths[i]}: input ${spec.name} must be ${spec.dtype} of rank ${spec.shape.length}`);
    }
  });
}

/** Warns on stderr when an image batch does not follow the model's preprocessing contract. */
function checkContract(contract, file, filePath) {
  const [height, width] = contract.size;
  const shape = file.header.shape;
  const h = contract.layout === 'NHWC' ? 1 : 2; // index of the height
  if (shape.length === 4 && (shape[h] !== height || shape[h + 1] !== width)) {
    console.error(`warning: ${filePath} is ${shape[h]}x${shape[h + 1]}, the model's preprocessing contract ` +
                  `says ${height}x${width} (lossport preprocess --model ARTIFACT makes a matching batch)`);
  }
  for (const key of ['range', 'layout', 'channel_order']) {
    const given = file.header[key];
    if (given !== undefined && contract[key] !== undefined && given !== contract[key]) {
      console.error(`warning: ${filePath} has ${key} ${given}, the model expects ${contract[key]}`);
    }
  }
}

function l2norm(data) {
  let sum = 0;
  for (const value of data) sum += Number(value) * Number(value);
  return Math.sqrt(sum);
}

async function main() {
  const args = parseArguments(process.argv.slice(2));
  const model = fs.readFileSync(args.artifact);
  const metadata = onnxMetadata(model);
  if (!metadata['lossport.inputs']) {
    throw new Error(`${args.artifact}: not a lossport ONNX artifact (no lossport.inputs metadata)`);
  }
  const inputs = JSON.parse(metadata['lossport.inputs']);
  const outputs = JSON.parse(metadata['lossport.outputs']);
  const withGrad = metadata['lossport.with_grad'] === 'true';

  const files = args.inputs.map(tensorfile.read);
  checkInputs(inputs, files, args.inputs);
  if (metadata['lossport.preprocess']) {
    checkContract(JSON.parse(metadata['lossport.preprocess']), files[0], args.inputs[0]);
  }

  const session = await ort.InferenceSession.create(model);
  const feeds = {};
  inputs.forEach((spec, i) => {
    feeds[spec.name] = new ort.Tensor(spec.dtype, files[i].data, files[i].header.shape);
  });
  const results = await session.run(feeds);

  // Gradient graphs output grad_<input> for each differentiable input.
  const gradients = new Set(withGrad ? inputs.filter((s) => s.differentiable).map((s) => `grad_${s.name}`) : []);
  const report = { spec: metadata['lossport.spec'], outputs: {} };
  if (withGrad) report.grad_norm = {};
  for (const name of outputs) {
    const tensor = results[name];
    if (args.save) tensorfile.write(path.join(args.save, `${name}.bin`), tensor.dims, tensor.data);
    if (gradients.has(name)) report.grad_norm[name] = l2norm(tensor.data);
    else report.outputs[name] = { shape: Array.from(tensor.dims), values: Array.from(tensor.data, Number) };
  }
  console.log(JSON.stringify(report));
}

main().catch((error) => {
  console.error(`error: ${error.message}`);
  process.exit(2);
});
