/**
 * Little helpers for 32-bit integers in either byte order.
 *
 * @module
 */

/**
 * Reads a signed 32-bit integer in the given byte order.
 *
 * @since 0.1.0
 * @category decoding
 */
export const readI32 = (b: Uint8Array, o: number, le: boolean): number =>
  le
    ? b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)
    : (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]

/**
 * Reads an unsigned 32-bit integer in the given byte order.
 *
 * @since 0.1.0
 * @category decoding
 */
export const readU32 = (b: Uint8Array, o: number, le: boolean): number => readI32(b, o, le) >>> 0

/**
 * Writes a 32-bit integer (signed or unsigned) in the given byte order.
 *
 * @since 0.1.0
 * @category encoding
 */
export const writeU32 = (b: Uint8Array, o: number, v: number, le: boolean): void => {
  if (le) {
    b[o] = v & 0xff
    b[o + 1] = (v >>> 8) & 0xff
    b[o + 2] = (v >>> 16) & 0xff
    b[o + 3] = (v >>> 24) & 0xff
  } else {
    b[o] = (v >>> 24) & 0xff
    b[o + 1] = (v >>> 16) & 0xff
    b[o + 2] = (v >>> 8) & 0xff
    b[o + 3] = v & 0xff
  }
}

/**
 * Joins byte arrays into one new array. When only one part is non-empty it
 * is returned as is, without a copy.
 *
 * @since 0.1.0
 * @category encoding
 */
export const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  let n = 0
  let only: Uint8Array | undefined
  let nonEmpty = 0
  for (const p of parts) {
    n += p.length
    if (p.length > 0) {
      only = p
      nonEmpty++
    }
  }
  if (nonEmpty === 0) return parts.length > 0 ? parts[0] : new Uint8Array(0)
  if (nonEmpty === 1 && only !== undefined) return only
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}
