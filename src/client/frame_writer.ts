/**
 * The byte writers of outgoing frames: the header fields of a service level
 * and a mess_type, the 48-byte header, a prepared frame written in place
 * into the outbound buffer, and the disconnect frame. Little-endian, as a
 * client writes; pure: no Effect, no IO.
 *
 * @module
 */
import { writeU32 } from "../protocol/bytes.ts"
import { ENDIAN_RESERVED, HEADER_SIZE, MAX_GROUP_NAME, ServiceBits, type ServiceLevel } from "../protocol/constants.ts"
import type { PreparedFrame } from "./frames.ts"

const encoder = new TextEncoder()

/**
 * The service bits of a level; 0 for anything else (a switch, not a keyed
 * lookup: cheap on the hot path).
 *
 * @since 0.2.0
 * @category encoding
 */
export const serviceBitsOf = (service: ServiceLevel): number => {
  switch (service) {
    case "Unreliable":
      return ServiceBits.UNRELIABLE_MESS
    case "Reliable":
      return ServiceBits.RELIABLE_MESS
    case "Fifo":
      return ServiceBits.FIFO_MESS
    case "Causal":
      return ServiceBits.CAUSAL_MESS
    case "Agreed":
      return ServiceBits.AGREED_MESS
    case "Safe":
      return ServiceBits.SAFE_MESS
    default:
      return 0
  }
}

/**
 * The most bytes the frame of `p` takes (text counts 3 bytes a unit).
 *
 * @since 0.2.0
 * @category encoding
 */
export const frameBound = (p: PreparedFrame): number =>
  HEADER_SIZE + MAX_GROUP_NAME * p.groups.length + (typeof p.data === "string" ? p.data.length * 3 : p.data.length)

/**
 * Writes the frame of `p`, sent by the private group whose entry is
 * `nameField`, at `o` in `buf` (which has {@link frameBound} bytes there),
 * little-endian; answers its length.
 *
 * @since 0.2.0
 * @category encoding
 */
export const writeFrame = (buf: Uint8Array, o: number, nameField: Uint8Array, p: PreparedFrame): number => {
  const n = p.groups.length
  const fixed = HEADER_SIZE + MAX_GROUP_NAME * n
  const data = p.data
  let dataLen: number
  if (typeof data === "string") {
    dataLen = data.length === 0
      ? 0
      : encoder.encodeInto(data, buf.subarray(o + fixed, o + fixed + data.length * 3)).written
  } else {
    buf.set(data, o + fixed)
    dataLen = data.length
  }
  writeHeader(buf, o, nameField, p.type, n, p.hint, dataLen)
  for (let i = 0, g = o + HEADER_SIZE; i < n; i++, g += MAX_GROUP_NAME) buf.set(p.groups[i], g)
  return fixed + dataLen
}

/**
 * The hint of a mess_type, little-endian marker included.
 *
 * @since 0.2.0
 * @category encoding
 */
export const hintOf = (messType: number): number => (((messType << 8) & 0x00ffff00) | ENDIAN_RESERVED) >>> 0

/**
 * Writes a little-endian 48-byte header at `o`.
 *
 * @since 0.2.0
 * @category encoding
 */
export const writeHeader = (
  buf: Uint8Array,
  o: number,
  nameField: Uint8Array,
  type: number,
  numGroups: number,
  hint: number,
  dataLen: number,
): void => {
  writeU32(buf, o, (type | ENDIAN_RESERVED) >>> 0, true)
  buf.set(nameField, o + 4)
  writeU32(buf, o + 36, numGroups, true)
  writeU32(buf, o + 40, hint, true)
  writeU32(buf, o + 44, dataLen, true)
}

/**
 * The disconnect (KILL) frame of the private group whose entry is `nameField`.
 *
 * @since 0.2.0
 * @category encoding
 */
export const killFrame = (nameField: Uint8Array): Uint8Array => {
  const buf = new Uint8Array(HEADER_SIZE + MAX_GROUP_NAME)
  writeU32(buf, 0, (ServiceBits.KILL_MESS | ENDIAN_RESERVED) >>> 0, true)
  buf.set(nameField, 4)
  writeU32(buf, 36, 1, true)
  writeU32(buf, 40, ENDIAN_RESERVED, true)
  buf.set(nameField, HEADER_SIZE)
  return buf
}
