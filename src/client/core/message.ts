/**
 * One object per received data message: the {@link ReceivedMessage} that
 * reads its fields from the bytes of the socket read it came in, and
 * {@link messageAt}, with which the reader makes one at the decoder's
 * current frame (the rarer frames go to the codec). The refinements over
 * received messages are refinements.ts's; the mark of a replaced session
 * is discontinuity.ts's.
 *
 * @module
 */
import { readU32 } from "../../protocol/bytes.ts"
import {
  HEADER_SIZE,
  MAX_GROUP_NAME,
  ServiceBits,
  type ServiceLevel,
  serviceLevelOf,
} from "../../protocol/constants.ts"
import type { FrameDecoder } from "../../protocol/decoder.ts"
import type { ProtocolError } from "../../protocol/errors.ts"
import { Frame, messTypeOfHint } from "../../protocol/frame.ts"
import { isCStringAt, readCString } from "../../protocol/names.ts"
import { decodeServerMessage, type RegularMessage, type ServerMessage } from "../../protocol/server_messages.ts"

const PREVIEW_BYTES = 32

/**
 * A data message as the connection received it: one object per message,
 * reading its fields from the bytes of the socket read it came in. The
 * sender and the groups are decoded only when first read (most receivers
 * of a flood never look at them); `data` is a view into those bytes.
 *
 * Memory: a message keeps its read chunk alive (the bytes of one socket
 * read, at most 256 KiB; a message that spanned reads has a copy of its own).
 * Copy `data` (`data.slice()`) to keep a small payload for long without
 * keeping its neighbours.
 *
 * Printed with `console.log`, `Effect.log` or `JSON.stringify` it shows its
 * fields and a short preview of the payload.
 *
 * @since 0.2.0
 * @category models
 */
export class ReceivedMessage implements RegularMessage {
  readonly _tag = "Regular"
  readonly #bytes: Uint8Array
  readonly #offset: number
  readonly #groupsOffset: number
  readonly #numGroups: number
  readonly #dataLen: number
  readonly #hint: number
  readonly #hintLe: boolean
  #sender: string | undefined
  #groups: ReadonlyArray<string> | undefined
  /** Service level the message was sent with. */
  readonly service: ServiceLevel
  /** The raw type bits (marker removed). */
  readonly type: number

  /**
   * A message whose frame starts at `offset` in `bytes`, with its header
   * fields as the decoder parsed them.
   */
  constructor(
    bytes: Uint8Array,
    offset: number,
    type: number,
    service: ServiceLevel,
    numGroups: number,
    hint: number,
    hintLittleEndian: boolean,
    dataLen: number,
  ) {
    this.#bytes = bytes
    this.#offset = offset
    this.#groupsOffset = offset + HEADER_SIZE
    this.#numGroups = numGroups
    this.#dataLen = dataLen
    this.#hint = hint
    this.#hintLe = hintLittleEndian
    this.service = service
    this.type = type
  }

  /** The sender's private group. */
  get sender(): string {
    return this.#sender ??= readCString(this.#bytes, this.#offset + 4, MAX_GROUP_NAME)
  }

  /** The destinations exactly as the sender wrote them. */
  get groups(): ReadonlyArray<string> {
    if (this.#groups === undefined) {
      const out = new Array<string>(this.#numGroups)
      for (let i = 0; i < out.length; i++) {
        out[i] = readCString(this.#bytes, this.#groupsOffset + i * MAX_GROUP_NAME, MAX_GROUP_NAME)
      }
      this.#groups = out
    }
    return this.#groups
  }

  /** The sign-extended 16-bit application message type. */
  get messType(): number {
    return messTypeOfHint(this.#hint)
  }

  /** The original sender's byte order differs from little-endian. */
  get endianMismatch(): boolean {
    return !this.#hintLe
  }

  /** How many destinations the sender named. */
  get groupCount(): number {
    return this.#numGroups
  }

  /**
   * The destination at `i` (below {@link groupCount}) — `known` itself when
   * that is the name, so a reader that sees one group again and again keeps
   * one string instead of decoding a new one per message.
   */
  groupAt(i: number, known?: string): string {
    if (this.#groups !== undefined) return this.#groups[i]
    const o = this.#groupsOffset + i * MAX_GROUP_NAME
    if (known !== undefined && isCStringAt(this.#bytes, o, MAX_GROUP_NAME, known)) return known
    return readCString(this.#bytes, o, MAX_GROUP_NAME)
  }

  /** The payload: a view into the received bytes (see the class notes on memory). */
  get data(): Uint8Array {
    const o = this.#groupsOffset + this.#numGroups * MAX_GROUP_NAME
    return this.#bytes.subarray(o, o + this.#dataLen)
  }

  /** The payload's byte at `i`, or -1 outside the payload (makes no view). */
  dataByte(i: number): number {
    return i >= 0 && i < this.#dataLen ? this.#bytes[this.#groupsOffset + this.#numGroups * MAX_GROUP_NAME + i] : -1
  }

  /** Whether the sender (the name field) is the private group whose bytes are `name`. */
  sentBy(name: Uint8Array): boolean {
    const b = this.#bytes
    const o = this.#offset + 4
    const n = name.length
    if (n >= MAX_GROUP_NAME) return false
    for (let i = 0; i < n; i++) if (b[o + i] !== name[i]) return false
    return b[o + n] === 0
  }

  /** The fields, with the payload's length and a short preview. */
  toJSON(): {
    readonly _tag: "Regular"
    readonly sender: string
    readonly groups: ReadonlyArray<string>
    readonly service: ServiceLevel
    readonly messType: number
    readonly dataLength: number
    readonly preview: string
  } {
    const data = this.data
    const head = data.subarray(0, PREVIEW_BYTES)
    let preview = ""
    for (let i = 0; i < head.length; i++) {
      const c = head[i]
      preview += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "."
    }
    return {
      _tag: "Regular",
      sender: this.sender,
      groups: this.groups,
      service: this.service,
      messType: this.messType,
      dataLength: data.length,
      preview: data.length > PREVIEW_BYTES ? `${preview}…` : preview,
    }
  }

  /** One line: `Regular from <sender> to <groups> (<service>, mess_type <n>, <len> bytes): <preview>`. */
  toString(): string {
    const j = this.toJSON()
    return `Regular from ${j.sender} to ${
      j.groups.join(",")
    } (${j.service}, mess_type ${j.messType}, ${j.dataLength} bytes): ${JSON.stringify(j.preview)}`
  }

  /** What `console.log` shows under Deno. */
  [Symbol.for("Deno.customInspect")](): string {
    return `ReceivedMessage ${Deno.inspect(this.toJSON())}`
  }

  /** What `console.log` shows under Node. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `ReceivedMessage ${JSON.stringify(this.toJSON())}`
  }
}

/**
 * The message at the decoder's current frame (after `advance()` answered
 * `true`): a data message as a {@link ReceivedMessage}, anything else with
 * the codec's `decodeServerMessage`. Exactly the codec's classification: a
 * frame without REJECT_MESS that carries one of the six service bits is a
 * data message.
 *
 * @since 0.2.0
 * @category decoding
 */
export const messageAt = (d: FrameDecoder): ServerMessage | ProtocolError => {
  const t = d.type
  if ((t & ServiceBits.REJECT_MESS) === 0 && (t & ServiceBits.REGULAR_MESS) !== 0) {
    const service = serviceLevelOf(t)
    if (service !== undefined) {
      return new ReceivedMessage(
        d.frameBytes,
        d.frameOffset,
        t,
        service,
        d.numGroups,
        d.hint,
        d.hintLittleEndian,
        d.dataLen,
      )
    }
  }
  return decodeServerMessage(frameAt(d))
}

/**
 * The decoder's current frame as a codec `Frame` (for the rare frames that
 * are not little-endian data messages).
 *
 * @since 0.2.0
 * @category decoding
 */
export const frameAt = (d: FrameDecoder): Frame => {
  const o = d.frameOffset
  const bytes = d.frameBytes.subarray(o, o + d.frameSize)
  const fixed = d.frameSize - d.dataLen - MAX_GROUP_NAME * d.numGroups
  const oldType = fixed > HEADER_SIZE ? (readU32(bytes, HEADER_SIZE, d.littleEndian) & 0x7fffff7f) >>> 0 : 0
  return new Frame(bytes, d.type, d.littleEndian, d.numGroups, d.hint, d.hintLittleEndian, d.dataLen, oldType, fixed)
}
