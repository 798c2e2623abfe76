/**
 * A client connection to a Spread daemon, assembled from its rooms:
 *
 * - state.ts: the lifecycle state machine (one `Ref`, named transitions);
 * - send.ts + outbound.ts + window.ts: validation, the flow window, and
 *   frames encoded in place into the coalescing writer's buffer;
 * - receive.ts + message.ts + inbound.ts: the reader loop, one object per
 *   message, and the inbound `Mailbox`;
 * - views.ts and events.ts: membership views and health events.
 *
 * Fibers replace the C library's threads: one reader fiber decodes what the
 * daemon sends, one writer fiber writes what senders encoded (everything
 * encoded since its last write, in one write), and any number of fibers may
 * multicast, join, leave and receive at once. The first failure is recorded
 * as a sticky {@link ConnectionError}.
 *
 * The parts that belong to one daemon session (socket, decoder, outbound
 * buffer, sender, reader and writer fibers) are made by `startSession`; the
 * parts that outlive a session (inbound buffer, events, views, state) by
 * `connect` — so a session can later be replaced under the same connection.
 *
 * @module
 */
import {
  Deferred,
  Duration,
  Effect,
  ExecutionStrategy,
  Exit,
  Fiber,
  FiberSet,
  Option,
  Scope,
  Stream,
  SubscriptionRef,
} from "effect"
import { FrameDecoder } from "../protocol/decoder.ts"
import { type ByteStream, dial } from "../transport/conn.ts"
import type { TransportError } from "../transport/errors.ts"
import { ConnectError, ConnectionError, RequestError } from "./errors.ts"
import { Events } from "./events.ts"
import { fragmentPayloads, keepsSenderOrder, mayNeedFragments, needsFragments, Reassembly } from "./fragments.ts"
import type { OutgoingMessage } from "./frames.ts"
import { dialTlsFor, tlsConnectError } from "./tls.ts"
import { type Handshake, handshake } from "./handshake.ts"
import { Inbound, MAX_TAKE } from "./inbound.ts"
import { type ConnectOptions, type ResolvedOptions, resolveOptions } from "./options.ts"
import { Outbound } from "./outbound.ts"
import { reader } from "./receive.ts"
import type { Connection } from "./model.ts"
import { request, type RequestContext, requestMany, respond } from "./request.ts"
import { Router } from "./router.ts"
import { subscribe, type SubscribeContext } from "./subscribe.ts"
import { Sender } from "./send.ts"
import { publishMetrics } from "./observability.ts"
import { Lifecycle } from "./state.ts"
import { ViewTracker } from "./views.ts"
import { FlowControl } from "./window.ts"

export type { Connection, ConnectionStats } from "./model.ts"
export type { ConnectionState } from "./state.ts"
export type { OutgoingMessage } from "./frames.ts"

const textEncoder = new TextEncoder()

/**
 * Connects to a daemon. The connection belongs to the scope: closing the
 * scope sends the disconnect, stops the connection's fibers and closes the
 * socket, in bounded time even when the daemon is gone. `connectTimeout`
 * bounds everything before the connection is returned: the TCP or Unix
 * connect (even to a peer that never answers), and the handshake.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (options: ConnectOptions = {}): Effect.Effect<Connection, ConnectError, Scope.Scope> =>
  Effect.gen(function* () {
    const opts = yield* resolveOptions(options)
    const scope = yield* Effect.scope
    const ioScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    const { hs, stream } = yield* open(opts).pipe(
      Scope.extend(ioScope),
      Effect.timeoutFail({
        duration: opts.connectTimeout,
        onTimeout: () =>
          new ConnectError({
            reason: "Timeout",
            address: opts.label,
            detail: `no session within ${Duration.format(opts.connectTimeout)}`,
          }),
      }),
      Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(ioScope, exit) : Effect.void)),
    )
    return yield* start(opts, stream, hs)
  }).pipe(Effect.withSpan("spread.connect", { attributes: { "spread.daemon": labelOfOptions(options) } }))

const labelOfOptions = (options: ConnectOptions): string => {
  const d = options.daemon
  return d === undefined ? "4803" : typeof d === "string" ? d : "path" in d ? d.path : `${d.port ?? 4803}@${d.host}`
}

/**
 * Alias of {@link connect}, in Effect's `make` + `layer` style.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: ConnectOptions) => Effect.Effect<Connection, ConnectError, Scope.Scope> = connect

const open = (opts: ResolvedOptions) =>
  Effect.gen(function* () {
    const stream = yield* (opts.tls !== undefined && opts.address._tag === "Tcp"
      ? dialTlsFor(opts.address, opts.label, opts.tls)
      : dial(opts.address).pipe(
        Effect.mapError((e: TransportError) =>
          new ConnectError({
            reason: "CouldNotConnect",
            address: opts.label,
            detail: e.cause instanceof Error ? e.cause.message : e.message,
            cause: e,
          })
        ),
      ))
    // Over TLS a refused client certificate surfaces as the first read failing.
    const hs = yield* handshake(stream, opts).pipe(
      Effect.mapError((e) =>
        opts.tls !== undefined && e.reason === "ConnectionClosed" ? tlsConnectError(opts.label, e) ?? e : e
      ),
    )
    return { hs, stream }
  })

// Wires the parts of a connection around an accepted session.
const start = (
  opts: ResolvedOptions,
  stream: ByteStream,
  hs: Handshake,
): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const privateGroup = hs.accept.privateGroup
    const error = (reason: ConnectionError["reason"], detail: string, cause?: unknown) =>
      new ConnectionError({ reason, privateGroup, detail, cause })
    const closing = error("Closed", "the connection is closing")
    const closedError = error("Closed", "the connection was closed")

    // ----- parts that outlive a session -----
    const life = yield* Lifecycle.make
    const sticky = life.sticky(closing)
    const failSticky: Effect.Effect<never, ConnectionError> = Effect.flatMap(sticky, Effect.fail)
    const terminated = yield* Deferred.make<ConnectionError>()
    const closedDone = yield* Deferred.make<void>()
    const events = yield* Events.make(terminated)
    const inbound = yield* Inbound.make(opts.inboundCapacity, opts.slowHigh, opts.slowLow, events, failSticky)
    const tracker = new ViewTracker()
    const views = yield* SubscriptionRef.make(tracker.current)
    const flow = new FlowControl(opts.window)
    const fibers = yield* FiberSet.make<void, never>()
    const counters = { received: 0, reads: 0, bytes: 0 }
    let bytesWritten = 0

    // ----- the session -----
    const out = new Outbound({ maxFrames: opts.outboxMessages, maxBytes: opts.outboxBytes })
    const sender = new Sender(privateGroup, out, flow, tracker, opts.membership, failSticky)
    const nonce = crypto.getRandomValues(new Uint32Array(1))[0]
    const router = new Router(privateGroup, opts.membership, nonce, (group) => sender.joined.has(group))
    const decoder = new FrameDecoder("toClient")
    decoder.push(hs.leftover)
    const reassembly = new Reassembly(opts.maxMessageBytes, opts.maxReassemblyBytes)

    // Wakes everything blocked: receivers, senders waiting for permits or
    // room, and watchers of `awaitClosed` and `events`.
    const wakeAll = (e: ConnectionError) =>
      Effect.all([Deferred.succeed(terminated, e), flow.wakeAll, inbound.end(e), router.end(e)], { discard: true })

    /** Records the first failure; later ones are ignored. */
    const fail = (reason: ConnectionError["reason"], detail: string, cause?: unknown): Effect.Effect<void> => {
      const e = error(reason, detail, cause)
      return Effect.flatMap(life.fail(e), (first) => {
        if (!first) return Effect.void
        out.abort()
        return Effect.zipRight(stream.close, wakeAll(e))
      })
    }

    const readerFiber = yield* FiberSet.run(
      fibers,
      reader({
        privateGroup,
        stream,
        decoder,
        flow,
        sender,
        tracker,
        views,
        inbound,
        router,
        reassembly,
        counters,
        fail,
        ended: () => out.closed,
      }),
    )
    // The writer: everything encoded since the last write, in one write.
    const writerFiber = yield* FiberSet.run(
      fibers,
      Effect.gen(function* () {
        while (true) {
          const bytes = yield* out.take
          if (bytes === undefined) return
          bytesWritten += bytes.length
          const r = yield* Effect.either(stream.write(bytes))
          if (r._tag === "Left") return yield* fail("NetError", `writing to ${stream.address} failed`, r.left)
        }
      }),
    )

    // ----- closing -----
    const killFrame = sender.killFrame
    const release = Effect.zipRight(
      Effect.zipRight(stream.close, FiberSet.clear(fibers)),
      Deferred.succeed(closedDone, undefined),
    )
    const close: Effect.Effect<void> = Effect.uninterruptible(
      Effect.flatMap(life.close(closedError), (step) => {
        switch (step) {
          case "Graceful":
            // Nothing is accepted after the disconnect, which goes out last.
            out.finish(killFrame)
            // Wait, bounded, for the writer to flush and the daemon to close
            // its side (the reader drains until then). The wait must be
            // interruptible (a timeout interrupts it); `exit` keeps the
            // release below running even if the closing fiber is interrupted.
            return wakeAll(closedError).pipe(
              Effect.zipRight(Effect.exit(Effect.interruptible(
                Effect.timeout(
                  Effect.zipRight(Fiber.await(writerFiber), Fiber.await(readerFiber)),
                  opts.closeTimeout,
                ),
              ))),
              Effect.zipRight(release),
            )
          case "AfterFailure":
            return release
          case "Already":
            return Deferred.await(closedDone)
        }
      }),
    )
    yield* Effect.addFinalizer(() => close)

    // `useSpan`, not `withSpan`: the span is not made the current one, so
    // the sticky error fails these calls as the very same object (a failure
    // inside a current span is wrapped to carry it).
    const join = (group: string) =>
      Effect.useSpan("spread.join", { attributes: { "spread.group": group } }, () => sender.command("Join", group))
    const leave = (group: string) =>
      Effect.useSpan("spread.leave", { attributes: { "spread.group": group } }, () => sender.command("Leave", group))
    if (opts.metrics) {
      yield* FiberSet.run(
        fibers,
        publishMetrics(privateGroup, () => ({
          sent: out.framesQueued,
          bytesSent: bytesWritten,
          received: counters.received + router.routed,
          bytesReceived: counters.bytes,
          windowInUse: flow.inUse,
          inbound: inbound.buffered,
        })),
      )
    }
    // A payload too large for one Spread message goes in fragments
    // (fragments.ts): `expand` answers the messages to send in its place,
    // or why it is refused.
    let largeMessages = 0
    const expand = (m: OutgoingMessage): ReadonlyArray<OutgoingMessage> | RequestError => {
      const data = typeof m.data === "string" ? textEncoder.encode(m.data) : m.data
      const groups = typeof m.groups === "string" ? 1 : m.groups.length
      if (!needsFragments(data.length, groups)) return [{ ...m, data }]
      const refuse = (reason: RequestError["reason"], detail: string) =>
        new RequestError({ reason, operation: "multicast", detail })
      if (data.length > opts.maxMessageBytes) {
        return refuse("MessageTooLong", `Cannot send ${data.length} bytes: maxMessageBytes is ${opts.maxMessageBytes}`)
      }
      const service = m.service ?? "Agreed"
      if (!keepsSenderOrder(service)) {
        return refuse(
          "NeedsOrderedService",
          `Cannot send ${data.length} bytes with ${service}: a message sent in fragments needs Fifo or stronger`,
        )
      }
      return fragmentPayloads(data, nonce, largeMessages++).map((part) => ({ ...m, data: part }))
    }
    const isLarge = (m: OutgoingMessage) => mayNeedFragments(m.data, typeof m.groups === "string" ? 1 : m.groups.length)
    const multicast: Connection["multicast"] = (m) =>
      isLarge(m)
        ? Effect.suspend(() => {
          const parts = expand(m)
          return parts instanceof RequestError ? Effect.fail(parts) : sender.multicastMany(parts)
        })
        : sender.multicast(m)
    // All-or-nothing as before: every message is checked (large ones
    // expanded into their fragments) before any is sent.
    const multicastMany: Connection["multicastMany"] = (ms) =>
      Effect.suspend(() => {
        const all = Array.isArray(ms) ? (ms as ReadonlyArray<OutgoingMessage>) : Array.from(ms)
        if (!all.some(isLarge)) return sender.multicastMany(all)
        const flat: Array<OutgoingMessage> = []
        for (const m of all) {
          const parts = isLarge(m) ? expand(m) : [m]
          if (parts instanceof RequestError) return Effect.fail(parts)
          flat.push(...parts)
        }
        return sender.multicastMany(flat)
      })
    const subscribeContext: SubscribeContext = {
      router,
      events,
      capacity: opts.inboundCapacity,
      slowRatio: opts.slowHigh / opts.inboundCapacity,
      failSticky,
      closing,
      join,
      leave,
    }
    const subscribeTo: Connection["subscribe"] = (group, options) => subscribe(subscribeContext, group, options)
    const requestContext: RequestContext = {
      router,
      privateGroup,
      multicast,
      subscribe: subscribeTo,
      othersIn: (group) =>
        Effect.map(
          SubscriptionRef.get(views),
          (m) =>
            Option.map(Option.fromNullable(m.get(group)), (v) => v.members.filter((x) => x !== privateGroup).length),
        ),
    }

    const connection: Connection = {
      privateGroup,
      privateName: hs.privateName,
      daemonName: hs.daemonName,
      daemonVersion: hs.accept.version,
      address: opts.label,
      join,
      leave,
      multicast,
      multicastMany,
      receive: inbound.take,
      receiveChunk: (max = MAX_TAKE) => inbound.takeChunk(Math.max(1, Math.floor(max))),
      messages: inbound.stream,
      view: (group) => Effect.map(SubscriptionRef.get(views), (m) => Option.fromNullable(m.get(group))),
      views: SubscriptionRef.get(views),
      watch: (group) =>
        views.changes.pipe(
          Stream.map((m) => Option.fromNullable(m.get(group))),
          Stream.changesWith((a, b) => Option.isNone(a) ? Option.isNone(b) : Option.isSome(b) && a.value === b.value),
          // Ends with the sticky error when the connection ends.
          Stream.interruptWhen(Effect.flatMap(Deferred.await(terminated), Effect.fail)),
        ),
      subscribe: subscribeTo,
      request: (group, data, options) => request(requestContext, group, data, options),
      requestMany: (group, data, options) => requestMany(requestContext, group, data, options),
      respond: (group, handler, options) => respond(requestContext, group, handler, options),
      events: events.stream,
      stats: Effect.sync(() => ({
        window: flow.window,
        windowCapacity: flow.capacity,
        windowInUse: flow.inUse,
        windowPeak: flow.peakInUse,
        inFlight: flow.inFlight,
        inFlightPeak: flow.peakInFlight,
        inbound: inbound.buffered,
        inboundCapacity: inbound.capacity,
        slowConsumer: inbound.health === "Slow",
        slowConsumerEvents: inbound.slowEvents,
        outboxMessages: out.frames,
        outboxBytes: out.bytes,
        sendersWaiting: out.waiting + flow.waiting,
        sent: out.framesQueued,
        received: counters.received + router.routed,
        subscribers: router.subscribers,
        pendingRequests: router.pendingRequests,
        lateReplies: router.lateReplies,
        largeMessagesAssembled: reassembly.stats.assembled,
        largeMessagesDropped: reassembly.stats.dropped,
        reassemblyBytes: reassembly.stats.pendingBytes,
        reads: counters.reads,
        bytesRead: counters.bytes,
        bytesWritten,
        writes: out.writes,
      })),
      state: life.get,
      awaitClosed: Deferred.await(terminated),
      close,
    }
    return connection
  })
