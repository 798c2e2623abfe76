/**
 * The server side of the handshake: the quotas a new connection meets, the
 * connect message, the auth exchange and the accept, each part with its
 * deadline on the daemon's Clock. An accepted connection is handed to
 * {@link startSession}.
 *
 * @module
 */
import { type Clock, Effect, Random } from "effect"
import { SPREAD_VERSION } from "../protocol/constants.ts"
import { concatBytes } from "../protocol/bytes.ts"
import {
  encodeAccept,
  encodeAuthList,
  encodeReject,
  hasPatchByte,
  isProtocolError,
  parseAuthChoice,
  parseConnect,
  type ParseResult,
  usesAuthExchange,
} from "../protocol/handshake.ts"
import { privateGroupName, validatePrivateName } from "../protocol/names.ts"
import { quoted } from "../protocol/printable.ts"
import type { ByteStream } from "../transport/conn.ts"
import type { DaemonContext } from "./context.ts"
import { type Accepted, startSession } from "./session.ts"

const REJECT_QUOTA = -3
const REJECT_ILLEGAL_NAME = -5
const REJECT_NOT_UNIQUE = -6
const REJECT_VERSION = -7
const REJECT_AUTH = -9

/**
 * Once the first byte of a handshake part (the connect message, the auth
 * choice) is in, the rest must follow within this time. A real daemon reads
 * each part with one non-blocking recv and refuses a part split across
 * writes [T22 conn5, conn8]; this keeps its answers (REJECT_ILLEGAL_NAME,
 * REJECT_AUTH) while tolerating a part that TCP delivers in two segments.
 */
const HANDSHAKE_PART_MS = 100

type HandshakeEnd =
  | { readonly _tag: "Rejected"; readonly code: number; readonly why: string }
  | { readonly _tag: "Gone"; readonly why: string }

const gone = (why: string): HandshakeEnd => ({ _tag: "Gone", why })
const rejected = (code: number, why: string): HandshakeEnd => ({ _tag: "Rejected", code, why })

/** Accumulates handshake bytes and parses them as they arrive. */
class HandshakeReader {
  #buf: Uint8Array = new Uint8Array(0)
  constructor(readonly stream: ByteStream, readonly clock: Clock.Clock) {}

  /** Bytes received past the last part parsed. */
  get rest(): Uint8Array {
    return this.#buf
  }

  /**
   * Reads until `parse` succeeds. Once the part has begun, the rest must
   * come within {@link HANDSHAKE_PART_MS}; `short` says how to end if not.
   */
  need<A>(
    parse: (b: Uint8Array) => ParseResult<A>,
    short: (b: Uint8Array) => HandshakeEnd,
  ): Effect.Effect<A, HandshakeEnd> {
    let deadline = -1
    const read = this.stream.read.pipe(Effect.mapError((e) => gone(e.message)))
    const loop: Effect.Effect<A, HandshakeEnd> = Effect.suspend(() => {
      const r = parse(this.#buf)
      if (r === undefined) {
        const now = this.clock.unsafeCurrentTimeMillis()
        if (this.#buf.length > 0 && deadline < 0) deadline = now + HANDSHAKE_PART_MS
        const next = deadline < 0 ? read : read.pipe(
          Effect.timeoutFail({
            duration: Math.max(0, deadline - now),
            onTimeout: () => short(this.#buf),
          }),
        )
        return Effect.flatMap(next, (chunk) => {
          if (chunk === undefined) return Effect.fail(gone("EOF during handshake"))
          this.#buf = concatBytes([this.#buf, chunk])
          return loop
        })
      }
      if (isProtocolError(r)) return Effect.fail(gone(r.message))
      this.#buf = this.#buf.subarray(r.consumed)
      return Effect.succeed(r.value)
    })
    return loop
  }
}

// A connect message cut short: a reject once the name length is in (the
// name itself came short), else a silent close, as the real daemon does.
const shortConnect = (b: Uint8Array): HandshakeEnd => {
  const head = b.length >= 2 && hasPatchByte({ major: b[0], minor: b[1] }) ? 5 : 4
  return b.length >= head
    ? rejected(REJECT_ILLEGAL_NAME, `the private name came in pieces (${b.length - head} of ${b[head - 1]} bytes)`)
    : gone(`the connect message came in pieces (${b.length} bytes)`)
}

const shortAuthChoice = (b: Uint8Array): HandshakeEnd =>
  rejected(REJECT_AUTH, `the auth choice came in pieces (${b.length} of 90 bytes)`)

// `r<random 0..9998>-<counter>`, at most 9 characters, unique on this
// daemon: the counter is the daemon's own, the random part comes from
// Effect's `Random` (seeded per fiber; TestRandom in tests).
const generateName = (ctx: DaemonContext): Effect.Effect<string> =>
  Effect.gen(function* () {
    for (;;) {
      ctx.shared.generated = (ctx.shared.generated + 1) % 1000
      const name = `r${yield* Random.nextIntBetween(0, 9999)}-${ctx.shared.generated}`
      if (!ctx.reserved.has(name)) return name
    }
  })

/** What a connection holds and must give back when it ends. */
interface Held {
  /** The private name it reserved. */
  name: string | undefined
  /** Whether it took a session place. */
  place: boolean
}

const handshake = (
  ctx: DaemonContext,
  stream: ByteStream,
  held: Held,
): Effect.Effect<Accepted, HandshakeEnd> =>
  Effect.gen(function* () {
    const reader = new HandshakeReader(stream, ctx.clock)
    const c = yield* reader.need(parseConnect, shortConnect)
    if (c._tag === "TooOld") {
      const v = c.version
      return yield* Effect.fail(
        rejected(REJECT_VERSION, `client version ${v.major}.${v.minor}.${v.patch} is below 3.1.0`),
      )
    }
    if (c._tag === "IllegalNameLength") {
      return yield* Effect.fail(rejected(REJECT_ILLEGAL_NAME, `private name length ${c.length} is outside 0..10`))
    }
    const msg = c.message
    let name = msg.name
    if (name.length === 0) {
      name = yield* generateName(ctx)
    } else {
      const bad = validatePrivateName(name)
      if (bad !== undefined) return yield* Effect.fail(rejected(REJECT_ILLEGAL_NAME, bad.detail))
      if (ctx.reserved.has(name)) {
        return yield* Effect.fail(rejected(REJECT_NOT_UNIQUE, `private name ${quoted(name)} is in use`))
      }
    }
    ctx.reserved.add(name)
    held.name = name
    if (usesAuthExchange(msg.version)) {
      const offered = ctx.config.authMethods
      yield* send(stream, encodeAuthList(offered.map((m) => m.name)))
      const asked = yield* reader.need(parseAuthChoice, shortAuthChoice)
      if (asked.length === 0) return yield* Effect.fail(rejected(REJECT_AUTH, "the auth choice names no method"))
      const run = new Set<string>([...asked, ...ctx.config.requiredAuthMethods])
      for (const m of run) {
        const method = offered.find((o) => o.name === m)
        if (method === undefined) {
          return yield* Effect.fail(rejected(REJECT_AUTH, `auth method ${quoted(m)} is not enabled`))
        }
        const ok = yield* method.authenticate({ privateName: name, remote: stream.address, transport: ctx.transport })
        if (!ok) return yield* Effect.fail(rejected(REJECT_AUTH, `auth method ${quoted(m)} refused the client`))
      }
    }
    // Places go to sessions in the order their handshakes finish; a
    // handshake never holds one.
    if (ctx.shared.sessions >= ctx.config.maxSessions) {
      return yield* Effect.fail(rejected(REJECT_QUOTA, `${ctx.config.maxSessions} sessions (maxSessions)`))
    }
    ctx.shared.sessions++
    held.place = true
    yield* send(stream, encodeAccept(SPREAD_VERSION, privateGroupName(name, ctx.config.name), msg.version))
    return { name, membership: msg.membership, rest: reader.rest }
  })

const send = (stream: ByteStream, bytes: Uint8Array): Effect.Effect<void, HandshakeEnd> =>
  stream.write(bytes).pipe(Effect.mapError((e) => gone(e.message)))

/**
 * Serves one accepted connection: the quotas, the handshake, then hands an
 * accepted session to {@link startSession} and returns. Never fails: every
 * ending of the handshake (reject, EOF, timeout, shutdown) is logged and
 * cleaned up.
 *
 * @since 0.1.0
 * @category combinators
 */
export const serveConnection = (ctx: DaemonContext, stream: ByteStream): Effect.Effect<void> => {
  const held: Held = { name: undefined, place: false }
  const shared = ctx.shared
  const config = ctx.config
  let handshaking = false
  let handedOff = false
  const program = Effect.gen(function* () {
    if (shared.sessions >= config.maxSessions) {
      yield* Effect.logWarning(`Rejected ${stream.address}: REJECT_QUOTA (${config.maxSessions} sessions)`)
      yield* stream.write(encodeReject(REJECT_QUOTA)).pipe(Effect.ignore)
      return
    }
    if (shared.handshaking >= config.maxHandshaking) {
      // One line per episode: a flood of slow handshakes must not flood the log.
      if (shared.handshakesRefused++ === 0) {
        yield* Effect.logWarning(
          `Refusing connections with REJECT_QUOTA: ${config.maxHandshaking} handshakes in progress (maxHandshaking)`,
        )
      }
      yield* stream.write(encodeReject(REJECT_QUOTA)).pipe(Effect.ignore)
      return
    }
    if (shared.handshakesRefused > 0) {
      yield* Effect.logInfo(`Accepting handshakes again (${shared.handshakesRefused} connections refused)`)
      shared.handshakesRefused = 0
    }
    shared.handshaking++
    handshaking = true
    const hs = yield* handshake(ctx, stream, held).pipe(
      Effect.timeoutFail({
        duration: config.handshakeTimeoutMs,
        onTimeout: () => gone(`no handshake within ${config.handshakeTimeoutMs} ms`),
      }),
      Effect.either,
    )
    shared.handshaking--
    handshaking = false
    if (hs._tag === "Left") {
      const end = hs.left
      if (end._tag === "Rejected") {
        yield* Effect.logInfo(`Rejected ${stream.address}: code ${end.code}: ${end.why}`)
        yield* stream.write(encodeReject(end.code)).pipe(Effect.ignore)
      } else {
        yield* Effect.logDebug(`Closed ${stream.address} during handshake: ${end.why}`)
      }
      return
    }
    // The session runs on without a fiber; it gives back what this
    // connection holds when it ends.
    handedOff = true
    startSession(ctx, stream, hs.right, release)
  })
  const release = (): void => {
    shared.open--
    if (handshaking) shared.handshaking--
    if (held.place) shared.sessions--
    if (held.name !== undefined && !ctx.engine.has(held.name)) ctx.reserved.delete(held.name)
    Effect.runSync(stream.close)
  }
  return program.pipe(Effect.ensuring(Effect.sync(() => handedOff ? undefined : release())))
}
