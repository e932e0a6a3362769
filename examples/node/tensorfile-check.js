#!/usr/bin/env node
'use strict';
/**
 * Check lossport tensor files with the Node reader (tests/examples/test_tensorfile_readers.py
 * fuzzes it with this).
 *
 *   node examples/node/tensorfile-check.js [--values] FILE...
 *
 * Prints one JSON line per file: {"shape": [...], "dtype": ...}, with "values" (in C order;
 * int64 as decimal strings, non-finite floats as "NaN", "Infinity", "-Infinity") under --values,
 * or {"error": MESSAGE} with "error: MESSAGE" on stderr. Exit code 0 if all files are valid, else 2.
 */
const tensorfile = require('./tensorfile');

const show = (v) => (typeof v === 'bigint' || !Number.isFinite(v) ? String(v) : v);

const args = process.argv.slice(2);
const values = args[0] === '--values';
for (const path of values ? args.slice(1) : args) {
  let line;
  try {
    const { header, data } = tensorfile.read(path);
    line = { shape: header.shape, dtype: header.dtype };
    if (values) line.values = Array.from(data, show);
  } catch (error) {
    line = { error: error.message };
    console.error(`error: ${error.message}`);
    process.exitCode = 2;
  }
  console.log(JSON.stringify(line));
}
