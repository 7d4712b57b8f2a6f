/**
 * PCM decoding for voice-bridge binary frames: 48 kHz mono, little-endian float32 ("f32le")
 * or int16 ("s16le").
 *
 * `ws` hands out Buffers that are views into a larger chunk read from the socket, often at a
 * byteOffset that is not a multiple of 4 (or 2): `new Float32Array(buf.buffer, buf.byteOffset, n)`
 * throws a RangeError there. decodePcm copies the bytes into a fresh, aligned ArrayBuffer, so it
 * is correct for any byteOffset, and the result owns its memory (safe to keep, transfer or
 * postMessage; ws may reuse nothing underneath it).
 */

export const SAMPLE_RATE = 48000;

/** Bytes per sample of each format. */
export const BYTES_PER_SAMPLE = Object.freeze({ f32le: 4, s16le: 2 });

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * @param {ArrayBuffer | ArrayBufferView} data one binary frame (a Buffer from `ws` is fine)
 * @param {"f32le" | "s16le"} [format]
 * @returns {Float32Array | Int16Array}
 */
export function decodePcm(data, format = "f32le") {
  const width = BYTES_PER_SAMPLE[format];
  if (width === undefined || !Object.hasOwn(BYTES_PER_SAMPLE, format)) {
    throw new TypeError(`unknown PCM format ${JSON.stringify(format)} (expected "f32le" or "s16le")`);
  }
  let bytes;
  if (data instanceof ArrayBuffer) {
    bytes = new Uint8Array(data);
  } else if (ArrayBuffer.isView(data)) {
    bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else {
    throw new TypeError("decodePcm expects an ArrayBuffer, a Buffer or a typed array");
  }
  if (bytes.byteLength % width !== 0) {
    throw new RangeError(`a ${format} frame of ${bytes.byteLength} bytes is not a whole number of samples`);
  }
  const count = bytes.byteLength / width;
  if (LITTLE_ENDIAN) {
    const copy = new Uint8Array(bytes.byteLength); // fresh buffer: offset 0, aligned
    copy.set(bytes);
    return format === "s16le" ? new Int16Array(copy.buffer, 0, count) : new Float32Array(copy.buffer, 0, count);
  }
  // Big-endian host: read each sample as little-endian.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === "s16le") {
    const out = new Int16Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
    return out;
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/**
 * int16 samples → float32 in [-1, 1) (what WebAudio and most DSP code want).
 * @param {Int16Array} samples
 * @returns {Float32Array}
 */
export function int16ToFloat32(samples) {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i] / 32768;
  return out;
}

/**
 * Join chunks into one array of their type.
 * @template {Float32Array | Int16Array} T
 * @param {T[]} chunks
 * @param {"f32le" | "s16le"} format used when `chunks` is empty
 * @returns {T}
 */
export function concatSamples(chunks, format = "f32le") {
  const Type = chunks.length ? chunks[0].constructor : format === "s16le" ? Int16Array : Float32Array;
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const out = new Type(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return /** @type {T} */ (out);
}
