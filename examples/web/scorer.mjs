/**
 * An exported lossport scorer (TIGAS, ONNX) in ONNX Runtime Web, without the page around it:
 * what a model must be to score images, pixels to the model's input by its preprocessing
 * contract, one image's score and gradient, and the saliency heatmap drawn from the gradient.
 *
 * A scorer has one image-batch input and a `score` output ([B, 1], 1 = real, 0 = generated);
 * lossport's artifacts also output `logits` ([B, 2], [generated, real]) and, exported
 * `--with-grad`, `grad_<input>` = d(1 - mean(score)) / d input. The preprocessing contract is
 * the model's `lossport.preprocess` metadata, {"size": [H, W], "range": "[0,1]" | "[-1,1]",
 * "channel_order": "RGB" | "BGR", "layout": "NCHW" | "NHWC"} (lossport/spec/preprocess.py);
 * without it, TIGAS's 256x256 [0,1] RGB NCHW.
 */
import { onnxMetadata } from './onnx-metadata.mjs';

export const DEFAULT_CONTRACT = Object.freeze({ size: [256, 256], range: '[0,1]', channel_order: 'RGB', layout: 'NCHW' });
/** Scores at or above this are called real, as `lossport score` does. */
export const THRESHOLD = 0.5;
const MAX_SIDE = 4096; // lossport/spec/limits.py MAX_IMAGE_SIDE
const CHOICES = { range: ['[0,1]', '[-1,1]'], channel_order: ['RGB', 'BGR'], layout: ['NCHW', 'NHWC'] };
const EXPORT_HINT = 'export a scorer with `lossport export tigas --format onnx` (add --with-grad for the heatmap)';

/** A model that this page cannot score with; its message says why, and what to do. */
export class ModelError extends Error {}

function firstLine(text) {
  return String(text).trim().split('\n')[0];
}

/** The preprocessing contract from the model's metadata, checked as lossport checks it. */
export function readContract(metadata, name) {
  const text = metadata['lossport.preprocess'];
  if (text === undefined) return { ...DEFAULT_CONTRACT };
  let contract;
  try {
    contract = { ...DEFAULT_CONTRACT, ...JSON.parse(text) };
  } catch (error) {
    throw new ModelError(`${name}: its preprocessing contract (lossport.preprocess) is not JSON`);
  }
  const { size } = contract;
  const sideOk = (s) => Number.isInteger(s) && s >= 1 && s <= MAX_SIDE;
  if (!Array.isArray(size) || size.length !== 2 || !size.every(sideOk)) {
    throw new ModelError(`${name}: its preprocessing contract has size ${JSON.stringify(size)}, expected [height, width] from 1 to ${MAX_SIDE}`);
  }
  for (const [key, allowed] of Object.entries(CHOICES)) {
    if (!allowed.includes(contract[key])) {
      throw new ModelError(`${name}: its preprocessing contract has ${key} ${JSON.stringify(contract[key])}, expected one of ${allowed.join(', ')}`);
    }
  }
  return contract;
}

/** Refuses, from lossport's metadata alone, an artifact that is not an image scorer (a loss). */
function checkLossportScorer(metadata, name) {
  if (!metadata['lossport.inputs']) return; // not made by lossport: the session decides
  const inputs = JSON.parse(metadata['lossport.inputs']);
  const outputs = JSON.parse(metadata['lossport.outputs'] || '[]');
  if (inputs.length !== 1 || inputs[0].shape.length !== 4 || !outputs.includes('score')) {
    const kind = metadata['lossport.kind'] ? ` (a ${metadata['lossport.kind']})` : '';
    throw new ModelError(
      `${name} is not an image scorer: it is lossport's exported ${metadata['lossport.spec']}${kind}, ` +
      `with inputs ${inputs.map((i) => i.name).join(', ')} and outputs ${outputs.join(', ')}; ${EXPORT_HINT}`);
  }
}

/**
 * Opens the model (the bytes of a .onnx file, `name` for messages) as a Scorer; a ModelError
 * when it is not an ONNX model or not a scorer.
 */
export async function openScorer(ort, bytes, name) {
  let metadata;
  try {
    metadata = onnxMetadata(bytes);
    checkLossportScorer(metadata, name);
  } catch (error) {
    if (error instanceof ModelError) throw error;
    throw new ModelError(`${name}: ${error.message}; ${EXPORT_HINT}`);
  }
  const contract = readContract(metadata, name);
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  } catch (error) {
    throw new ModelError(`${name}: ONNX Runtime Web cannot load it (${firstLine(error.message)})`);
  }
  if (session.inputNames.length !== 1) {
    throw new ModelError(`${name} is not an image scorer: it takes ${session.inputNames.length} inputs, expected one image batch; ${EXPORT_HINT}`);
  }
  return new Scorer(ort, session, metadata, contract);
}

/** Pixels (RGBA bytes, `contract.size`) -> the model's input tensor data and dims, batch of one. */
export function toInput(rgba, contract) {
  const [height, width] = contract.size;
  const pixels = height * width;
  const data = new Float32Array(3 * pixels);
  const channels = contract.channel_order === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const nchw = contract.layout === 'NCHW';
  const signed = contract.range === '[-1,1]';
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) {
      // float32 arithmetic, step by step, as lossport computes it in torch: x / 255 (* 2 - 1)
      let value = Math.fround(rgba[4 * i + channels[c]] / 255);
      if (signed) value = Math.fround(value * 2 - 1);
      data[nchw ? c * pixels + i : 3 * i + c] = value;
    }
  }
  return { data, dims: nchw ? [1, 3, height, width] : [1, height, width, 3] };
}

/** A scorer session with its contract; `score(rgba)` scores one image of the contract's size. */
export class Scorer {
  constructor(ort, session, metadata, contract) {
    this.ort = ort;
    this.session = session;
    this.metadata = metadata;
    this.contract = contract;
    this.inputName = session.inputNames[0];
    this.scoreName = session.outputNames.includes('score') ? 'score' : session.outputNames[0];
    this.logitsName = session.outputNames.includes('logits') ? 'logits' : null;
    const gradient = `grad_${this.inputName}`;
    this.gradientName = session.outputNames.includes(gradient) ? gradient : null;
  }

  /**
   * {score, logits, gradient, runMs}: gradient is the artifact's grad_<input> (input layout,
   * d(1 - score)/d input for a batch of one, so -d score/d input), null without --with-grad.
   */
  async score(rgba) {
    const { data, dims } = toInput(rgba, this.contract);
    const feeds = { [this.inputName]: new this.ort.Tensor('float32', data, dims) };
    const started = performance.now();
    const results = await this.session.run(feeds);
    const runMs = performance.now() - started;
    const score = results[this.scoreName];
    if (score.data.length !== 1) {
      throw new ModelError(`the model's ${this.scoreName} output has shape [${score.dims}], expected one score per image`);
    }
    const gradient = this.gradientName ? results[this.gradientName].data : null;
    return {
      score: Number(score.data[0]),
      logits: this.logitsName ? Array.from(results[this.logitsName].data, Number) : null,
      gradient,
      runMs,
    };
  }
}

/**
 * Saliency of each pixel from the gradient (input layout): max over channels of |d/d pixel|,
 * divided by its 99th percentile and clipped at 1 (so that a few pixels do not wash out the
 * rest). Float32Array of height * width in [0, 1].
 */
export function saliency(gradient, contract) {
  const [height, width] = contract.size;
  const pixels = height * width;
  const nchw = contract.layout === 'NCHW';
  const map = new Float32Array(pixels);
  for (let i = 0; i < pixels; i++) {
    let top = 0;
    for (let c = 0; c < 3; c++) top = Math.max(top, Math.abs(gradient[nchw ? c * pixels + i : 3 * i + c]));
    map[i] = top;
  }
  const sorted = Float32Array.from(map).sort();
  const scale = sorted[Math.min(pixels - 1, Math.floor(0.99 * pixels))] || sorted[pixels - 1] || 1;
  for (let i = 0; i < pixels; i++) map[i] = Math.min(1, map[i] / scale);
  return map;
}

// A dark-to-bright ramp (black, purple, red, orange, yellow), like matplotlib's inferno.
const RAMP = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];

function heatColor(t) {
  const x = t * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  return RAMP[i].map((a, k) => a + (RAMP[i + 1][k] - a) * f);
}

/** The image (RGBA bytes) with the saliency map over it: RGBA bytes of the same size. */
export function overlay(rgba, map) {
  const out = new Uint8ClampedArray(rgba.length);
  for (let i = 0; i < map.length; i++) {
    const color = heatColor(map[i]);
    const alpha = 0.25 + 0.7 * map[i]; // the image shows through where the gradient is small
    for (let c = 0; c < 3; c++) out[4 * i + c] = (1 - alpha) * rgba[4 * i + c] * 0.6 + alpha * color[c];
    out[4 * i + 3] = 255;
  }
  return out;
}
