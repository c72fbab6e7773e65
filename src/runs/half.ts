// IEEE 754 binary16 (float16) <-> float32 conversions for safetensors F16 tensors: exported weights are stored as
// F16 to halve the files, and every loader widens them back to float32.

/** Largest finite binary16 value. */
export const F16_MAX = 65504;

/** IEEE 754 binary16 -> number (exact, including subnormals, infinities and NaN). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

/** number -> binary16 bits after rounding it to float32 (Math.fround); IEEE semantics, overflow gives ±inf. */
export function float32ToHalf(x: number): number {
  F32_SCRATCH[0] = x;
  return f32BitsToHalf(U32_SCRATCH[0]);
}

/**
 * IEEE 754 float32 bit pattern -> binary16 bit pattern, rounding to nearest, ties to even, in one step from the
 * exact float32 value (no double rounding). Integer arithmetic only: a 5M-weight model converts in ~0.1 s.
 */
export function f32BitsToHalf(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf stays inf, NaN becomes a quiet NaN
  const e = exp - 112; // exponent re-biased from 127 to 15
  if (e >= 31) return sign | 0x7c00; // >= 2^16: beyond any rounding to 65504
  if (e <= 0) {
    // Result is subnormal (or rounds up to the smallest normal): count units of 2^-24. The value is
    // (2^23 + mant) * 2^(exp - 150) = (2^23 + mant) >> (14 - e) units; below 2^-25 it rounds to zero.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let q = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && (q & 1) === 1)) q++; // q = 0x400 is exactly the smallest normal's encoding
    return sign | q;
  }
  // Normal: keep the top 10 of 23 fraction bits, round on the 13 dropped. A carry out of the fraction bumps the
  // exponent, which is the correct encoding, up to 0x7c00 (inf) for values >= 65520.
  let q = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (q & 1) === 1)) q++;
  return sign | q;
}
