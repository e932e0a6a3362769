/**
 * The page: loads a scorer (`?model=URL`, default `model.onnx` next to the page, as
 * `lossport serve-web --model FILE` serves it; or a picked .onnx file), then scores every image
 * dropped or picked, one at a time: score, decision and, for a `--with-grad` artifact, the
 * saliency heatmap. `?threads=N` sets ONNX Runtime Web's WASM threads (more than one needs a
 * cross-origin-isolated page: serve-web sends the COOP/COEP headers).
 *
 * Everything runs here; images never leave the browser. For tests and measurements the page
 * keeps its state in `window.lossportWeb`: {state, model, threads, readyMs, results, message},
 * where each result is {file, score, logits, decision, gradient, resized, ms, runMs} or
 * {file, error}, and `document.body.dataset.state` is loading | ready | busy | no-model | error.
 */
import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';
import { ModelError, openScorer, overlay, saliency, THRESHOLD } from './scorer.mjs';

// The smallest module using a SIMD instruction (v128 i8x16.splat), as wasm-feature-detect has it.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

const state = { state: 'loading', model: null, threads: null, readyMs: null, results: [], message: null };
window.lossportWeb = state;
const $ = (selector) => document.querySelector(selector);
let scorer = null;
let queue = Promise.resolve();

function setState(name) {
  state.state = name;
  document.body.dataset.state = name;
}

/** One message for the whole page (`kind`: error or info); null hides it. */
function showMessage(text, kind = 'error') {
  state.message = text;
  const box = $('#message');
  box.hidden = text === null;
  box.className = kind;
  box.textContent = text || '';
}

function simdSupported() {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch (error) {
    return false;
  }
}

async function loadModel(bytes, name) {
  setState('loading');
  showMessage(`Loading ${name}…`, 'info');
  $('#results').replaceChildren();
  state.results = [];
  try {
    scorer = await openScorer(ort, bytes, name);
  } catch (error) {
    scorer = null;
    state.model = null;
    setState('error');
    showMessage(error instanceof ModelError ? error.message : `${name}: ${error.message}`);
    return;
  }
  const { contract } = scorer;
  state.model = {
    name,
    spec: scorer.metadata['lossport.spec'] || null,
    contract,
    withGrad: scorer.gradientName !== null,
    outputNames: scorer.session.outputNames,
  };
  state.threads = ort.env.wasm.numThreads;
  state.readyMs = performance.now();
  $('#model-name').textContent = name;
  $('#model-info').textContent =
    `${state.model.spec || 'scorer'}, ${contract.size[0]}×${contract.size[1]} ${contract.channel_order} ${contract.range} ${contract.layout}; ` +
    `${state.model.withGrad ? 'with gradient: heatmaps shown' : 'no gradient output: scores only (export --with-grad for heatmaps)'}; ` +
    `WASM, ${state.threads} thread${state.threads === 1 ? '' : 's'}`;
  showMessage(null);
  setState('ready');
}

async function loadModelFromUrl(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    response = null;
  }
  if (!response || !response.ok) {
    setState('no-model');
    showMessage(
      `No model at ${url}${response ? ` (HTTP ${response.status})` : ''}: start the page with ` +
      '`lossport serve-web --model FILE.onnx`, or pick an .onnx file above.', 'info');
    return;
  }
  await loadModel(new Uint8Array(await response.arrayBuffer()), decodeURIComponent(url.split('/').pop()));
}

function canvas(width, height, className) {
  const element = document.createElement('canvas');
  element.width = width;
  element.height = height;
  element.className = className;
  if (Math.max(width, height) < 200) element.classList.add('small'); // shown enlarged: sharp pixels
  return element;
}

/** The image at the contract's size, RGBA bytes; null when the browser cannot decode it. */
async function decode(file, [height, width]) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (error) {
    return null;
  }
  const resized = bitmap.width !== width || bitmap.height !== height ? [bitmap.height, bitmap.width] : null;
  const context = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  if (resized) {
    context.imageSmoothingEnabled = true;
    context.imageSmoothingQuality = 'high';
    context.drawImage(bitmap, 0, 0, width, height);
  } else {
    context.drawImage(bitmap, 0, 0); // exactly the file's pixels
  }
  bitmap.close();
  return { rgba: context.getImageData(0, 0, width, height).data, resized };
}

function card(file) {
  const article = document.createElement('article');
  article.className = 'result';
  article.dataset.file = file.name;
  const title = document.createElement('h2');
  title.textContent = file.name;
  article.append(title);
  $('#results').append(article);
  return article;
}

function fail(article, file, text) {
  article.classList.add('error');
  const line = document.createElement('p');
  line.className = 'error-message';
  line.textContent = text;
  article.append(line);
  state.results.push({ file: file.name, error: text });
}

async function scoreFile(file) {
  const article = card(file);
  if (!scorer) {
    fail(article, file, 'no scorer loaded: pick an .onnx file above first');
    return;
  }
  setState('busy');
  const started = performance.now();
  const { contract } = scorer;
  const [height, width] = contract.size;
  const image = await decode(file, contract.size);
  if (image === null) {
    fail(article, file, `${file.name} is not a readable image (this browser cannot decode it); use PNG, JPEG, BMP, GIF or WebP`);
    setState('ready');
    return;
  }
  let result;
  try {
    result = await scorer.score(image.rgba);
  } catch (error) {
    fail(article, file, `scoring failed: ${error.message}`);
    setState('ready');
    return;
  }
  const figures = document.createElement('div');
  figures.className = 'figures';
  const input = canvas(width, height, 'input');
  input.getContext('2d').putImageData(new ImageData(image.rgba, width, height), 0, 0);
  figures.append(input);
  if (result.gradient) {
    const heatmap = canvas(width, height, 'heatmap');
    const pixels = overlay(image.rgba, saliency(result.gradient, contract));
    heatmap.getContext('2d').putImageData(new ImageData(pixels, width, height), 0, 0);
    heatmap.title = '|∂score/∂pixel|, brighter = the score depends more on this pixel';
    heatmap.dataset.drawn = 'true';
    figures.append(heatmap);
  }
  const decision = result.score >= THRESHOLD ? 'real' : 'generated';
  const facts = document.createElement('p');
  facts.className = 'facts';
  facts.innerHTML = '<span class="score"></span> <span class="decision"></span> <span class="note"></span>';
  facts.querySelector('.score').textContent = result.score.toFixed(4);
  facts.querySelector('.decision').textContent = decision;
  facts.querySelector('.decision').classList.add(decision);
  if (image.resized) {
    facts.querySelector('.note').textContent =
      `resized ${image.resized[1]}×${image.resized[0]} → ${width}×${height} in the browser (close to, not exactly, lossport's resize)`;
  }
  article.dataset.score = String(result.score);
  article.dataset.decision = decision;
  article.append(figures, facts);
  const ms = performance.now() - started;
  state.results.push({ file: file.name, ...result, decision, resized: image.resized, ms });
  setState('ready');
}

function addImages(files) {
  for (const file of files) queue = queue.then(() => scoreFile(file));
  return queue;
}

async function start() {
  if (!simdSupported()) {
    setState('error');
    showMessage('This browser has no WebAssembly SIMD, which ONNX Runtime Web needs: use a current Chrome, Edge, Firefox or Safari (16.4 or later).');
    return;
  }
  const params = new URLSearchParams(location.search);
  ort.env.wasm.wasmPaths = new URL('./node_modules/onnxruntime-web/dist/', import.meta.url).href;
  ort.env.logLevel = 'error';
  if (params.has('threads')) ort.env.wasm.numThreads = Number(params.get('threads'));

  $('#model-file').addEventListener('change', async (event) => {
    const [file] = event.target.files;
    if (file) queue = queue.then(async () => loadModel(new Uint8Array(await file.arrayBuffer()), file.name));
  });
  $('#image-files').addEventListener('change', (event) => addImages(Array.from(event.target.files)));
  const drop = $('#drop');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    addImages(Array.from(event.dataTransfer.files));
  });
  queue = queue.then(() => loadModelFromUrl(params.get('model') || 'model.onnx'));
}

start();
