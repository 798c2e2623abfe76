/**
 * Message frames: the 48-byte header, the groups array and the data, in
 * either byte order (protocol reference section 4).
 *
 * @module
 */
import { readI32, readU32, writeU32 } from "./bytes.ts"
import { ENDIAN_RESERVED, HEADER_SIZE, MAX_GROUP_NAME, REJECT_OLD_TYPE_SIZE, ServiceBits } from "./constants.ts"
import { writeHeader } from "./encode.ts"
import { readCString, writeCString } from "./names.ts"

/**
 * Which way a stream flows. Daemon-to-client rejects carry a 4-byte
 * `old_type` after the header; client-to-daemon frames never do.
 *
 * @since 0.1.0
 * @category models
 */
export type Direction = "toDaemon" | "toClient"

/**
 * The byte order of a 32-bit field read with its endian marker, or
 * `undefined` when the two marker bits disagree.
 *
 * @since 0.1.0
 * @category decoding
 */
export const markerOrder = (b: Uint8Array, o: number): "le" | "be" | undefined => {
  const lo = b[o] & 0x80
  const hi = b[o + 3] & 0x80
  if (lo !== 0 && hi !== 0) return "le"
  if (lo === 0 && hi === 0) return "be"
  return undefined
}

/**
 * Sign-extends the 16-bit mess_type held in bits 8..23 of a hint.
 *
 * @since 0.1.0
 * @category decoding
 */
export const messTypeOfHint = (hint: number): number => ((hint >>> 8) << 16) >> 16

/**
 * The hint a sender writes for a mess_type (marker bits included).
 *
 * @since 0.1.0
 * @category encoding
 */
export const hintOf = (messType: number, littleEndian = true): number =>
  (((messType << 8) & 0x00ffff00) | (littleEndian ? ENDIAN_RESERVED : 0)) >>> 0

/**
 * One decoded frame. Numeric header fields are parsed eagerly; names and
 * data are views into `bytes` and are decoded only when asked for.
 *
 * @since 0.1.0
 * @category models
 */
export class Frame {
  #sender: string | undefined
  #groups: ReadonlyArray<string> | undefined
  /** Wraps a frame's bytes with its already parsed header fields. */
  constructor(
    /** The whole frame as received. */
    readonly bytes: Uint8Array,
    /** `type` without the endian marker bits. */
    readonly type: number,
    /** Byte order of `type`, `num_groups` and `data_len`. */
    readonly littleEndian: boolean,
    /** Number of 32-byte group entries. */
    readonly numGroups: number,
    /** The hint, read in its own byte order, marker bits included. */
    readonly hint: number,
    /** Byte order of the hint (that of the original sender). */
    readonly hintLittleEndian: boolean,
    /** Bytes of data after the groups. */
    readonly dataLen: number,
    /** The `old_type` of a daemon reject (marker removed), else 0. */
    readonly oldType: number,
    /** Offset of the groups array in `bytes`. */
    readonly groupsOffset: number,
  ) {}

  /** The 32-byte name field as a C string. */
  get sender(): string {
    return this.#sender ??= readCString(this.bytes, 4, MAX_GROUP_NAME)
  }

  /** The group entries as C strings. */
  get groups(): ReadonlyArray<string> {
    if (this.#groups === undefined) {
      const out = new Array<string>(this.numGroups)
      for (let i = 0; i < this.numGroups; i++) {
        out[i] = readCString(this.bytes, this.groupsOffset + i * MAX_GROUP_NAME, MAX_GROUP_NAME)
      }
      this.#groups = out
    }
    return this.#groups
  }

  /** Offset of the data in `bytes`. */
  get dataOffset(): number {
    return this.groupsOffset + this.numGroups * MAX_GROUP_NAME
  }

  /** The data, as a view into `bytes`. */
  get data(): Uint8Array {
    const o = this.dataOffset
    return this.bytes.subarray(o, o + this.dataLen)
  }

  /** The sign-extended 16-bit mess_type carried in the hint. */
  get messType(): number {
    return messTypeOfHint(this.hint)
  }
}

/**
 * Size of a frame's fixed part: the header, plus `old_type` for a
 * daemon-to-client reject.
 *
 * @since 0.1.0
 * @category decoding
 */
export const fixedSize = (type: number, direction: Direction): number =>
  direction === "toClient" && (type & ServiceBits.REJECT_MESS) !== 0 ? HEADER_SIZE + REJECT_OLD_TYPE_SIZE : HEADER_SIZE

/**
 * What an encoder needs to write a frame.
 *
 * @since 0.1.0
 * @category models
 */
export interface FrameSpec {
  /** Type bits without the marker (the encoder adds it). */
  readonly type: number
  /** The name field: the sender's private group, or a group name. */
  readonly name: string
  /** The group entries (destinations or members). */
  readonly groups: ReadonlyArray<string>
  /** The hint with its marker; defaults to the marker of `littleEndian`. */
  readonly hint?: number
  /** Byte order of the hint; defaults to `littleEndian`. */
  readonly hintLittleEndian?: boolean
  /** The data. */
  readonly data?: Uint8Array
  /** A reject's `old_type` without marker; only with REJECT_MESS. */
  readonly oldType?: number
  /** Byte order to write; little-endian by default. */
  readonly littleEndian?: boolean
}

const EMPTY = new Uint8Array(0)

/**
 * Encodes one frame. Names are written as zero-padded C strings; the
 * caller has validated them.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeFrame = (spec: FrameSpec): Uint8Array => {
  const le = spec.littleEndian ?? true
  const data = spec.data ?? EMPTY
  const withOld = (spec.type & ServiceBits.REJECT_MESS) !== 0 && spec.oldType !== undefined
  const fixed = withOld ? HEADER_SIZE + REJECT_OLD_TYPE_SIZE : HEADER_SIZE
  const n = spec.groups.length
  const out = new Uint8Array(fixed + n * MAX_GROUP_NAME + data.length)
  const hle = spec.hintLittleEndian ?? le
  writeHeader(out, 0, spec.type, spec.name, n, spec.hint ?? (hle ? ENDIAN_RESERVED : 0), data.length, le, hle)
  if (withOld) writeU32(out, HEADER_SIZE, ((spec.oldType ?? 0) | (le ? ENDIAN_RESERVED : 0)) >>> 0, le)
  let o = fixed
  for (let i = 0; i < n; i++, o += MAX_GROUP_NAME) writeCString(out, o, MAX_GROUP_NAME, spec.groups[i])
  out.set(data, o)
  return out
}

/**
 * Re-encodes a received frame for delivery in little-endian order, as a
 * little-endian daemon forwards it: `type`, `num_groups` and `data_len` in
 * little-endian with the marker, the hint untouched. A frame already in
 * little-endian is returned as is (no copy).
 *
 * @since 0.1.0
 * @category encoding
 */
export const toLittleEndian = (frame: Frame): Uint8Array => {
  if (frame.littleEndian) return frame.bytes
  const out = frame.bytes.slice()
  writeU32(out, 0, (frame.type | ENDIAN_RESERVED) >>> 0, true)
  writeU32(out, 36, frame.numGroups, true)
  writeU32(out, 44, frame.dataLen, true)
  if (frame.groupsOffset > HEADER_SIZE) writeU32(out, HEADER_SIZE, (frame.oldType | ENDIAN_RESERVED) >>> 0, true)
  return out
}

/**
 * Reads the header fields of a frame that starts at `o` in `b` (at least 48
 * bytes available). Used by the decoder; exposed for tools and tests.
 *
 * @since 0.1.0
 * @category decoding
 */
export const peekHeader = (
  b: Uint8Array,
  o: number,
): {
  readonly order: "le" | "be" | undefined
  readonly type: number
  readonly numGroups: number
  readonly dataLen: number
  readonly hint: number
  readonly hintLittleEndian: boolean
} => {
  const order = markerOrder(b, o)
  const le = order !== "be"
  const hintLe = markerOrder(b, o + 40) === "le"
  return {
    order,
    type: (readU32(b, o, le) & ~ENDIAN_RESERVED) >>> 0,
    numGroups: readI32(b, o + 36, le),
    dataLen: readI32(b, o + 44, le),
    hint: readU32(b, o + 40, hintLe),
    hintLittleEndian: hintLe,
  }
}
