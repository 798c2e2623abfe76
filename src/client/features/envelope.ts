/**
 * The spreadfx envelope: a small header at the start of a message's
 * payload that carries what request/reply (and, later, fragmentation)
 * needs — a kind, a correlation id, a reply-to group — in bytes that any
 * Spread client can write and read. Pure: no Effect, no IO.
 *
 * Layout (all integers big-endian; `H` is the header length):
 *
 * | offset    | size | field                                                  |
 * | --------- | ---- | ------------------------------------------------------ |
 * | 0         | 4    | magic `FF 53 46 58` (`0xFF` then `"SFX"`)              |
 * | 4         | 1    | version, 1                                             |
 * | 5         | 1    | kind: 1 request, 2 reply, 3 error reply, 4 message,    |
 * |           |      | 16 fragment                                            |
 * | 6         | 2    | `H`, the header length, 24..1024, checksum included    |
 * | 8         | 8    | correlation id (u64)                                   |
 * | 16        | 1    | `R`, the reply-to group's length, 0..31                |
 * | 17        | 1    | flags, 0 (reserved)                                    |
 * | 18        | 2    | reserved, 0                                            |
 * | 20        | R    | reply-to group, Latin-1, no terminating NUL            |
 * | 20 + R    | …    | extension fields up to `H - 4` (see below)             |
 * | `H - 4`   | 4    | CRC-32 (IEEE 802.3, as zlib's `crc32`) of bytes 0..H-4 |
 * | `H`       | …    | the body                                               |
 *
 * A payload is an envelope only when all of these hold: it is at least 24
 * bytes long, starts with the magic, has version 1, a known kind, `H` in
 * 24..1024 and at most the payload's length, `20 + R <= H - 4`, zero flags
 * and reserved bytes, and the checksum matches. A payload from any other
 * client passes all of them by chance with a probability below 2^-64
 * (32 bits of magic and 32 of checksum); UTF-8 text never does, as no UTF-8
 * text starts with the byte `0xFF`. Anything else is an ordinary message and
 * is delivered as one.
 *
 * Kinds 1 to 4 may carry header fields (typed channels and tracing, see
 * docs/envelope.md) as extension fields, each `type` (1 byte), `length`
 * (1 byte), `length` bytes of value: 1 channel tag (UTF-8, 1..255 bytes),
 * 2 W3C `traceparent` (55 ASCII bytes), 3 W3C `tracestate` (ASCII,
 * 1..255 bytes), 4 error form (1 byte: 1 = the error reply's body is the
 * JSON of a declared error). Readers skip types they do not know; fields
 * that overrun `H - 4` are ignored as a whole (the envelope stays valid).
 * Kind 4 (message) is a channel message: correlation id 0, no reply-to.
 *
 * Kind 16 (fragment) carries a part of a large message: its fields (index,
 * count, total length) are extension fields before the checksum, and the
 * correlation id is the message's id; see fragments.ts.
 *
 * @module
 */

/**
 * The magic bytes that open every envelope.
 *
 * @since 0.2.0
 * @category constants
 */
export const ENVELOPE_MAGIC: Readonly<Uint8Array> = Uint8Array.of(0xff, 0x53, 0x46, 0x58)

/**
 * The envelope version this client writes and reads.
 *
 * @since 0.2.0
 * @category constants
 */
export const ENVELOPE_VERSION = 1

/**
 * The smallest header: fixed fields and the checksum, no reply-to.
 *
 * @since 0.2.0
 * @category constants
 */
export const ENVELOPE_MIN_HEADER = 24

/**
 * The largest header a reader accepts.
 *
 * @since 0.2.0
 * @category constants
 */
export const ENVELOPE_MAX_HEADER = 1024

/**
 * The kinds of envelope and their codes.
 *
 * @since 0.2.0
 * @category constants
 */
export const EnvelopeKinds = {
  Request: 1,
  Reply: 2,
  ErrorReply: 3,
  /** A typed channel's message (a publish): no correlation, no reply-to. */
  Message: 4,
  /** A fragment of a large message (see fragments.ts). */
  Fragment: 16,
} as const

/**
 * The kind of an envelope: a request, a reply, a reply saying the
 * responder failed (its body is the reason, UTF-8), or a fragment
 * (reserved).
 *
 * @since 0.2.0
 * @category models
 */
export type EnvelopeKind = keyof typeof EnvelopeKinds

/**
 * Header fields of an envelope of kind 1 to 4, as extension fields (see
 * the module notes and docs/envelope.md).
 *
 * @since 0.3.0
 * @category models
 */
export interface EnvelopeHeaders {
  /** The typed channel the message belongs to (1..255 bytes of UTF-8). */
  readonly channel?: string
  /** A W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`). */
  readonly traceparent?: string
  /** A W3C `tracestate` (at most 255 ASCII bytes). */
  readonly tracestate?: string
  /** `"json"`: an error reply's body is the JSON of a declared error. */
  readonly errorForm?: "json"
}

/**
 * The codes of the header fields.
 *
 * @since 0.3.0
 * @category constants
 */
export const HeaderFields = {
  Channel: 1,
  Traceparent: 2,
  Tracestate: 3,
  ErrorForm: 4,
} as const

/**
 * A decoded envelope header.
 *
 * @since 0.2.0
 * @category models
 */
export interface Envelope {
  /** What the envelope carries. */
  readonly kind: EnvelopeKind
  /** The correlation id, as 16 lowercase hex digits. */
  readonly correlationId: string
  /** The group a reply goes to (the requester's private group), or `""`. */
  readonly replyTo: string
  /** The body: a view into the payload, after the header. */
  readonly body: Uint8Array
  /** The header fields (channel tag, trace context), when it has any. */
  readonly headers?: EnvelopeHeaders
}

/**
 * What {@link encodeEnvelope} writes.
 *
 * @since 0.2.0
 * @category models
 */
export interface EnvelopeFields {
  /** What the envelope carries. */
  readonly kind: EnvelopeKind
  /** High 32 bits of the correlation id. */
  readonly idHigh: number
  /** Low 32 bits of the correlation id. */
  readonly idLow: number
  /** The reply-to group (at most 31 bytes of Latin-1), `""` for none. */
  readonly replyTo: string
  /** The body, copied after the header. */
  readonly body: Uint8Array
  /** Header fields to write (kinds 1 to 4). */
  readonly headers?: EnvelopeHeaders
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

/**
 * CRC-32 (IEEE 802.3, the one of zlib, PNG and `java.util.zip.CRC32`) of
 * `bytes[from..to)`.
 *
 * @since 0.2.0
 * @category encoding
 */
export const crc32 = (bytes: Uint8Array, from = 0, to = bytes.length): number => {
  let c = 0xffffffff
  for (let i = from; i < to; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

const KIND_BY_CODE: ReadonlyMap<number, EnvelopeKind> = new Map(
  (Object.keys(EnvelopeKinds) as Array<EnvelopeKind>).map((k) => [EnvelopeKinds[k], k]),
)

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, "0")

/**
 * Encodes an envelope and its body into one payload. Answers `undefined`
 * when the reply-to group is longer than 31 bytes or not Latin-1.
 *
 * @since 0.2.0
 * @category encoding
 */
export const encodeEnvelope = (f: EnvelopeFields): Uint8Array | undefined => {
  const r = f.replyTo.length
  if (r > 31) return undefined
  const replyTo = new Uint8Array(r)
  for (let i = 0; i < r; i++) {
    const c = f.replyTo.charCodeAt(i)
    if (c > 0xff) return undefined
    replyTo[i] = c
  }
  const extension = f.headers === undefined ? EMPTY : encodeHeaders(f.headers)
  if (extension === undefined) return undefined
  return writeEnvelope(f.kind, f.idHigh, f.idLow, replyTo, extension, f.body)
}

const EMPTY = new Uint8Array(0)

/**
 * Writes an envelope whose parts are known to be valid: a reply-to of at
 * most 31 Latin-1 bytes, and `extension` fields (placed before the
 * checksum, which `H` covers; at most 1024 - 24 - 31 bytes).
 *
 * @since 0.2.0
 * @category encoding
 */
export const writeEnvelope = (
  kind: EnvelopeKind,
  idHigh: number,
  idLow: number,
  replyTo: Uint8Array,
  extension: Uint8Array,
  body: Uint8Array,
): Uint8Array => {
  const r = replyTo.length
  const h = ENVELOPE_MIN_HEADER + r + extension.length
  const out = new Uint8Array(h + body.length)
  out.set(ENVELOPE_MAGIC, 0)
  out[4] = ENVELOPE_VERSION
  out[5] = EnvelopeKinds[kind]
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  view.setUint16(6, h)
  view.setUint32(8, idHigh >>> 0)
  view.setUint32(12, idLow >>> 0)
  out[16] = r
  out.set(replyTo, 20)
  out.set(extension, 20 + r)
  view.setUint32(h - 4, crc32(out, 0, h - 4))
  out.set(body, h)
  return out
}

/**
 * Whether `payload` is an envelope (every check of the module notes), and
 * if so its header and body; `undefined` for any other payload.
 *
 * @since 0.2.0
 * @category decoding
 */
export const decodeEnvelope = (payload: Uint8Array): Envelope | undefined => {
  const parsed = parseEnvelope(payload)
  if (parsed === undefined) return undefined
  return {
    kind: parsed.kind,
    correlationId: hex8(parsed.idHigh) + hex8(parsed.idLow),
    replyTo: parsed.replyTo,
    body: payload.subarray(parsed.headerLength),
    ...(parsed.kind !== "Fragment" && parsed.headerLength > 24 + parsed.replyTo.length
      ? { headers: readHeaders(payload, parsed.replyTo.length, parsed.headerLength) }
      : {}),
  }
}

/**
 * The fields of an envelope as numbers (what the request machinery matches
 * on), or `undefined` when `payload` is not an envelope.
 *
 * @since 0.2.0
 * @category decoding
 */
export const parseEnvelope = (payload: Uint8Array): {
  readonly kind: EnvelopeKind
  readonly idHigh: number
  readonly idLow: number
  readonly replyTo: string
  readonly headerLength: number
} | undefined => {
  const n = payload.length
  if (n < ENVELOPE_MIN_HEADER) return undefined
  if (payload[0] !== 0xff || payload[1] !== 0x53 || payload[2] !== 0x46 || payload[3] !== 0x58) return undefined
  if (payload[4] !== ENVELOPE_VERSION) return undefined
  const kind = KIND_BY_CODE.get(payload[5])
  if (kind === undefined) return undefined
  const h = (payload[6] << 8) | payload[7]
  if (h < ENVELOPE_MIN_HEADER || h > ENVELOPE_MAX_HEADER || h > n) return undefined
  const r = payload[16]
  if (r > 31 || 20 + r > h - 4) return undefined
  if (payload[17] !== 0 || payload[18] !== 0 || payload[19] !== 0) return undefined
  const sum = ((payload[h - 4] << 24) | (payload[h - 3] << 16) | (payload[h - 2] << 8) | payload[h - 1]) >>> 0
  if (sum !== crc32(payload, 0, h - 4)) return undefined
  let replyTo = ""
  for (let i = 0; i < r; i++) replyTo += String.fromCharCode(payload[20 + i])
  const idHigh = ((payload[8] << 24) | (payload[9] << 16) | (payload[10] << 8) | payload[11]) >>> 0
  const idLow = ((payload[12] << 24) | (payload[13] << 16) | (payload[14] << 8) | payload[15]) >>> 0
  return { kind, idHigh, idLow, replyTo, headerLength: h }
}

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder()

const asciiBytes = (s: string): Uint8Array | undefined => {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e) return undefined
    out[i] = c
  }
  return out
}

/**
 * Encodes header fields as extension bytes (type, length, value each);
 * `undefined` when a field does not fit: a channel tag empty or over 255
 * bytes of UTF-8, a `traceparent` or `tracestate` that is not printable
 * ASCII of 1..255 bytes.
 *
 * @since 0.3.0
 * @category encoding
 */
export const encodeHeaders = (h: EnvelopeHeaders): Uint8Array | undefined => {
  const fields: Array<readonly [number, Uint8Array]> = []
  if (h.channel !== undefined) fields.push([HeaderFields.Channel, utf8Encoder.encode(h.channel)])
  if (h.traceparent !== undefined) {
    const b = asciiBytes(h.traceparent)
    if (b === undefined) return undefined
    fields.push([HeaderFields.Traceparent, b])
  }
  if (h.tracestate !== undefined) {
    const b = asciiBytes(h.tracestate)
    if (b === undefined) return undefined
    fields.push([HeaderFields.Tracestate, b])
  }
  if (h.errorForm === "json") fields.push([HeaderFields.ErrorForm, Uint8Array.of(1)])
  let n = 0
  for (const [, v] of fields) {
    if (v.length === 0 || v.length > 255) return undefined
    n += 2 + v.length
  }
  const out = new Uint8Array(n)
  let at = 0
  for (const [t, v] of fields) {
    out[at] = t
    out[at + 1] = v.length
    out.set(v, at + 2)
    at += 2 + v.length
  }
  return out
}

/**
 * The header fields of an envelope already checked by {@link parseEnvelope}
 * (`r` its reply-to length, `h` its header length): the fields between
 * `20 + r` and `h - 4`, `{}` when they overrun it.
 *
 * @since 0.3.0
 * @category decoding
 */
export const readHeaders = (payload: Uint8Array, r: number, h: number): EnvelopeHeaders => {
  const end = h - 4
  let at = 20 + r
  let channel: string | undefined
  let traceparent: string | undefined
  let tracestate: string | undefined
  let errorForm: "json" | undefined
  while (at < end) {
    if (at + 2 > end) return {}
    const t = payload[at]
    const n = payload[at + 1]
    const from = at + 2
    at = from + n
    if (at > end) return {}
    const value = payload.subarray(from, at)
    switch (t) {
      case HeaderFields.Channel:
        channel = utf8Decoder.decode(value)
        break
      case HeaderFields.Traceparent:
        traceparent = String.fromCharCode(...value)
        break
      case HeaderFields.Tracestate:
        tracestate = String.fromCharCode(...value)
        break
      case HeaderFields.ErrorForm:
        if (n === 1 && value[0] === 1) errorForm = "json"
        break
    }
  }
  return {
    ...(channel === undefined ? {} : { channel }),
    ...(traceparent === undefined ? {} : { traceparent }),
    ...(tracestate === undefined ? {} : { tracestate }),
    ...(errorForm === undefined ? {} : { errorForm }),
  }
}

/**
 * The header fields of an envelope of kind 1 to 4 (`{}` when it has none,
 * or when they overrun the header); `undefined` when `payload` is not such
 * an envelope.
 *
 * @since 0.3.0
 * @category decoding
 */
export const decodeHeaders = (payload: Uint8Array): EnvelopeHeaders | undefined => {
  const parsed = parseEnvelope(payload)
  if (parsed === undefined || parsed.kind === "Fragment") return undefined
  return readHeaders(payload, parsed.replyTo.length, parsed.headerLength)
}

/**
 * Whether the header fields of an envelope already checked by
 * {@link parseEnvelope} (`r` its reply-to length, `h` its header length)
 * include the channel tag whose UTF-8 bytes are `tag` — compared in place,
 * with no string made (what a subscriber asks of every message).
 *
 * @since 0.3.0
 * @category decoding
 */
export const hasChannelTag = (payload: Uint8Array, r: number, h: number, tag: Uint8Array): boolean => {
  const end = h - 4
  let at = 20 + r
  while (at + 2 <= end) {
    const t = payload[at]
    const n = payload[at + 1]
    const from = at + 2
    at = from + n
    if (at > end) return false
    if (t === HeaderFields.Channel) {
      if (n !== tag.length) return false
      for (let i = 0; i < n; i++) if (payload[from + i] !== tag[i]) return false
      return true
    }
  }
  return false
}
