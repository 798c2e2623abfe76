/**
 * The one frame writer: the 48-byte header, and a whole frame encoded in
 * place into a caller's buffer (`encodeInto`), as the client's send path and
 * {@link encodeFrame} use it. Pure: no Effect, no IO, no allocation beyond
 * what the caller hands in.
 *
 * @module
 */
import { readU32, writeU32 } from "./bytes.ts"
import { ENDIAN_RESERVED, HEADER_SIZE, MAX_GROUP_NAME } from "./constants.ts"
import { writeCString } from "./names.ts"

const encoder = new TextEncoder()

/**
 * Writes a 48-byte header at `o`: `type` (without the marker, which is
 * added), the name field (a 32-byte entry as is, or a name written as a
 * zero-padded C string), `num_groups`, the hint as given (its marker
 * included) and `data_len`, in the byte order of `littleEndian`; the hint
 * in that of `hintLittleEndian`.
 *
 * @since 0.3.0
 * @category encoding
 */
export const writeHeader = (
  buf: Uint8Array,
  o: number,
  type: number,
  name: Uint8Array | string,
  numGroups: number,
  hint: number,
  dataLen: number,
  littleEndian = true,
  hintLittleEndian = littleEndian,
): void => {
  writeU32(buf, o, (type | (littleEndian ? ENDIAN_RESERVED : 0)) >>> 0, littleEndian)
  if (typeof name === "string") writeCString(buf, o + 4, MAX_GROUP_NAME, name)
  else buf.set(name, o + 4)
  writeU32(buf, o + 36, numGroups, littleEndian)
  writeU32(buf, o + 40, hint, hintLittleEndian)
  writeU32(buf, o + 44, dataLen, littleEndian)
}

/**
 * A frame ready to be encoded in place: group entries already padded to 32
 * bytes, and data as bytes or as text encoded (UTF-8) straight into the
 * buffer.
 *
 * @since 0.3.0
 * @category models
 */
export interface EncodableFrame {
  /** Type bits without the marker. */
  readonly type: number
  /** The hint, its marker included (see {@link hintOf}). */
  readonly hint: number
  /** The group entries, 32 zero-padded bytes each. */
  readonly groups: ReadonlyArray<Uint8Array>
  /** Bytes, or text encoded in place (3 bytes a UTF-16 unit at most). */
  readonly data: Uint8Array | string
}

/**
 * The most bytes the frame of `f` takes (text counts 3 bytes a unit).
 *
 * @since 0.3.0
 * @category encoding
 */
export const frameBound = (f: EncodableFrame): number =>
  HEADER_SIZE + MAX_GROUP_NAME * f.groups.length + (typeof f.data === "string" ? f.data.length * 3 : f.data.length)

/**
 * Encodes `f`, sent by the private group whose 32-byte entry is
 * `nameField`, at `o` in `buf` (which has {@link frameBound} bytes there),
 * little-endian; answers the bytes written.
 *
 * @since 0.3.0
 * @category encoding
 */
export const encodeInto = (buf: Uint8Array, o: number, nameField: Uint8Array, f: EncodableFrame): number => {
  const n = f.groups.length
  const fixed = HEADER_SIZE + MAX_GROUP_NAME * n
  const dataLen = encodeDataInto(buf, o + fixed, f.data)
  writeHeader(buf, o, f.type, nameField, n, f.hint, dataLen)
  for (let i = 0, g = o + HEADER_SIZE; i < n; i++, g += MAX_GROUP_NAME) buf.set(f.groups[i], g)
  return fixed + dataLen
}

/**
 * Writes `data` at `o` (text as UTF-8, with room for 3 bytes a unit);
 * answers its length in bytes.
 *
 * @since 0.3.0
 * @category encoding
 */
export const encodeDataInto = (buf: Uint8Array, o: number, data: Uint8Array | string): number => {
  if (typeof data !== "string") {
    buf.set(data, o)
    return data.length
  }
  return data.length === 0 ? 0 : encoder.encodeInto(data, buf.subarray(o, o + data.length * 3)).written
}

/**
 * A name as a 32-byte, zero-padded group entry (names are latin1, under 32
 * bytes; the caller has validated it).
 *
 * @since 0.3.0
 * @category encoding
 */
export const groupEntry = (name: string): Uint8Array => {
  const out = new Uint8Array(MAX_GROUP_NAME)
  for (let i = 0; i < name.length && i < MAX_GROUP_NAME - 1; i++) out[i] = name.charCodeAt(i) & 0xff
  return out
}

/**
 * The length of the little- or big-endian frame that starts at `o` in `buf`
 * as its header says (a client-to-daemon frame: no `old_type`).
 *
 * @since 0.3.0
 * @category decoding
 */
export const frameLengthAt = (buf: Uint8Array, o: number): number => {
  const le = (buf[o] & 0x80) !== 0
  return HEADER_SIZE + readU32(buf, o + 36, le) * MAX_GROUP_NAME + readU32(buf, o + 44, le)
}
