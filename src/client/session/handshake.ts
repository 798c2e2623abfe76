/**
 * The client side of the handshake (protocol reference section 3) over an
 * open byte stream: connect message and auth choice each in one write, the
 * daemon's replies buffered across any number of reads.
 *
 * @module
 */
import { Effect } from "effect"
import { MAX_AUTH_LIST, SPREAD_VERSION } from "../../protocol/constants.ts"
import { concatBytes } from "../../protocol/bytes.ts"
import {
  type Accept,
  encodeConnect,
  isProtocolError,
  parseAccept,
  parseAuthList,
  type ParseResult,
} from "../../protocol/handshake.ts"
import { parsePrivateGroup } from "../../protocol/names.ts"
import type { ByteStream } from "../../transport/conn.ts"
import type { TransportError } from "../../transport/errors.ts"
import { ConnectError, rejectError } from "../core/connect_error.ts"
import type { ResolvedOptions } from "../options.ts"

/**
 * A completed handshake: the accept, the parts of the private group, and
 * any bytes the daemon sent after the accept (to feed the frame decoder).
 *
 * @since 0.1.0
 * @category models
 */
export interface Handshake {
  readonly accept: Accept
  readonly privateName: string
  readonly daemonName: string
  readonly leftover: Uint8Array
}

const EMPTY = new Uint8Array(0)

// Auth method names as Spread daemons spell them ("NULL", "IP", "PASSWORD").
const isAuthName = (m: string): boolean => /^[A-Za-z0-9_.-]+$/.test(m)

// Whether the bytes so far can begin a Spread daemon's first reply: a reject
// byte (negative), or a length of at most 90 followed by names and spaces.
const plausibleAuthList = (b: Uint8Array): boolean => {
  if (b.length === 0 || b[0] >= 0x80) return true
  if (b[0] > MAX_AUTH_LIST) return false
  const end = Math.min(b.length, 1 + b[0])
  for (let i = 1; i < end; i++) {
    const c = b[i]
    const ok = c === 0x20 || c === 0x2d || c === 0x2e || c === 0x5f || (c >= 0x30 && c <= 0x39) ||
      (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    if (!ok) return false
  }
  return true
}

const PEEK = 40

// The first bytes of a reply, printable: control and non-ASCII bytes as \xNN.
const peek = (bytes: Uint8Array): string => {
  let s = ""
  for (let i = 0; i < bytes.length && i < PEEK; i++) {
    const c = bytes[i]
    s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`
  }
  return bytes.length > PEEK ? `${s}…` : s
}

const notSpread = (address: string, reply: Uint8Array) =>
  new ConnectError({
    reason: "NotSpreadDaemon",
    address,
    detail: `not a Spread daemon: it answered "${peek(reply)}" where a Spread daemon sends its auth-method list`,
  })

/**
 * Runs the handshake on `stream`. Fails with the {@link ConnectError} naming
 * the reject, the EOF, or the malformed reply.
 *
 * @since 0.1.0
 * @category constructors
 */
export const handshake = (stream: ByteStream, opts: ResolvedOptions): Effect.Effect<Handshake, ConnectError> =>
  Effect.gen(function* () {
    const address = opts.label
    const closed = (detail: string, cause?: unknown) =>
      new ConnectError({ reason: "ConnectionClosed", address, detail, cause })
    const write = (bytes: Uint8Array, what: string) =>
      Effect.mapError(stream.write(bytes), (e: TransportError) => closed(`sending the ${what} failed`, e))

    let buffered: Uint8Array = EMPTY
    // The bytes the last parse looked at (quoted when the peer is no Spread daemon).
    let seen: Uint8Array = EMPTY
    // Reads until `parse` answers; the daemon may split any reply. A reply
    // that is not `plausible` so far fails at once as no Spread daemon's.
    const readUntil = <A>(
      parse: (b: Uint8Array) => ParseResult<A>,
      what: string,
      plausible: (b: Uint8Array) => boolean = () => true,
    ) =>
      Effect.gen(function* () {
        while (true) {
          seen = buffered
          if (!plausible(buffered)) return yield* Effect.fail(notSpread(address, buffered))
          const r = parse(buffered)
          if (isProtocolError(r)) return yield* Effect.fail(closed(`the ${what} is malformed: ${r.detail}`, r))
          if (r !== undefined) {
            buffered = buffered.subarray(r.consumed)
            return r.value
          }
          const chunk = yield* Effect.mapError(stream.read, (e) => closed(`reading the ${what} failed`, e))
          if (chunk === undefined) {
            return yield* Effect.fail(closed(`the daemon closed the connection before sending the ${what}`))
          }
          buffered = concatBytes([buffered, chunk])
        }
      })

    yield* write(
      encodeConnect({
        version: SPREAD_VERSION,
        membership: opts.membership,
        priority: opts.priority,
        name: opts.name,
      }),
      "connect message",
    )
    const list = yield* readUntil(parseAuthList, "auth-method list", plausibleAuthList)
    if (list._tag === "Reject") return yield* Effect.fail(rejectError(address, list.code, list.reason))
    if (!list.methods.every(isAuthName)) return yield* Effect.fail(notSpread(address, seen))
    const missing = opts.auth.filter((m) => !list.methods.includes(m))
    if (missing.length > 0) {
      return yield* Effect.fail(
        new ConnectError({
          reason: "RejectAuth",
          address,
          detail: `the daemon does not offer ${missing.map((m) => `"${m}"`).join(", ")} (it offers ${
            list.methods.map((m) => `"${m}"`).join(", ") || "nothing"
          })`,
        }),
      )
    }
    yield* write(opts.authChoice, "auth choice")
    const reply = yield* readUntil((b) => parseAccept(b, SPREAD_VERSION), "accept")
    if (reply._tag === "Reject") return yield* Effect.fail(rejectError(address, reply.code, reply.reason))
    if (reply.version.major < 3) {
      return yield* Effect.fail(
        new ConnectError({
          reason: "RejectVersion",
          address,
          detail: `the daemon speaks version ${reply.version.major}.${reply.version.minor}, older than 3`,
        }),
      )
    }
    const parts = parsePrivateGroup(reply.privateGroup)
    if (parts === undefined) {
      return yield* Effect.fail(closed(`the accept names "${reply.privateGroup}", which is not "#name#daemon"`))
    }
    if (opts.name.length > 0 && parts.privateName !== opts.name) {
      return yield* Effect.fail(
        closed(`the accept names "${reply.privateGroup}" for the requested name "${opts.name}"`),
      )
    }
    return { accept: reply, privateName: parts.privateName, daemonName: parts.daemonName, leftover: buffered }
  })
