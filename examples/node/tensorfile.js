'use strict';
/**
 * Read and write lossport tensor files (the format is documented in lossport/io/tensorfile.py):
 * "LPT1", uint32 LE header length n, n bytes of JSON header {"shape", "dtype", ...},
 * then the raw little-endian C-order data.
 */
const fs = require('fs');
const os = require('os');

const MAGIC = 'LPT1';
const ARRAYS = { float32: Float32Array, int64: BigInt64Array };
const MAX_DIMS = 32;
const MAX_DEPTH = 64; // arrays and objects nested deeper in the header are an error, as in C++

function checkHost() {
  if (os.endianness() !== 'LE') throw new Error('tensor files are little-endian; this host is not');
}

/** Whether `value` nests arrays and objects more than `levels` deep. */
function tooDeep(value, levels) {
  if (value === null || typeof value !== 'object') return false;
  return levels === 0 || Object.values(value).some((item) => tooDeep(item, levels - 1));
}

/**
 * {header, data}: the JSON header and a typed array (Float32Array or BigInt64Array). Throws an
 * Error naming the file and what is wrong with it; allocates only once the header is checked
 * against the file size.
 */
function read(path) {
  checkHost();
  const fail = (what) => new Error(`${path}: ${what}`);
  let raw;
  try {
    raw = fs.readFileSync(path);
  } catch (error) {
    throw fail(`cannot read (${error.code || error.message})`);
  }
  if (raw.length < 8 || raw.toString('latin1', 0, 4) !== MAGIC) {
    throw fail('not a lossport tensor file (no LPT1 magic); make one with `lossport preprocess`');
  }
  const length = raw.readUInt32LE(4);
  if (length > raw.length - 8) {
    throw fail(`header length ${length} runs past the end of the file (${raw.length} bytes)`);
  }
  let header;
  try { // strict UTF-8, and a BOM is an error as in Python
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw.subarray(8, 8 + length)));
  } catch (error) { // V8's message quotes the header: keep it one line of ASCII
    throw fail(`corrupt tensor file header (${error.message.replace(/[^\x20-\x7e]/g, '?')})`);
  }
  if (tooDeep(header, MAX_DEPTH)) throw fail(`corrupt tensor file header (nested deeper than ${MAX_DEPTH} levels)`);
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw fail('tensor file header is not a JSON object');
  }
  const { shape, dtype } = header;
  // Sizes are exact integers (isSafeInteger: up to 2^53 - 1, not true or 2.5); JSON.parse reads
  // 2.0 as 2, so JavaScript cannot tell them apart.
  if (!Array.isArray(shape) || shape.length > MAX_DIMS || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw fail(`header 'shape' must be a list of at most ${MAX_DIMS} sizes (integers from 0 to 2^53 - 1)`);
  }
  if (typeof dtype !== 'string' || !Object.hasOwn(ARRAYS, dtype)) {
    throw fail("header 'dtype' must be float32 or int64");
  }
  const TypedArray = ARRAYS[dtype];
  // prod(shape) * itemsize, exact (BigInt): the product of the nonzero sizes must fit in int64
  // (as in numpy and libtorch), and a shape with a 0 holds no data at all.
  const shown = `shape [${shape.join(', ')}] of ${dtype}`;
  const nonzero = shape.reduce((bytes, d) => (d === 0 ? bytes : bytes * BigInt(d)), BigInt(TypedArray.BYTES_PER_ELEMENT));
  if (nonzero > 2n ** 63n - 1n) throw fail(`${shown} is too large`);
  const needed = shape.includes(0) ? 0n : nonzero;
  const bytes = raw.subarray(8 + length);
  if (BigInt(bytes.length) !== needed) { // nothing may follow the data
    throw fail(`${bytes.length} data bytes, but ${shown} needs ${needed} (truncated or corrupt file)`);
  }
  const data = new TypedArray(bytes.length / TypedArray.BYTES_PER_ELEMENT);
  new Uint8Array(data.buffer).set(bytes); // a copy, aligned for the typed array
  return { header, data };
}

/** Write `data` (a Float32Array or BigInt64Array) of `shape` with a minimal header. */
function write(path, shape, data) {
  checkHost();
  const dtype = Object.keys(ARRAYS).find((name) => data instanceof ARRAYS[name]);
  if (!dtype) throw new Error(`cannot write ${data.constructor.name} (float32 or int64 only)`);
  let header = JSON.stringify({ shape, dtype });
  header += ' '.repeat((8 - ((8 + header.length) % 8)) % 8); // data starts at a multiple of 8
  const prefix = Buffer.alloc(8);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(header.length, 4);
  fs.writeFileSync(path, Buffer.concat([prefix, Buffer.from(header), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

module.exports = { read, write };
