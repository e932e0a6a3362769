/**
 * The metadata_props of an ONNX model, read straight from its protobuf bytes (ONNX Runtime Web
 * does not expose them): the browser twin of examples/node/onnx-metadata.js. ModelProto field
 * 14 holds them as StringStringEntryProto messages {key = field 1, value = field 2}; every other
 * field is skipped by its wire type.
 */

function varint(bytes, pos) {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (pos >= bytes.length) throw new Error('not an ONNX model (truncated protobuf)');
    const byte = bytes[pos++];
    value += (byte & 0x7f) * scale; // arithmetic, not shifts: lengths may exceed 2^31
    if (byte < 0x80) return [value, pos];
    scale *= 128;
  }
}

/** Yields [fieldNumber, bytes] for each length-delimited field of one protobuf message. */
function* lengthDelimitedFields(bytes) {
  let pos = 0;
  while (pos < bytes.length) {
    let key;
    let size;
    [key, pos] = varint(bytes, pos);
    const wireType = key % 8;
    if (wireType === 0) {
      [, pos] = varint(bytes, pos);
    } else if (wireType === 1 || wireType === 5) {
      pos += wireType === 1 ? 8 : 4;
    } else if (wireType === 2) {
      [size, pos] = varint(bytes, pos);
      if (pos + size > bytes.length) throw new Error('not an ONNX model (truncated protobuf)');
      yield [Math.floor(key / 8), bytes.subarray(pos, pos + size)];
      pos += size;
    } else {
      throw new Error(`not an ONNX model (protobuf wire type ${wireType})`);
    }
  }
}

/** {key: value} of the model's metadata_props, from the bytes (a Uint8Array) of a .onnx file. */
export function onnxMetadata(model) {
  const utf8 = new TextDecoder('utf-8');
  const metadata = {};
  for (const [field, entry] of lengthDelimitedFields(model)) {
    if (field !== 14) continue;
    const parts = {};
    for (const [number, text] of lengthDelimitedFields(entry)) parts[number] = utf8.decode(text);
    metadata[parts[1] || ''] = parts[2] || '';
  }
  return metadata;
}
