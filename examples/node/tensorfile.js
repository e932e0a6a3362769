'use strict';
/**
 * Read and write lossport tensor files (the format is documented in lossport/tensorfile.py):
 * "LPT1", uint32 LE header length n, n bytes of JSON header {"shape", "dtype", ...},
 * then the raw little-endian C-order data.
 */
const fs = require('fs');
const os = require('os');

const MAGIC = 'LPT1';
const ARRAYS = { float32: Float32Array, int64: BigInt64Array };

function checkHost() {
  if (os.endianness() !== 'LE') throw new Error('tensor files are little-endian; this host is not');
}

/** {header, data}: the JSON header and a typed array (Float32Array or BigInt64Array). */
function read(path) {
  checkHost();
  const raw = fs.readFileSync(path);
  if (raw.length < 8 || raw.toString('latin1', 0, 4) !== MAGIC) {
    throw new Error(`${path}: not a lossport tensor file (make one with \`lossport preprocess\`)`);
  }
  const length = raw.readUInt32LE(4);
  const header = JSON.parse(raw.toString('utf8', 8, 8 + length));
  const TypedArray = ARRAYS[header.dtype];
  if (!TypedArray) throw new Error(`${path}: unsupported dtype ${header.dtype} (float32 or int64)`);
  const bytes = raw.subarray(8 + length);
  const count = header.shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== count * TypedArray.BYTES_PER_ELEMENT) {
    throw new Error(`${path}: data size does not match the header's shape (truncated or corrupt)`);
  }
  const data = new TypedArray(count);
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
