/**
 * One client connection inside the daemon: the handshake, then a reader
 * loop that decodes, checks and hands each request to the engine, and a
 * writer fiber that drains the session's bounded outbox in coalesced writes.
 *
 * @module
 */
import { Effect, Fiber } from "effect"
import { SPREAD_VERSION } from "../protocol/constants.ts"
import { FrameDecoder } from "../protocol/decoder.ts"
import type { ProtocolError } from "../protocol/errors.ts"
import {
  encodeAccept,
  encodeAuthList,
  encodeReject,
  isProtocolError,
  parseAuthChoice,
  parseConnect,
  type ParseResult,
  usesAuthExchange,
} from "../protocol/handshake.ts"
import { validateClientFrame } from "../protocol/messages.ts"
import { privateGroupName, readCString, validatePrivateName } from "../protocol/names.ts"
import type { ByteStream } from "../transport/conn.ts"
import { Outbox, runWriter } from "../transport/outbox.ts"
import type { ResolvedConfig } from "./config.ts"
import type { Engine, EngineSession } from "./engine.ts"

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
  /** Sessions accepted and not yet closed (handshaking included). */
  open: number
  readonly transport: "tcp" | "unix"
}

const REJECT_QUOTA = -3
const REJECT_ILLEGAL_NAME = -5
const REJECT_NOT_UNIQUE = -6
const REJECT_VERSION = -7
const REJECT_AUTH = -9

type HandshakeEnd =
  | { readonly _tag: "Rejected"; readonly code: number; readonly why: string }
  | { readonly _tag: "Gone"; readonly why: string }

/** Accumulates handshake bytes and parses as they arrive. */
class HandshakeReader {
  #buf = new Uint8Array(0)
  constructor(readonly stream: ByteStream) {}
  get rest(): Uint8Array {
    return this.#buf
  }
  need<A>(
    parse: (b: Uint8Array) => ParseResult<A>,
  ): Effect.Effect<A, HandshakeEnd> {
    const loop: Effect.Effect<A, HandshakeEnd> = Effect.suspend(() => {
      const r = parse(this.#buf)
      if (r === undefined) {
        return this.stream.read.pipe(
          Effect.mapError((e): HandshakeEnd => ({ _tag: "Gone", why: e.message })),
          Effect.flatMap((chunk) => {
            if (chunk === undefined) return Effect.fail<HandshakeEnd>({ _tag: "Gone", why: "EOF during handshake" })
            const next = new Uint8Array(this.#buf.length + chunk.length)
            next.set(this.#buf)
            next.set(chunk, this.#buf.length)
            this.#buf = next
            return loop
          }),
        )
      }
      if (isProtocolError(r)) return Effect.fail<HandshakeEnd>({ _tag: "Gone", why: r.message })
      this.#buf = this.#buf.subarray(r.consumed)
      return Effect.succeed(r.value)
    })
    return loop
  }
}

let generated = 0

const generateName = (ctx: DaemonContext): string => {
  for (;;) {
    generated = (generated + 1) % 100000
    const name = `r${Math.floor(Math.random() * 9999)}-${generated}`.slice(0, 9)
    if (!ctx.reserved.has(name)) return name
  }
}

interface Accepted {
  readonly name: string
  readonly membership: boolean
  readonly rest: Uint8Array
}

const handshake = (
  ctx: DaemonContext,
  stream: ByteStream,
  held: { name: string | undefined },
): Effect.Effect<Accepted, HandshakeEnd> =>
  Effect.gen(function* () {
    const reader = new HandshakeReader(stream)
    const c = yield* reader.need(parseConnect)
    if (c._tag === "TooOld") {
      const v = c.version
      return yield* Effect.fail<HandshakeEnd>({
        _tag: "Rejected",
        code: REJECT_VERSION,
        why: `client version ${v.major}.${v.minor}.${v.patch} is below 3.1.0`,
      })
    }
    if (c._tag === "IllegalNameLength") {
      return yield* Effect.fail<HandshakeEnd>({
        _tag: "Rejected",
        code: REJECT_ILLEGAL_NAME,
        why: `private name length ${c.length} is outside 0..10`,
      })
    }
    const msg = c.message
    let name = msg.name
    if (name.length === 0) {
      name = generateName(ctx)
    } else {
      const bad = validatePrivateName(name)
      if (bad !== undefined) {
        return yield* Effect.fail<HandshakeEnd>({ _tag: "Rejected", code: REJECT_ILLEGAL_NAME, why: bad.detail })
      }
      if (ctx.reserved.has(name)) {
        return yield* Effect.fail<HandshakeEnd>({
          _tag: "Rejected",
          code: REJECT_NOT_UNIQUE,
          why: `private name "${name}" is in use`,
        })
      }
    }
    ctx.reserved.add(name)
    held.name = name
    if (usesAuthExchange(msg.version)) {
      const offered = ctx.config.authMethods
      yield* send(stream, encodeAuthList(offered.map((m) => m.name)))
      const asked = yield* reader.need(parseAuthChoice)
      const denied = (why: string): HandshakeEnd => ({ _tag: "Rejected", code: REJECT_AUTH, why })
      if (asked.length === 0) return yield* Effect.fail(denied("the auth choice names no method"))
      const run = new Set<string>([...asked, ...ctx.config.requiredAuthMethods])
      for (const m of run) {
        const method = offered.find((o) => o.name === m)
        if (method === undefined) return yield* Effect.fail(denied(`auth method "${m}" is not enabled`))
        const ok = yield* method.authenticate({ privateName: name, remote: stream.address, transport: ctx.transport })
        if (!ok) return yield* Effect.fail(denied(`auth method "${m}" refused the client`))
      }
    }
    yield* send(
      stream,
      encodeAccept(SPREAD_VERSION, privateGroupName(name, ctx.config.name), msg.version),
    )
    return { name, membership: msg.membership, rest: reader.rest }
  })

const send = (stream: ByteStream, bytes: Uint8Array): Effect.Effect<void, HandshakeEnd> =>
  stream.write(bytes).pipe(Effect.mapError((e): HandshakeEnd => ({ _tag: "Gone", why: e.message })))

/**
 * Serves one accepted connection until it ends. Never fails: every ending
 * (reject, EOF, protocol error, cut-off, shutdown) is logged and cleaned up.
 *
 * @since 0.1.0
 * @category combinators
 */
export const serveConnection = (ctx: DaemonContext, stream: ByteStream): Effect.Effect<void> => {
  const held: { name: string | undefined } = { name: undefined }
  const program = Effect.gen(function* () {
    if (ctx.open > ctx.config.maxSessions) {
      yield* Effect.logWarning(`Rejected ${stream.address}: REJECT_QUOTA (${ctx.config.maxSessions} sessions)`)
      yield* stream.write(encodeReject(REJECT_QUOTA)).pipe(Effect.ignore)
      return
    }
    const hs = yield* handshake(ctx, stream, held).pipe(
      Effect.timeoutFail({
        duration: ctx.config.handshakeTimeoutMs,
        onTimeout: (): HandshakeEnd => ({
          _tag: "Gone",
          why: `no handshake within ${ctx.config.handshakeTimeoutMs} ms`,
        }),
      }),
      Effect.either,
    )
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
      ctx.open--
      if (held.name !== undefined && !ctx.engine.has(held.name)) ctx.reserved.delete(held.name)
      return stream.close
    })),
  )
}

const runSession = (ctx: DaemonContext, stream: ByteStream, hs: Accepted): Effect.Effect<void> => {
  let current: EngineSession | undefined
  return Effect.gen(function* () {
    const config = ctx.config
    const privateGroup = privateGroupName(hs.name, config.name)
    const outbox = new Outbox({ maxMessages: config.maxSessionMessages, maxBytes: config.maxSessionBytes })
    let ended: string | undefined
    const session: EngineSession = {
      privateName: hs.name,
      privateGroup,
      membership: hs.membership,
      offer: (bytes) => outbox.offer(bytes),
      cutOff: (reason) => {
        ended ??= reason
        outbox.clear()
        outbox.close()
        Effect.runSync(stream.close)
      },
    }
    ctx.engine.add(session)
    current = session
    yield* Effect.logDebug(`Session ${privateGroup} open from ${stream.address}`)
    const writer = yield* Effect.fork(
      runWriter(outbox, stream).pipe(
        Effect.catchAll((e) =>
          Effect.sync(() => {
            ended ??= `write failed: ${e.message}`
            Effect.runSync(stream.close)
          })
        ),
      ),
    )
    const decoder = new FrameDecoder("toDaemon")
    const kill = (why: string, err?: ProtocolError): Effect.Effect<void> =>
      Effect.suspend(() => {
        ended ??= why
        return err === undefined ? Effect.void : Effect.logWarning(`Session ${privateGroup} killed: ${err.message}`)
      })
    // Handles every whole frame buffered; answers false once the session ends.
    const drain = (): Effect.Effect<boolean> => {
      for (;;) {
        const f = decoder.next()
        if (f === undefined) return Effect.succeed(true)
        if (isProtocolError(f)) return Effect.as(kill("protocol error", f), false)
        const req = validateClientFrame(f, hs.name, config.name)
        if (isProtocolError(req)) return Effect.as(kill("protocol error", req), false)
        switch (req._tag) {
          case "Multicast":
            ctx.engine.multicast(session, f, req.selfDiscard)
            break
          case "Join":
            ctx.engine.join(session, readCString(f.bytes, f.groupsOffset, 32))
            break
          case "Leave":
            ctx.engine.leave(session, readCString(f.bytes, f.groupsOffset, 32))
            break
          case "Kill":
            return Effect.as(kill("disconnect (KILL)"), false)
        }
      }
    }
    if (hs.rest.length > 0) decoder.push(hs.rest)
    let go = yield* drain()
    while (go && ended === undefined) {
      const chunk = yield* Effect.either(stream.read)
      if (chunk._tag === "Left") {
        ended ??= chunk.left.reason === "Closed" ? "closed" : `read failed: ${chunk.left.message}`
        break
      }
      if (chunk.right === undefined) {
        const cut = decoder.end()
        ended ??= cut === undefined ? "EOF" : `EOF inside a message (${cut.detail})`
        break
      }
      decoder.push(chunk.right)
      go = yield* drain()
    }
    // Sequence the disconnect, then let the writer flush what is queued
    // (bounded), then close.
    ctx.engine.remove(session)
    outbox.close()
    yield* Fiber.join(writer).pipe(Effect.timeout(1000), Effect.ignore)
    yield* Effect.logDebug(`Session ${privateGroup} closed: ${ended ?? "shutdown"}`)
  }).pipe(
    // However the session ends (shutdown interrupts it), it leaves the engine.
    Effect.ensuring(Effect.sync(() => {
      const s = current
      if (s !== undefined) ctx.engine.remove(s)
    })),
  )
}
