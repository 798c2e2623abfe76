/**
 * One client connection inside the daemon: the handshake, then a reader
 * loop that decodes, checks and hands each request to the engine, and a
 * writer fiber that drains the session's bounded outbox in coalesced writes.
 *
 * @module
 */
import { type Clock, Effect, Fiber, Random } from "effect"
import { SPREAD_VERSION } from "../protocol/constants.ts"
import { concatBytes } from "../protocol/bytes.ts"
import { FrameDecoder } from "../protocol/decoder.ts"
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
import { compacted, Outbox } from "../transport/outbox.ts"
import { clientFrameValidator, commandGroup } from "../protocol/messages.ts"
import type { ResolvedConfig } from "./config.ts"
import type { Engine, EngineSession } from "./engine.ts"

/**
 * What the daemon knows of one operational session, for the checks that
 * run across all of them (the deepest outbox, unfinished frames).
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionControl {
  /** The session's outbox. */
  readonly outbox: Outbox
  /**
   * When (Clock ms) the frame the session is in the middle of sending
   * began, or -1 when no frame is half-received.
   */
  readonly partialSince: () => number
  /** Ends the session (a limit was passed): logs `why` and closes the socket. */
  readonly expire: (why: string) => void
}

/**
 * Counters and registries the daemon's listeners share.
 *
 * @since 0.1.0
 * @category models
 */
export interface DaemonShared {
  /** Connections accepted and not yet closed (handshaking included). */
  open: number
  /** Connections still shaking hands. */
  handshaking: number
  /** Places taken by operational sessions (and handshakes just accepted). */
  sessions: number
  /** Connections refused since the handshake bound was last reached (for one log line per episode). */
  handshakesRefused: number
  /** Every operational session. */
  readonly live: Set<SessionControl>
  /** The deepest any outbox has been since the daemon started (messages). */
  peak: number
  /** The deepest any outbox has been since the metrics were last published. */
  recentPeak: number
  /** Generated private names handed out so far (the counter in `r<random>-<counter>`). */
  generated: number
}

/**
 * What the daemon shares with each session.
 *
 * @since 0.1.0
 * @category models
 */
export interface DaemonContext {
  readonly config: ResolvedConfig
  readonly engine: Engine
  /** Names taken by operational sessions and by sessions still shaking hands. */
  readonly reserved: Set<string>
  readonly shared: DaemonShared
  readonly transport: "tcp" | "unix"
  /** The daemon's clock: deadlines and the stall rule read it. */
  readonly clock: Clock.Clock
}

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

/**
 * A session is cut off as a slow reader only when its socket has taken
 * nothing for this long. A real daemon writes each frame to the socket at
 * once and queues (and counts against MaxSessionMessages) only what the
 * full socket buffer refuses; here frames always pass through the outbox,
 * so a burst read in one turn can queue many frames for a reader that is
 * keeping up. Counting them only while the socket is stalled keeps
 * Spread's meaning: the limit applies once the socket buffer is full.
 */
const STALL_MS = 100

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

interface Accepted {
  readonly name: string
  readonly membership: boolean
  readonly rest: Uint8Array
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
 * Serves one accepted connection until it ends. Never fails: every ending
 * (reject, EOF, protocol error, cut-off, shutdown) is logged and cleaned up.
 *
 * @since 0.1.0
 * @category combinators
 */
export const serveConnection = (ctx: DaemonContext, stream: ByteStream): Effect.Effect<void> => {
  const held: Held = { name: undefined, place: false }
  const shared = ctx.shared
  const config = ctx.config
  let handshaking = false
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
    yield* runSession(ctx, stream, hs.right)
  })
  return program.pipe(
    Effect.ensuring(Effect.suspend(() => {
      shared.open--
      if (handshaking) shared.handshaking--
      if (held.place) shared.sessions--
      if (held.name !== undefined && !ctx.engine.has(held.name)) ctx.reserved.delete(held.name)
      return stream.close
    })),
  )
}

/** How a session ended; `warn` endings are logged at Warning, once. */
type Ending = { readonly why: string; readonly warn: boolean }

const runSession = (ctx: DaemonContext, stream: ByteStream, hs: Accepted): Effect.Effect<void> => {
  let current: EngineSession | undefined
  let control: SessionControl | undefined
  return Effect.gen(function* () {
    const config = ctx.config
    const depth = ctx.shared
    const clock = ctx.clock
    const privateGroup = privateGroupName(hs.name, config.name)
    // The outbox bounds bytes; the message limit is applied by `offer`.
    const box = new Outbox({ maxMessages: Number.MAX_SAFE_INTEGER, maxBytes: config.maxSessionBytes })
    const maxMessages = config.maxSessionMessages
    // When the write in flight started, or -1 while the writer waits for frames.
    let writingSince = -1
    // Whether the queue was compacted during the current stall.
    let compactedSinceStall = false
    let ended: Ending | undefined
    const end = (why: string, warn: boolean): void => {
      ended ??= { why, warn }
    }
    // When the frame being received began (Clock ms), or -1 between frames.
    let partialSince = -1
    control = {
      outbox: box,
      partialSince: () => partialSince,
      expire: (why) => {
        end(why, true)
        Effect.runSync(stream.close)
      },
    }
    depth.live.add(control)
    const session: EngineSession = {
      privateName: hs.name,
      privateGroup,
      membership: hs.membership,
      offer: (bytes) => {
        const stalled = writingSince >= 0 && box.messages > 0 &&
          clock.unsafeCurrentTimeMillis() - writingSince >= STALL_MS
        if (stalled) {
          if (box.messages >= maxMessages) return "Overflow"
          // Frames are views into read chunks of up to 64 KiB. While the
          // reader is stuck, queue only their own bytes (the first time,
          // compact what is already queued too), so the byte limit bounds
          // memory; a reader that keeps up pays no copy.
          if (!compactedSinceStall) {
            box.compact()
            compactedSinceStall = true
          }
          bytes = compacted(bytes)
        }
        const r = box.offer(bytes)
        const n = box.messages
        if (n > depth.recentPeak) {
          depth.recentPeak = n
          if (n > depth.peak) depth.peak = n
        }
        return r
      },
      cutOff: (reason) => {
        end(
          `cut off: ${reason} (${box.messages} frames, ${box.bytes} bytes queued; limits ${maxMessages} frames ` +
            `with the socket stalled ${STALL_MS} ms, ${config.maxSessionBytes} bytes)`,
          true,
        )
        box.clear()
        box.close()
        Effect.runSync(stream.close)
      },
    }
    ctx.engine.add(session)
    current = session
    yield* Effect.logDebug(`Session ${privateGroup} open from ${stream.address}`)
    const writeAll = Effect.gen(function* () {
      while (true) {
        const batch = yield* box.take
        if (batch === undefined) return
        writingSince = clock.unsafeCurrentTimeMillis()
        yield* stream.write(batch)
        writingSince = -1
        compactedSinceStall = false
      }
    })
    const writer = yield* Effect.fork(
      writeAll.pipe(
        Effect.catchAll((e) =>
          Effect.sync(() => {
            end(`write failed: ${e.message}`, false)
            // Nothing more can be written: later deliveries find it closed.
            box.clear()
            box.close()
            Effect.runSync(stream.close)
          })
        ),
      ),
    )
    const decoder = new FrameDecoder("toDaemon")
    const checkFrame = clientFrameValidator(hs.name, config.name)
    // Joins refused so far: the first is logged, the count ends the session's last line.
    let refusals = 0
    let refusal: string | undefined
    // Handles every whole frame buffered; answers false once the session ends.
    const drain = (): boolean => {
      for (let handled = false;; handled = true) {
        const f = decoder.next()
        if (f === undefined) {
          // A frame begun and not finished starts (or keeps) its deadline.
          if (decoder.buffered === 0) partialSince = -1
          else if (handled || partialSince < 0) partialSince = clock.unsafeCurrentTimeMillis()
          return true
        }
        if (isProtocolError(f)) {
          end(`killed: ${f.message}`, true)
          return false
        }
        const req = checkFrame(f)
        if (isProtocolError(req)) {
          end(`killed: ${req.message}`, true)
          return false
        }
        switch (req._tag) {
          case "Multicast":
            ctx.engine.multicast(session, f, req.selfDiscard)
            break
          case "Join": {
            const group = commandGroup(f)
            const refused = ctx.engine.join(session, group, f)
            if (refused !== undefined && refusals++ === 0) refusal = `join of ${quoted(group)} refused: ${refused}`
            break
          }
          case "Leave":
            ctx.engine.leave(session, commandGroup(f))
            break
          case "Kill":
            end("disconnected (KILL)", false)
            return false
        }
      }
    }
    if (hs.rest.length > 0) decoder.push(hs.rest)
    let go = drain()
    while (go && ended === undefined) {
      const chunk = yield* Effect.either(stream.read)
      if (chunk._tag === "Left") {
        end(chunk.left.reason === "Closed" ? "closed" : `read failed: ${chunk.left.message}`, false)
        break
      }
      if (chunk.right === undefined) {
        const cut = decoder.end()
        if (cut === undefined) end("EOF", false)
        else end(`killed: EOF inside a message (${cut.detail})`, true)
        break
      }
      decoder.push(chunk.right)
      go = drain()
      if (refusal !== undefined) {
        yield* Effect.logInfo(`Session ${privateGroup} ${refusal} (further refusals are only counted)`)
        refusal = undefined
      }
    }
    // Sequence the disconnect, then let the writer flush what is queued
    // (bounded), then close.
    ctx.engine.remove(session)
    box.close()
    const e0 = ended ?? { why: "closed", warn: false }
    const e = refusals === 0 ? e0 : { ...e0, why: `${e0.why} (${refusals} joins refused)` }
    if (e.warn) yield* Effect.logWarning(`Session ${privateGroup} ${e.why}`)
    else yield* Effect.logDebug(`Session ${privateGroup} ended: ${e.why}`)
    yield* Fiber.join(writer).pipe(Effect.timeout(1000), Effect.ignore)
  }).pipe(
    // However the session ends (shutdown interrupts it), it leaves the engine.
    Effect.ensuring(Effect.sync(() => {
      if (current !== undefined) ctx.engine.remove(current)
      if (control !== undefined) ctx.shared.live.delete(control)
    })),
  )
}
