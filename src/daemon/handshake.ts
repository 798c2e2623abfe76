/**
 * The server side of the handshake: the quotas a new connection meets, the
 * connect message, the auth exchange and the accept, each part with its
 * deadline on the daemon's Clock. An accepted connection is handed to
 * {@link startSession}.
 *
 * Like a session, a handshake keeps no fiber: it is a small object, one
 * pending read, and a place in `shared.handshakes`. Its deadlines are
 * checked by the daemon's one handshake sweep (every
 * {@link HANDSHAKE_TICK_MS} of Clock time while any handshake is
 * unfinished), not by a timer race per connection: a burst of thousands of
 * connections leaves little garbage behind (10,000 idle sessions are a
 * design target, measured right after they open).
 *
 * When all `maxHandshaking` places are taken, a newcomer displaces the
 * oldest unfinished handshake that has not sent a byte yet, or, when every
 * one has, the oldest of all if it began at least {@link STALLED_MS} ago
 * (the displaced one gets REJECT_QUOTA); only when neither exists is the
 * newcomer refused. So connections that stall their handshake (a
 * slowloris) cannot keep legitimate clients out, which send their connect
 * message at once and finish in a few round trips, while the number of
 * handshakes held, and so their memory, stays bounded. (A stalled
 * connection that sends part of a message is closed by the part deadline,
 * 100 ms.) Under such a flood the daemon's accept loop lets the event loop
 * come round every 16 accepts, so the first bytes of the handshakes in
 * progress are read before the next newcomer picks one to displace.
 *
 * @module
 */
import { Effect, Random, Runtime } from "effect"
import { SPREAD_VERSION } from "../protocol/constants.ts"
import { concatBytes } from "../protocol/bytes.ts"
import {
  type ConnectParse,
  encodeAccept,
  encodeAuthList,
  encodeReject,
  hasPatchByte,
  isProtocolError,
  parseAuthChoice,
  parseConnect,
  usesAuthExchange,
  type Version,
} from "../protocol/handshake.ts"
import { privateGroupName, validatePrivateName } from "../protocol/names.ts"
import { quoted } from "../protocol/printable.ts"
import type { ByteStream } from "../transport/conn.ts"
import { type AuthMethod, NullAuth } from "./config.ts"
import type { DaemonContext, HandshakeControl } from "./context.ts"
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

/**
 * How often (Clock ms) the daemon checks handshake deadlines while any
 * handshake is unfinished; a deadline is met within this much.
 *
 * @since 0.1.0
 * @category constants
 */
export const HANDSHAKE_TICK_MS = 10

type HandshakeEnd =
  | { readonly _tag: "Rejected"; readonly code: number; readonly why: string }
  | { readonly _tag: "Gone"; readonly why: string }
  | { readonly _tag: "Displaced" }

const gone = (why: string): HandshakeEnd => ({ _tag: "Gone", why })
const rejected = (code: number, why: string): HandshakeEnd => ({ _tag: "Rejected", code, why })
const displaced: HandshakeEnd = { _tag: "Displaced" }

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
// Effect's `Random` (the daemon's runtime; TestRandom in tests).
const generateName = (ctx: DaemonContext): string => {
  const random = Runtime.runSync(ctx.runtime)
  for (;;) {
    ctx.shared.generated = (ctx.shared.generated + 1) % 1000
    const name = `r${random(Random.nextIntBetween(0, 9999))}-${ctx.shared.generated}`
    if (!ctx.reserved.has(name)) return name
  }
}

const logWith = (ctx: DaemonContext, effect: Effect.Effect<void>): void => Runtime.runSync(ctx.runtime, effect)

const message = (e: unknown): string => e instanceof Error ? e.message : String(e)

/** Where a handshake is. */
type Step = "Connect" | "AuthChoice" | "Busy" | "Ended"

/**
 * Serves one accepted connection: the quotas, the handshake, then hands an
 * accepted session to {@link startSession}. Returns at once; every ending of
 * the handshake (reject, EOF, deadline, displacement, shutdown) is logged
 * and cleaned up.
 *
 * @since 0.1.0
 * @category combinators
 */
export const serveConnection = (ctx: DaemonContext, stream: ByteStream): void => {
  try {
    admit(ctx, stream)
  } catch (defect) {
    // A bug: this connection alone is dropped; the accept loop goes on.
    logWith(ctx, Effect.logError(`Connection from ${stream.address} dropped by a defect: ${message(defect)}`))
    Effect.runSync(stream.close)
  }
}

const admit = (ctx: DaemonContext, stream: ByteStream): void => {
  const shared = ctx.shared
  const config = ctx.config
  if (shared.sessions >= config.maxSessions) {
    logWith(ctx, Effect.logWarning(`Rejected ${stream.address}: REJECT_QUOTA (${config.maxSessions} sessions)`))
    stream.writeNow(encodeReject(REJECT_QUOTA)).catch(() => {}).finally(() => {
      shared.open--
      Effect.runSync(stream.close)
    })
    return
  }
  if (shared.handshakes.size >= config.maxHandshaking) {
    // One line per episode: a flood of slow handshakes must not flood the log.
    if (shared.handshakesDisplaced++ === 0) {
      logWith(
        ctx,
        Effect.logWarning(
          `${config.maxHandshaking} handshakes in progress (maxHandshaking): new connections displace ` +
            "the oldest handshake that is silent or stalled, or get REJECT_QUOTA when none is",
        ),
      )
    }
    const victim = displaceable(shared, ctx.clock.unsafeCurrentTimeMillis())
    if (victim === undefined) {
      stream.writeNow(encodeReject(REJECT_QUOTA)).catch(() => {}).finally(() => {
        shared.open--
        Effect.runSync(stream.close)
      })
      return
    }
    victim.displace()
  } else if (shared.handshakesDisplaced > 0 && shared.handshakes.size === 0) {
    logWith(ctx, Effect.logInfo(`Handshakes below the bound again (${shared.handshakesDisplaced} displaced)`))
    shared.handshakesDisplaced = 0
  }
  new Handshake(ctx, stream).start()
}

/**
 * A handshake that sent something but is still unfinished this long after
 * it began is stalling (a legitimate one takes a few round trips) and may
 * be displaced when no silent one can.
 */
const STALLED_MS = 200

// The handshake a newcomer displaces when every place is taken: the oldest
// silent one (no byte yet: a legitimate client sends its connect message
// at once, and the accept loop lets the event loop come round every few
// accepts under a flood, so that message has been read), else the oldest
// one stalling, else none (the newcomer is refused: every handshake in
// progress has sent something and is young).
const displaceable = (shared: DaemonContext["shared"], now: number): HandshakeControl | undefined => {
  const silent = shared.silentHandshakes.values().next()
  if (!silent.done) return silent.value
  const oldest = shared.handshakes.values().next()
  if (!oldest.done && now - oldest.value.startedAt >= STALLED_MS) return oldest.value
  return undefined
}

// A class, not a bag of closures: a burst of connections shares its methods.
class Handshake implements HandshakeControl {
  readonly #ctx: DaemonContext
  readonly #stream: ByteStream
  readonly startedAt: number
  #step: Step = "Connect"
  #buf: Uint8Array = new Uint8Array(0)
  // When the part being received began (Clock ms), or -1.
  #partSince = -1
  #reading = false
  #name: string | undefined
  #place = false
  #membership = false
  #version: Version = SPREAD_VERSION
  #released = false

  constructor(ctx: DaemonContext, stream: ByteStream) {
    this.#ctx = ctx
    this.#stream = stream
    this.startedAt = ctx.clock.unsafeCurrentTimeMillis()
  }

  start(): void {
    const shared = this.#ctx.shared
    shared.handshakes.add(this)
    shared.silentHandshakes.add(this)
    shared.handshaking = shared.handshakes.size
    if (shared.handshakes.size === 1) shared.wakeHandshakeSweep()
    this.#read()
  }

  // -- HandshakeControl

  check(now: number): void {
    if (this.#step === "Ended") return
    const limit = this.#ctx.config.handshakeTimeoutMs
    if (now - this.startedAt >= limit) return this.#end(gone(`no handshake within ${limit} ms`))
    if (this.#partSince >= 0 && now - this.#partSince >= HANDSHAKE_PART_MS) {
      this.#end(this.#step === "AuthChoice" ? shortAuthChoice(this.#buf) : shortConnect(this.#buf))
    }
  }

  displace(): void {
    this.#end(displaced)
  }

  shutdown(): void {
    this.#end(gone("daemon shutdown"))
  }

  // -- reading

  #read(): void {
    if (this.#reading || this.#step === "Ended") return
    this.#reading = true
    this.#stream.readNow().then(this.#onChunk, this.#onReadFailed)
  }

  readonly #onChunk = (chunk: Uint8Array | undefined): void => {
    this.#reading = false
    if (this.#step === "Ended") return
    if (chunk === undefined) return this.#end(gone("EOF during handshake"))
    this.#ctx.shared.silentHandshakes.delete(this)
    this.#buf = this.#buf.length === 0 ? chunk : concatBytes([this.#buf, chunk])
    this.#advance()
  }

  readonly #onReadFailed = (e: unknown): void => {
    this.#reading = false
    this.#end(gone(message(e)))
  }

  // Parses what is buffered for the current step; reads on when a part is
  // incomplete (starting its deadline once its first byte is in).
  #advance(): void {
    try {
      switch (this.#step) {
        case "Connect": {
          const r = parseConnect(this.#buf)
          if (r === undefined) return this.#more()
          if (isProtocolError(r)) return this.#end(gone(r.message))
          this.#consume(r.consumed)
          return this.#connected(r.value)
        }
        case "AuthChoice": {
          const r = parseAuthChoice(this.#buf)
          if (r === undefined) return this.#more()
          if (isProtocolError(r)) return this.#end(gone(r.message))
          this.#consume(r.consumed)
          return this.#authenticate(r.value)
        }
        case "Busy":
        case "Ended":
          return
      }
    } catch (defect) {
      // A bug, not the client's doing: end this connection alone, loudly.
      logWith(this.#ctx, Effect.logError(`Handshake of ${this.#stream.address} ended by a defect: ${message(defect)}`))
      this.#end(gone("defect"))
    }
  }

  #more(): void {
    if (this.#buf.length > 0 && this.#partSince < 0) this.#partSince = this.#ctx.clock.unsafeCurrentTimeMillis()
    this.#read()
  }

  #consume(n: number): void {
    this.#buf = this.#buf.subarray(n)
    this.#partSince = -1
  }

  #connected(c: ConnectParse): void {
    const ctx = this.#ctx
    if (c._tag === "TooOld") {
      const v = c.version
      return this.#end(rejected(REJECT_VERSION, `client version ${v.major}.${v.minor}.${v.patch} is below 3.1.0`))
    }
    if (c._tag === "IllegalNameLength") {
      return this.#end(rejected(REJECT_ILLEGAL_NAME, `private name length ${c.length} is outside 0..10`))
    }
    const msg = c.message
    let name = msg.name
    if (name.length === 0) {
      name = generateName(ctx)
    } else {
      const bad = validatePrivateName(name)
      if (bad !== undefined) return this.#end(rejected(REJECT_ILLEGAL_NAME, bad.detail))
      if (ctx.reserved.has(name)) {
        return this.#end(rejected(REJECT_NOT_UNIQUE, `private name ${quoted(name)} is in use`))
      }
    }
    ctx.reserved.add(name)
    this.#name = name
    this.#membership = msg.membership
    this.#version = msg.version
    if (!usesAuthExchange(msg.version)) return this.#accept()
    this.#step = "Busy"
    this.#write(encodeAuthList(ctx.config.authMethods.map((m) => m.name)), () => {
      this.#step = "AuthChoice"
      this.#advance()
    })
  }

  #authenticate(asked: ReadonlyArray<string>): void {
    if (asked.length === 0) return this.#end(rejected(REJECT_AUTH, "the auth choice names no method"))
    const config = this.#ctx.config
    const run: Array<AuthMethod> = []
    for (const m of new Set<string>([...asked, ...config.requiredAuthMethods])) {
      const method = config.authMethods.find((o) => o.name === m)
      if (method === undefined) return this.#end(rejected(REJECT_AUTH, `auth method ${quoted(m)} is not enabled`))
      // NULL lets everyone in: no Effect to run.
      if (method !== NullAuth) run.push(method)
    }
    if (run.length === 0) return this.#accept()
    this.#step = "Busy"
    this.#runMethods(run, 0)
  }

  // Runs the methods one after the other on the daemon's runtime.
  #runMethods(methods: ReadonlyArray<AuthMethod>, i: number): void {
    if (i === methods.length) return this.#accept()
    const m = methods[i]
    const name = this.#name ?? ""
    Runtime.runPromiseExit(this.#ctx.runtime)(
      m.authenticate({ privateName: name, remote: this.#stream.address, transport: this.#ctx.transport }),
    ).then((exit) => {
      if (this.#step === "Ended") return
      if (exit._tag === "Failure") return this.#end(gone(`auth method ${quoted(m.name)} died`))
      if (!exit.value) return this.#end(rejected(REJECT_AUTH, `auth method ${quoted(m.name)} refused the client`))
      this.#runMethods(methods, i + 1)
    })
  }

  #accept(): void {
    const ctx = this.#ctx
    const shared = ctx.shared
    // Places go to sessions in the order their handshakes finish; a
    // handshake never holds one.
    if (shared.sessions >= ctx.config.maxSessions) {
      return this.#end(rejected(REJECT_QUOTA, `${ctx.config.maxSessions} sessions (maxSessions)`))
    }
    shared.sessions++
    this.#place = true
    this.#step = "Busy"
    const name = this.#name ?? ""
    this.#write(encodeAccept(SPREAD_VERSION, privateGroupName(name, ctx.config.name), this.#version), () => {
      // The session runs on; it gives back what this connection holds when it ends.
      this.#leave()
      this.#step = "Ended"
      const accepted: Accepted = { name, membership: this.#membership, rest: this.#buf }
      this.#buf = new Uint8Array(0)
      this.#released = true
      // Not `this.release`, nor a closure made here (it would hold this
      // object through its context): the session must not keep it alive.
      startSession(ctx, this.#stream, accepted, sessionRelease(ctx, this.#stream, name))
    })
  }

  #write(bytes: Uint8Array, then: () => void): void {
    this.#stream.writeNow(bytes).then(() => {
      if (this.#step !== "Ended") then()
    }, (e) => this.#end(gone(message(e))))
  }

  // -- endings

  // Leaves the handshakes (once).
  #leave(): void {
    const shared = this.#ctx.shared
    shared.silentHandshakes.delete(this)
    if (shared.handshakes.delete(this)) shared.handshaking = shared.handshakes.size
  }

  #end(end: HandshakeEnd): void {
    if (this.#step === "Ended") return
    this.#step = "Ended"
    this.#leave()
    const ctx = this.#ctx
    const address = this.#stream.address
    switch (end._tag) {
      case "Rejected":
        logWith(ctx, Effect.logInfo(`Rejected ${address}: code ${end.code}: ${end.why}`))
        return this.#rejectAndRelease(end.code)
      case "Displaced":
        if (ctx.debug) {
          logWith(ctx, Effect.logDebug(`Rejected ${address}: REJECT_QUOTA: displaced by a newer connection`))
        }
        return this.#rejectAndRelease(REJECT_QUOTA)
      case "Gone":
        if (ctx.debug) logWith(ctx, Effect.logDebug(`Closed ${address} during handshake: ${end.why}`))
        return this.release()
    }
  }

  #rejectAndRelease(code: number): void {
    this.#stream.writeNow(encodeReject(code)).catch(() => {}).finally(this.release)
  }

  /** Gives back what the connection holds: its name, its place, the socket (once, before a hand-off). */
  readonly release = (): void => {
    if (this.#released) return
    this.#released = true
    const ctx = this.#ctx
    ctx.shared.open--
    this.#leave()
    if (this.#place) ctx.shared.sessions--
    const name = this.#name
    if (name !== undefined && !ctx.engine.has(name)) ctx.reserved.delete(name)
    Effect.runSync(this.#stream.close)
  }
}

// What an accepted session gives back when it ends (once; the session sees
// to that). Made here, at the module's top, so that its closure holds
// nothing but these three.
const sessionRelease = (ctx: DaemonContext, stream: ByteStream, name: string) => (): void => {
  ctx.shared.open--
  ctx.shared.sessions--
  if (!ctx.engine.has(name)) ctx.reserved.delete(name)
  Effect.runSync(stream.close)
}
