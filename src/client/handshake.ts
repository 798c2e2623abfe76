/**
 * The client side of the handshake (protocol reference section 3) over an
 * open byte stream: connect message and auth choice each in one write, the
 * daemon's replies buffered across any number of reads.
 *
 * @module
 */
import { Effect } from "effect"
import { SPREAD_VERSION } from "../protocol/constants.ts"
import { concatBytes } from "../protocol/bytes.ts"
import {
  type Accept,
  encodeConnect,
  isProtocolError,
  parseAccept,
  parseAuthList,
  type ParseResult,
} from "../protocol/handshake.ts"
import { parsePrivateGroup } from "../protocol/names.ts"
import type { ByteStream } from "../transport/conn.ts"
import type { TransportError } from "../transport/errors.ts"
import { ConnectError, rejectError } from "./errors.ts"
import type { ResolvedOptions } from "./options.ts"

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
    // Reads until `parse` answers; the daemon may split any reply.
    const readUntil = <A>(parse: (b: Uint8Array) => ParseResult<A>, what: string) =>
      Effect.gen(function* () {
        while (true) {
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
    const list = yield* readUntil(parseAuthList, "auth-method list")
    if (list._tag === "Reject") return yield* Effect.fail(rejectError(address, list.code, list.reason))
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
