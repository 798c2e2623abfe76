/**
 * The incremental frame decoder: bytes in, in chunks of any size; whole,
 * validated frames out.
 *
 * It knows nothing about IO. Every length and count is checked against the
 * protocol maximum before a byte is buffered for it, so a hostile header can
 * never make it allocate more than one maximum-size frame. Malformed input
 * yields a {@link ProtocolError} naming the field and value; after an error
 * the decoder answers that same error for ever (the stream is out of step).
 *
 * @module
 */
import {
  ENDIAN_RESERVED,
  HEADER_SIZE,
  MAX_GROUP_NAME,
  MAX_GROUPS_PER_MESSAGE,
  MAX_MESSAGE_BODY_LEN,
  MAX_MESSAGE_PAYLOAD,
} from "./constants.ts"
import { type ProtocolError, protocolError } from "./errors.ts"
import { type Direction, fixedSize, Frame, markerOrder } from "./frame.ts"
import { readI32, readU32 } from "./bytes.ts"

const EMPTY = new Uint8Array(0)

/**
 * Limits a decoder enforces.
 *
 * @since 0.1.0
 * @category models
 */
export interface DecoderLimits {
  /** Most group entries in one frame. */
  readonly maxGroups: number
  /** Most `data_len`. */
  readonly maxDataLen: number
  /** Most `data_len + 32 * num_groups`. */
  readonly maxPayload: number
}

/**
 * Default limits for frames a daemon reads from clients: at most 100 groups
 * and `data_len + 32 * groups` at most 143152, the size a real daemon
 * survives (protocol reference 4.4).
 *
 * @since 0.1.0
 * @category constants
 */
export const toDaemonLimits: DecoderLimits = {
  maxGroups: MAX_GROUPS_PER_MESSAGE,
  maxDataLen: MAX_MESSAGE_BODY_LEN,
  maxPayload: MAX_MESSAGE_PAYLOAD,
}

/**
 * Default limits for frames a client reads from a daemon. Membership
 * messages list every member (up to 10,000 here) in the groups array and
 * again in the vs sets of their body, so the payload bound is the regular
 * maximum plus 72 bytes per possible member (about 864 KB).
 *
 * @since 0.1.0
 * @category constants
 */
export const toClientLimits: DecoderLimits = {
  maxGroups: 10000,
  maxDataLen: MAX_MESSAGE_BODY_LEN + 40 * 10000,
  maxPayload: MAX_MESSAGE_BODY_LEN + 72 * 10000,
}

// A header split across chunks is copied here to be read, and read at once
// (nothing keeps it): one for every decoder, so making a decoder allocates
// no buffer (the daemon makes one whenever bytes come to an idle session).
const HEADER_SCRATCH = new Uint8Array(HEADER_SIZE)

/**
 * Incremental decoder for one direction of one stream.
 *
 * @example
 * ```ts
 * import { FrameDecoder } from "./decoder.ts"
 * const decoder = new FrameDecoder("toClient")
 * decoder.push(new Uint8Array(10)) // any chunking
 * const frame = decoder.next() // Frame | ProtocolError | undefined (need more)
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export class FrameDecoder {
  readonly #direction: Direction
  readonly #limits: DecoderLimits
  #chunks: Array<Uint8Array> = []
  #head = 0 // offset into #chunks[0]
  #buffered = 0
  #pendingSize = -1 // size of the frame at the front, once its header was checked
  // The header fields of that frame, parsed once.
  #hType = 0
  #hLe = true
  #hGroups = 0
  #hDataLen = 0
  #hHint = 0
  #hHintLe = true
  #failed: ProtocolError | undefined
  // The frame `advance` moved to.
  #fBytes: Uint8Array = EMPTY
  #fOffset = 0
  #fSize = 0

  /** Creates a decoder for frames travelling in `direction`, using that direction's default limits unless `limits` is given. */
  constructor(direction: Direction, limits?: DecoderLimits) {
    this.#direction = direction
    this.#limits = limits ?? (direction === "toDaemon" ? toDaemonLimits : toClientLimits)
  }

  /** Bytes received and not yet returned as frames. */
  get buffered(): number {
    return this.#buffered
  }

  /**
   * Adds bytes. The decoder keeps a view of `chunk`: do not reuse it. Once
   * the decoder has failed, bytes are dropped (the stream is out of step).
   */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0 || this.#failed !== undefined) return
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
  }

  /**
   * The next whole frame, `undefined` when more bytes are needed, or the
   * error that put the stream out of step.
   */
  next(): Frame | ProtocolError | undefined {
    const r = this.advance()
    if (r !== true) return r === false ? undefined : r
    const o = this.#fOffset
    const bytes = this.#fBytes.subarray(o, o + this.#fSize)
    const fixed = this.#fSize - this.#hDataLen - MAX_GROUP_NAME * this.#hGroups
    const oldType = fixed > HEADER_SIZE ? (readU32(bytes, HEADER_SIZE, this.#hLe) & 0x7fffff7f) >>> 0 : 0
    return new Frame(
      bytes,
      this.#hType,
      this.#hLe,
      this.#hGroups,
      this.#hHint,
      this.#hHintLe,
      this.#hDataLen,
      oldType,
      fixed,
    )
  }

  /**
   * The allocation-free form of {@link next}: moves to the next whole frame
   * and answers `true`, after which {@link frameBytes}, {@link frameOffset}
   * and the header getters describe it (until the next call); `false` when
   * more bytes are needed; or the error that put the stream out of step.
   * The frame lies in `frameBytes` from `frameOffset`: a received chunk when
   * the frame arrived in one, else a copy of its parts.
   */
  advance(): boolean | ProtocolError {
    if (this.#failed !== undefined) return this.#failed
    if (this.#pendingSize < 0) {
      if (this.#buffered < HEADER_SIZE) return false
      const size = this.#checkHeader()
      if (typeof size !== "number") {
        this.#failed = size
        return size
      }
      this.#pendingSize = size
    }
    const size = this.#pendingSize
    if (this.#buffered < size) return false
    this.#take(size)
    this.#fSize = size
    this.#pendingSize = -1
    return true
  }

  /** The bytes holding the current frame (see {@link advance}). */
  get frameBytes(): Uint8Array {
    return this.#fBytes
  }

  /** Offset of the current frame in {@link frameBytes}. */
  get frameOffset(): number {
    return this.#fOffset
  }

  /** Size of the current frame. */
  get frameSize(): number {
    return this.#fSize
  }

  /** `type` of the current frame, without the endian marker bits. */
  get type(): number {
    return this.#hType
  }

  /** Byte order of the current frame's `type`, `num_groups` and `data_len`. */
  get littleEndian(): boolean {
    return this.#hLe
  }

  /** Group entries of the current frame. */
  get numGroups(): number {
    return this.#hGroups
  }

  /** `data_len` of the current frame. */
  get dataLen(): number {
    return this.#hDataLen
  }

  /** The hint of the current frame, in its own byte order, marker bits included. */
  get hint(): number {
    return this.#hHint
  }

  /** Byte order of the current frame's hint. */
  get hintLittleEndian(): boolean {
    return this.#hHintLe
  }

  /**
   * Call at end of stream: an error when a frame was cut off, else
   * `undefined`.
   */
  end(): ProtocolError | undefined {
    if (this.#failed !== undefined) return this.#failed
    if (this.#buffered === 0) return undefined
    this.#failed = protocolError(
      "Truncated",
      "frame",
      this.#buffered,
      `The stream ended ${this.#buffered} bytes into a frame`,
    )
    return this.#failed
  }

  #checkHeader(): number | ProtocolError {
    const first = this.#chunks[0]
    let b: Uint8Array
    let o: number
    if (first.length - this.#head >= HEADER_SIZE) {
      b = first
      o = this.#head
    } else {
      this.#copyOut(HEADER_SCRATCH, HEADER_SIZE)
      b = HEADER_SCRATCH
      o = 0
    }
    const order = markerOrder(b, o)
    if (order === undefined) {
      return protocolError(
        "Endian",
        "type",
        `0x${readU32(b, o, true).toString(16)}`,
        "The two endian marker bits of type disagree",
      )
    }
    const le = order === "le"
    const type = (readU32(b, o, le) & ~ENDIAN_RESERVED) >>> 0
    const numGroups = readI32(b, o + 36, le)
    const dataLen = readI32(b, o + 44, le)
    const lim = this.#limits
    if (numGroups < 0) {
      return protocolError("Negative", "num_groups", numGroups, "num_groups is negative")
    }
    if (numGroups > lim.maxGroups) {
      return protocolError("Oversize", "num_groups", numGroups, `num_groups exceeds ${lim.maxGroups}`)
    }
    if (dataLen < 0) {
      return protocolError("Negative", "data_len", dataLen, "data_len is negative")
    }
    if (dataLen > lim.maxDataLen) {
      return protocolError("Oversize", "data_len", dataLen, `data_len exceeds ${lim.maxDataLen}`)
    }
    const hintLe = markerOrder(b, o + 40) === "le"
    this.#hType = type
    this.#hLe = le
    this.#hGroups = numGroups
    this.#hDataLen = dataLen
    this.#hHint = readU32(b, o + 40, hintLe)
    this.#hHintLe = hintLe
    const payload = dataLen + MAX_GROUP_NAME * numGroups
    if (payload > lim.maxPayload) {
      return protocolError(
        "Oversize",
        "data_len + 32 * num_groups",
        payload,
        `A message body exceeds ${lim.maxPayload} bytes`,
      )
    }
    return fixedSize(type, this.#direction) + payload
  }

  // Copies the first `n` buffered bytes into `dst` without consuming them.
  #copyOut(dst: Uint8Array, n: number): void {
    let got = 0
    let off = this.#head
    for (let i = 0; got < n; i++) {
      const c = this.#chunks[i]
      const k = Math.min(c.length - off, n - got)
      dst.set(c.subarray(off, off + k), got)
      got += k
      off = 0
    }
  }

  // Consumes `n` buffered bytes into #fBytes/#fOffset: the chunk itself
  // when they sit in one, else a copy.
  #take(n: number): void {
    this.#buffered -= n
    const first = this.#chunks[0]
    const avail = first.length - this.#head
    if (avail >= n) {
      this.#fBytes = first
      this.#fOffset = this.#head
      this.#head += n
      if (this.#head === first.length) {
        this.#chunks.shift()
        this.#head = 0
      }
      return
    }
    const out = new Uint8Array(n)
    let got = 0
    while (got < n) {
      const c = this.#chunks[0]
      const k = Math.min(c.length - this.#head, n - got)
      out.set(c.subarray(this.#head, this.#head + k), got)
      got += k
      this.#head += k
      if (this.#head === c.length) {
        this.#chunks.shift()
        this.#head = 0
      }
    }
    this.#fBytes = out
    this.#fOffset = 0
  }
}
