import assert from "node:assert/strict";
import { test } from "node:test";

import { concatSamples, decodePcm, int16ToFloat32 } from "voice-bridge-client";

/** `values` encoded as f32le/s16le inside a larger Buffer, starting at byte `offset`. */
function framed(values, format, offset) {
  const width = format === "s16le" ? 2 : 4;
  const backing = Buffer.alloc(offset + values.length * width + 3, 0xee);
  values.forEach((value, i) => {
    if (format === "s16le") backing.writeInt16LE(value, offset + i * width);
    else backing.writeFloatLE(value, offset + i * width);
  });
  return backing.subarray(offset, offset + values.length * width);
}

test("an unaligned f32le Buffer (what ws hands out) decodes correctly", () => {
  const values = [0, 0.5, -0.25, 1, -1, 0.125, 3.0517578125e-5];
  for (const offset of [0, 1, 2, 3, 5, 7]) {
    const buf = framed(values, "f32le", offset);
    assert.equal(buf.byteOffset, offset);
    if (offset % 4) {
      // The naive view the seed example used throws here.
      assert.throws(() => new Float32Array(buf.buffer, buf.byteOffset, values.length), RangeError);
    }
    const samples = decodePcm(buf, "f32le");
    assert.ok(samples instanceof Float32Array);
    assert.deepEqual(Array.from(samples), values);
    assert.equal(samples.byteOffset, 0);
  }
});

test("an unaligned s16le Buffer decodes correctly", () => {
  const values = [0, 1, -1, 32767, -32768, 1234, -4321];
  for (const offset of [1, 3, 4]) {
    const samples = decodePcm(framed(values, "s16le", offset), "s16le");
    assert.ok(samples instanceof Int16Array);
    assert.deepEqual(Array.from(samples), values);
  }
});

test("decoding copies: the result does not alias the socket's buffer", () => {
  const buf = framed([0.5, 0.25], "f32le", 1);
  const samples = decodePcm(buf);
  buf.fill(0);
  assert.deepEqual(Array.from(samples), [0.5, 0.25]);
  assert.equal(samples.buffer.byteLength, 8);
});

test("ArrayBuffer and typed-array inputs decode too", () => {
  const f = new Float32Array([0.5, -0.5]);
  assert.deepEqual(Array.from(decodePcm(f.buffer)), [0.5, -0.5]);
  assert.deepEqual(Array.from(decodePcm(new Uint8Array(f.buffer, 4, 4))), [-0.5]);
  assert.equal(decodePcm(Buffer.alloc(0)).length, 0);
});

test("bad frames and formats are rejected", () => {
  assert.throws(() => decodePcm(Buffer.alloc(6), "f32le"), RangeError);
  assert.throws(() => decodePcm(Buffer.alloc(3), "s16le"), RangeError);
  assert.throws(() => decodePcm(Buffer.alloc(4), "mp3"), TypeError);
  assert.throws(() => decodePcm(Buffer.alloc(4), "toString"), TypeError);
  assert.throws(() => decodePcm("abcd"), TypeError);
});

test("int16ToFloat32 and concatSamples", () => {
  assert.deepEqual(Array.from(int16ToFloat32(new Int16Array([-32768, 0, 16384]))), [-1, 0, 0.5]);
  const joined = concatSamples([new Float32Array([1, 2]), new Float32Array([3])]);
  assert.ok(joined instanceof Float32Array);
  assert.deepEqual(Array.from(joined), [1, 2, 3]);
  assert.ok(concatSamples([], "s16le") instanceof Int16Array);
});
