/**
 * A client connection to a Spread daemon.
 *
 * Fibers replace the C library's threads: one reader fiber decodes what the
 * daemon sends and dispatches it (a plain loop over the frames of each read),
 * one writer fiber writes what senders queued (coalesced into one write per
 * batch), and any number of fibers may multicast, join, leave and receive at
 * once. The first failure is recorded as a sticky {@link ConnectionError}.
 *
 * @module
 */
import {
  type Chunk,
  Deferred,
  Duration,
  Effect,
  ExecutionStrategy,
  Exit,
  Fiber,
  FiberSet,
  Option,
  PubSub,
  Ref,
  Scope,
  Stream,
  SubscriptionRef,
} from "effect"
import { ServiceBits, type ServiceLevel } from "../protocol/constants.ts"
import { FrameDecoder } from "../protocol/decoder.ts"
import { ProtocolError } from "../protocol/errors.ts"
import type { Version } from "../protocol/handshake.ts"
import {
  encodeCommand,
  type MulticastSpec,
  type RejectMessage,
  type ServerMessage,
  validateMulticast,
} from "../protocol/messages.ts"
import { latin1Bytes, validateGroupName } from "../protocol/names.ts"
import { type ByteStream, dial } from "../transport/conn.ts"
import type { TransportError } from "../transport/errors.ts"
import { ConnectError, ConnectionError, RequestError, requestErrorOf } from "./errors.ts"
import { encodeBlocks, type Request } from "./batch.ts"
import { type Handshake, handshake } from "./handshake.ts"
import { type ConnectionEvent, Inbound, MAX_TAKE } from "./inbound.ts"
import { decodeMessage, nameFieldIs } from "./message.ts"
import { type ConnectOptions, type FlowWindow, type ResolvedOptions, resolveOptions } from "./options.ts"
import { Sender } from "./sender.ts"
import type { GroupView } from "./views.ts"
import { ViewTracker } from "./views.ts"
import { FlowControl } from "./window.ts"

/**
 * A message to multicast.
 *
 * @since 0.1.0
 * @category models
 */
export interface OutgoingMessage {
  /** One destination group, or up to 100; ordinary or private (`#name#daemon`). */
  readonly groups: string | ReadonlyArray<string>
  /** The payload: bytes as given, or text encoded as UTF-8. */
  readonly data: Uint8Array | string
  /** Service level; `"Agreed"` by default. */
  readonly service?: ServiceLevel
  /** 16-bit application message type (-32768..65535); 0 by default. */
  readonly messType?: number
  /** Do not deliver a copy to the sender (such a message is not counted by the flow window). */
  readonly selfDiscard?: boolean
}

/**
 * The life of a connection.
 *
 * - `Open`: usable.
 * - `Failed`: the first failure was recorded; every call fails with `error`.
 * - `Closed`: closed locally (or closed after a failure); every call fails
 *   with `error` — the earlier failure, or a `Closed` error.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectionState =
  | { readonly _tag: "Open" }
  | { readonly _tag: "Failed"; readonly error: ConnectionError }
  | { readonly _tag: "Closed"; readonly error: ConnectionError }

/**
 * Gauges of a connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionStats {
  /** The flow window in force. */
  readonly window: FlowWindow
  /** Permits of the flow window (0 when it is off). */
  readonly windowCapacity: number
  /** Permits held by own messages in flight. */
  readonly windowInUse: number
  /** The highest `windowInUse` so far; never above `windowCapacity`. */
  readonly windowPeak: number
  /** Own counted messages in flight (multicast and not yet received back). */
  readonly inFlight: number
  /** The highest `inFlight` so far. */
  readonly inFlightPeak: number
  /**
   * Messages decoded and not yet taken by a receiver: at most the capacity
   * plus the rest of the one read the reader is waiting to hand over.
   */
  readonly inbound: number
  /** Capacity of the inbound buffer, in messages. */
  readonly inboundCapacity: number
  /** Whether the consumer was last seen falling behind. */
  readonly slowConsumer: boolean
  /** How many `SlowConsumer` events were published. */
  readonly slowConsumerEvents: number
  /** Blocks of frames queued for the writer and not yet written. */
  readonly outboxMessages: number
  /** Bytes queued for the writer and not yet written. */
  readonly outboxBytes: number
  /** Senders waiting for outbox space. */
  readonly sendersWaiting: number
  /** Frames queued so far (multicasts, joins, leaves). */
  readonly sent: number
  /** Messages received so far. */
  readonly received: number
  /** Socket reads so far (each decoded as a batch). */
  readonly reads: number
  /** Socket writes so far (each a coalesced batch of frames). */
  readonly writes: number
}

/**
 * An open session with a Spread daemon. Every operation may be called from
 * any number of fibers at once. Once the connection failed or was closed,
 * every operation fails with the same sticky {@link ConnectionError}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  /** The session's private group, `#name#daemon`. */
  readonly privateGroup: string
  /** The private name (as requested, or as the daemon generated it). */
  readonly privateName: string
  /** The daemon's name. */
  readonly daemonName: string
  /** The daemon's protocol version. */
  readonly daemonVersion: Version
  /** The daemon's address. */
  readonly address: string
  /**
   * Joins `group`. Succeeds once the request is queued (as `SP_join`
   * returns once sent); the membership message follows on {@link messages}
   * and in {@link watch}.
   */
  readonly join: (group: string) => Effect.Effect<void, ConnectionError | RequestError>
  /** Leaves `group`. Succeeds once the request is queued. */
  readonly leave: (group: string) => Effect.Effect<void, ConnectionError | RequestError>
  /**
   * Multicasts one message. Waits while the flow window or the outbox is
   * full; succeeds once the frame is queued.
   */
  readonly multicast: (message: OutgoingMessage) => Effect.Effect<void, ConnectionError | RequestError>
  /**
   * Multicasts messages in order, with one permit wait per batch. All are
   * validated first: if one is invalid, none is sent.
   */
  readonly multicastMany: (
    messages: Iterable<OutgoingMessage>,
  ) => Effect.Effect<void, ConnectionError | RequestError>
  /**
   * The next message. Concurrent receivers share the messages (each is
   * delivered to one receiver). Once the connection failed or was closed,
   * buffered messages are discarded and this fails with the sticky error.
   */
  readonly receive: Effect.Effect<ServerMessage, ConnectionError>
  /** Between 1 and `max` messages (4096 by default), as soon as one is available. */
  readonly receiveChunk: (max?: number) => Effect.Effect<Chunk.Chunk<ServerMessage>, ConnectionError>
  /**
   * The messages as a stream, in chunks of what is buffered. It fails with
   * the sticky error when the connection ends. Concurrent streams share the
   * messages, like concurrent {@link receive} calls.
   */
  readonly messages: Stream.Stream<ServerMessage, ConnectionError>
  /** The current view of `group`, if this connection is a member. */
  readonly view: (group: string) => Effect.Effect<Option.Option<GroupView>>
  /** The current views of every group this connection is a member of. */
  readonly views: Effect.Effect<ReadonlyMap<string, GroupView>>
  /**
   * The view of `group` now, then each time it changes; fails with the
   * sticky error when the connection ends.
   */
  readonly watch: (group: string) => Stream.Stream<Option.Option<GroupView>, ConnectionError>
  /**
   * Health events from the moment of subscription (sliding buffer of 64 per
   * subscriber), ending with one `Terminated` event when the connection
   * ends (at once for a subscriber that comes after the end).
   */
  readonly events: Stream.Stream<ConnectionEvent>
  /** Gauges: flow window, inbound and outbound buffers, counters. */
  readonly stats: Effect.Effect<ConnectionStats>
  /** The state now. */
  readonly state: Effect.Effect<ConnectionState>
  /** Waits until the connection fails or is closed; answers the sticky error. */
  readonly awaitClosed: Effect.Effect<ConnectionError>
  /**
   * Closes the connection: wakes every blocked call with the `Closed` error,
   * lets frames already queued and then the disconnect (KILL) be written and
   * the daemon close its side (all bounded by `closeTimeout`), then stops the
   * fibers and closes the socket. Safe from any fiber, any number of times,
   * concurrently; every call returns once the connection is closed. The
   * scope does the same when it closes.
   */
  readonly close: Effect.Effect<void>
}

const OPEN: ConnectionState = { _tag: "Open" }
/** Most bytes of one block of frames (a socket write's worth). */
const BLOCK_BYTES = 64 * 1024
const encoder = new TextEncoder()

/**
 * Connects to a daemon. The connection belongs to the scope: closing the
 * scope sends the disconnect, stops the connection's fibers and closes the
 * socket, in bounded time even when the daemon is gone.
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
            detail: `no accept within ${Duration.format(opts.connectTimeout)}`,
          }),
      }),
      Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(ioScope, exit) : Effect.void)),
    )
    return yield* start(opts, stream, hs)
  })

/**
 * Alias of {@link connect}, in Effect's `make` + `layer` style.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: ConnectOptions) => Effect.Effect<Connection, ConnectError, Scope.Scope> = connect

const open = (opts: ResolvedOptions) =>
  Effect.gen(function* () {
    const stream = yield* dial(opts.address, Duration.toMillis(opts.connectTimeout) + 1000).pipe(
      Effect.mapError((e: TransportError) =>
        new ConnectError({
          reason: "CouldNotConnect",
          address: opts.label,
          detail: e.cause instanceof Error ? e.cause.message : e.message,
          cause: e,
        })
      ),
    )
    const hs = yield* handshake(stream, opts)
    return { hs, stream }
  })

// Wires the fibers and operations of an accepted session.
const start = (
  opts: ResolvedOptions,
  stream: ByteStream,
  hs: Handshake,
): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const privateGroup = hs.accept.privateGroup
    const state = yield* Ref.make<ConnectionState>(OPEN)
    const terminated = yield* Deferred.make<ConnectionError>()
    const closedDone = yield* Deferred.make<void>()
    const flow = new FlowControl(opts.window)
    const sender = new Sender(opts.outboxMessages, opts.outboxBytes)
    const inbound = yield* Inbound.make(opts.inboundCapacity, opts.slowHigh, opts.slowLow)
    const tracker = new ViewTracker()
    const views = yield* SubscriptionRef.make(tracker.current)
    const fibers = yield* FiberSet.make<void, never>()
    // Groups this session belongs to, as of the frames queued so far: the
    // daemon applies joins, leaves and multicasts in that same order.
    const joined = new Set<string>()
    // Gauges; written only by the operations named.
    const counters = { sent: 0, received: 0, reads: 0, writes: 0 }

    const error = (reason: ConnectionError["reason"], detail: string, cause?: unknown) =>
      new ConnectionError({ reason, privateGroup, detail, cause })

    const sticky: Effect.Effect<ConnectionError> = Effect.map(Ref.get(state), (s) => {
      switch (s._tag) {
        case "Open":
          return error("Closed", "the connection is closing")
        case "Failed":
        case "Closed":
          return s.error
      }
    })
    const failSticky = Effect.flatMap(sticky, Effect.fail)

    // Wakes everything blocked: receivers, senders waiting for permits, and
    // watchers of `awaitClosed`. Senders waiting for space were woken when
    // the outbox closed.
    const wakeAll = (e: ConnectionError) =>
      Effect.all([
        Deferred.succeed(terminated, e),
        flow.wakeAll,
        inbound.shutdown,
        inbound.events.publish({ _tag: "Terminated", error: e }),
      ], { discard: true })

    /** Records the first failure; later ones are ignored. */
    const fail = (e: ConnectionError): Effect.Effect<void> =>
      Effect.flatMap(
        Ref.modify(state, (s): readonly [boolean, ConnectionState] => {
          switch (s._tag) {
            case "Open":
              sender.abort()
              return [true, { _tag: "Failed", error: e }]
            case "Failed":
            case "Closed":
              return [false, s]
          }
        }),
        (first) => (first ? Effect.zipRight(stream.close, wakeAll(e)) : Effect.void),
      )

    // ----- membership bookkeeping, run synchronously with queueing -----

    const isCounted = (groups: ReadonlyArray<string>, selfDiscard: boolean): boolean => {
      if (selfDiscard) return false
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i]
        if (g === privateGroup || joined.has(g)) return true
      }
      return false
    }

    // The one joined group a counted message counts through, when only one
    // does (not its own private group, no second joined group): if that
    // join is refused, the message will never come back.
    const onlyVia = (groups: ReadonlyArray<string>): string | undefined => {
      let via: string | undefined
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i]
        if (g === privateGroup) return undefined
        if (joined.has(g)) {
          if (via !== undefined && via !== g) return undefined
          via = g
        }
      }
      return via
    }

    const costOf = (r: Request): number => {
      if (r.kind !== "Multicast" || !flow.enabled || !isCounted(r.groups, r.selfDiscard)) return 0
      let size = 1
      for (const g of r.groups) if (joined.has(g)) size = Math.max(size, tracker.size(g))
      return flow.costOf(size)
    }

    // Commits a queued request; answers the permits it did not need.
    const commit = (r: Request, reserved: number): number => {
      counters.sent++
      switch (r.kind) {
        case "Join":
          joined.add(r.groups[0])
          return reserved
        case "Leave":
          joined.delete(r.groups[0])
          return reserved
        case "Multicast":
          if (flow.enabled && isCounted(r.groups, r.selfDiscard)) {
            flow.commit(reserved, onlyVia(r.groups))
            return 0
          }
          return reserved
      }
    }

    // ----- sending -----

    // Queues the blocks of requests[start..end), which hold `reserved.n`
    // permits: permits of committed counted messages move to the window, the
    // rest stay in `reserved.n` for the caller to release.
    const queueRun = (
      requests: ReadonlyArray<Request>,
      costs: ReadonlyArray<number>,
      start: number,
      end: number,
      reserved: { n: number },
    ): Effect.Effect<void, ConnectionError> =>
      Effect.suspend(() => {
        const blocks = encodeBlocks(requests, start, end, BLOCK_BYTES)
        const frames = blocks.map((b) => b.bytes)
        const commitBlock = (j: number) => {
          const b = blocks[j]
          for (let i = b.from; i < b.to; i++) reserved.n -= costs[i] - commit(requests[i], costs[i])
        }
        const from = (j: number): Effect.Effect<void, ConnectionError> => {
          const k = sender.queueNow(frames, j, frames.length, commitBlock)
          if (k === frames.length) return Effect.void
          if (sender.outbox.closed) return failSticky
          return Effect.flatMap(
            sender.queue(frames[k], () => commitBlock(k)),
            (r) => (r === "Queued" ? from(k + 1) : failSticky),
          )
        }
        return from(0)
      })

    // Sends requests in order: in runs whose permits are taken at once (at
    // most a quarter of the window each), every run encoded in blocks.
    const send = (requests: ReadonlyArray<Request>): Effect.Effect<void, ConnectionError> =>
      Effect.suspend(() => {
        const costs = requests.map(costOf)
        const limit = flow.batchLimit
        const loop = (start: number): Effect.Effect<void, ConnectionError> => {
          if (start >= requests.length) return Effect.void
          let end = start
          let runCost = 0
          while (end < requests.length && (end === start || runCost + costs[end] <= limit)) runCost += costs[end++]
          const run = runCost === 0
            ? queueRun(requests, costs, start, end, { n: 0 })
            : Effect.uninterruptibleMask((restore) =>
              Effect.flatMap(restore(flow.take(runCost)), () => {
                const reserved = { n: runCost }
                return Effect.ensuring(
                  restore(queueRun(requests, costs, start, end, reserved)),
                  Effect.suspend(() => flow.release(reserved.n)),
                )
              })
            )
          return end === requests.length ? run : Effect.zipRight(run, Effect.suspend(() => loop(end)))
        }
        return loop(0)
      })

    const prepare = (m: OutgoingMessage): Request | RequestError => {
      const groups = typeof m.groups === "string" ? [m.groups] : m.groups
      const selfDiscard = m.selfDiscard ?? false
      const spec: MulticastSpec = {
        privateGroup,
        service: m.service ?? "Agreed",
        selfDiscard,
        groups,
        messType: m.messType ?? 0,
        data: typeof m.data === "string" ? encoder.encode(m.data) : m.data,
      }
      const invalid = validateMulticast(spec)
      if (invalid !== undefined) return requestErrorOf("multicast", invalid)
      return { kind: "Multicast", spec, groups, selfDiscard }
    }

    type SendResult = Effect.Effect<void, ConnectionError | RequestError>
    const command = (kind: "Join" | "Leave") => (group: string) =>
      Effect.suspend((): SendResult => {
        const invalid = validateGroupName(group)
        if (invalid !== undefined) return Effect.fail(requestErrorOf(kind === "Join" ? "join" : "leave", invalid))
        return send([{ kind, frame: encodeCommand(kind, privateGroup, group), groups: [group] }])
      })

    const multicast = (m: OutgoingMessage) =>
      Effect.suspend((): SendResult => {
        const p = prepare(m)
        return p instanceof RequestError ? Effect.fail(p) : send([p])
      })

    const multicastMany = (messages: Iterable<OutgoingMessage>) =>
      Effect.suspend((): SendResult => {
        const items: Array<Request> = []
        for (const m of messages) {
          const p = prepare(m)
          if (p instanceof RequestError) return Effect.fail(p)
          items.push(p)
        }
        if (items.length > 0) return send(items)
        // Nothing to send: still fail on a connection that has ended.
        return Effect.flatMap(Ref.get(state), (st) => st._tag === "Open" ? Effect.void : Effect.fail(st.error))
      })

    // ----- the reader fiber -----

    const isOwnCountedReject = (m: RejectMessage): boolean =>
      m.sender === privateGroup &&
      (m.oldType & ServiceBits.REGULAR_MESS) !== 0 &&
      isCounted(m.groups.slice(0, -1), (m.oldType & ServiceBits.SELF_DISCARD) !== 0)

    const ownName = latin1Bytes(privateGroup)
    const decoder = new FrameDecoder("toClient")
    decoder.push(hs.leftover)
    // Decodes every whole frame buffered into `out` — a plain loop, no
    // Effect per frame — and answers the window permits to release.
    const dispatch = (out: Array<ServerMessage>): number | ProtocolError => {
      let permits = 0
      while (true) {
        const frame = decoder.next()
        if (frame === undefined) return permits
        if (frame instanceof ProtocolError) return frame
        const m = decodeMessage(frame)
        if (m instanceof ProtocolError) return m
        switch (m._tag) {
          case "Regular":
            if (flow.enabled && nameFieldIs(frame, ownName)) permits += flow.returned()
            break
          case "Reject":
            if (m.sender === privateGroup && (m.oldType & ServiceBits.CAUSED_BY_JOIN) !== 0) {
              // Our join was refused (a full group, or a policy): we are not a
              // member. The daemon answers in order, so every message sent
              // before the join is back already; those sent since, counting
              // only through this group, never will be. (A re-join sent before
              // this reject arrived is the one case this can misjudge.)
              const group = m.groups[0]
              joined.delete(group)
              if (flow.enabled && group !== undefined) permits += flow.forget(group)
            } else if (flow.enabled && isOwnCountedReject(m)) {
              permits += flow.returned()
            }
            break
          case "Membership":
          case "SelfLeave":
            tracker.apply(m)
            break
          case "Transitional":
            break
        }
        out.push(m)
      }
    }

    // Once the connection ended (the inbound queue is shut down) the reader
    // keeps reading and discarding until EOF: closing a socket with unread
    // bytes makes the OS send a reset, and the daemon would then lose the
    // last frames and the disconnect it had not read yet.
    const reader: Effect.Effect<void> = Effect.gen(function* () {
      let discarding = false
      while (true) {
        if (!discarding) {
          const batch: Array<ServerMessage> = []
          const permits = dispatch(batch)
          if (permits instanceof ProtocolError) {
            return yield* fail(
              error("ProtocolViolation", `the daemon sent an undecodable frame: ${permits.message}`, permits),
            )
          }
          if (permits > 0) yield* flow.release(permits)
          const changed = tracker.flush()
          if (changed !== undefined) yield* SubscriptionRef.set(views, changed)
          if (batch.length > 0) {
            counters.received += batch.length
            if (Exit.isFailure(yield* Effect.exit(inbound.offer(batch)))) discarding = true
          }
        }
        const chunk = yield* Effect.either(stream.read)
        if (chunk._tag === "Left") {
          return yield* fail(error("NetError", `reading from ${stream.address} failed`, chunk.left))
        }
        if (chunk.right === undefined) {
          const cut = decoder.end()
          return yield* fail(
            cut === undefined
              ? error("ConnectionClosed", "the daemon closed the connection")
              : error("ConnectionClosed", "the daemon closed the connection in the middle of a message", cut),
          )
        }
        counters.reads++
        if (!discarding) decoder.push(chunk.right)
      }
    })

    // ----- the writer fiber -----

    const writer: Effect.Effect<void> = Effect.gen(function* () {
      while (true) {
        const batch = yield* sender.outbox.take
        sender.spaceFreed()
        if (batch === undefined) return
        counters.writes++
        const r = yield* Effect.either(stream.write(batch))
        if (r._tag === "Left") return yield* fail(error("NetError", `writing to ${stream.address} failed`, r.left))
      }
    })

    const readerFiber = yield* FiberSet.run(fibers, reader)
    const writerFiber = yield* FiberSet.run(fibers, writer)

    // ----- closing -----

    const closedError = error("Closed", "the connection was closed")
    const killFrame = encodeCommand("Kill", privateGroup, privateGroup)
    const release = Effect.zipRight(
      Effect.zipRight(stream.close, FiberSet.clear(fibers)),
      Deferred.succeed(closedDone, undefined),
    )
    const close: Effect.Effect<void> = Effect.uninterruptible(
      Effect.flatMap(
        Ref.modify(state, (s): readonly ["Graceful" | "AfterFailure" | "Already", ConnectionState] => {
          switch (s._tag) {
            case "Open":
              // Atomically with the state change: nothing queued after this
              // is accepted, and the disconnect goes out last.
              sender.finish(killFrame)
              return ["Graceful", { _tag: "Closed", error: closedError }]
            case "Failed":
              return ["AfterFailure", { _tag: "Closed", error: s.error }]
            case "Closed":
              return ["Already", s]
          }
        }),
        (step) => {
          switch (step) {
            case "Graceful":
              // Wait, bounded, for the writer to flush the queued frames and
              // the disconnect, and for the daemon to close its side (the
              // reader drains until then). The wait must be interruptible
              // (a timeout interrupts it); `exit` keeps the release below
              // running even if the closing fiber is interrupted there.
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
        },
      ),
    )
    yield* Effect.addFinalizer(() => close)

    const sharedTake = inbound.takeChunk(MAX_TAKE, sticky)
    const connection: Connection = {
      privateGroup,
      privateName: hs.privateName,
      daemonName: hs.daemonName,
      daemonVersion: hs.accept.version,
      address: opts.label,
      join: command("Join"),
      leave: command("Leave"),
      multicast,
      multicastMany,
      receive: inbound.take(sticky),
      receiveChunk: (max = MAX_TAKE) => inbound.takeChunk(Math.max(1, Math.floor(max)), sticky),
      messages: Stream.repeatEffectChunk(sharedTake),
      view: (group) => Effect.map(SubscriptionRef.get(views), (m) => Option.fromNullable(m.get(group))),
      views: SubscriptionRef.get(views),
      watch: (group) =>
        views.changes.pipe(
          Stream.map((m) => Option.fromNullable(m.get(group))),
          Stream.changesWith((a, b) => Option.isNone(a) ? Option.isNone(b) : Option.isSome(b) && a.value === b.value),
          // Ends with the sticky error when the connection ends.
          Stream.interruptWhen(Effect.flatMap(Deferred.await(terminated), Effect.fail)),
        ),
      // Subscribed before looking at the end, so no event can fall between;
      // the one Terminated event comes from the sticky error itself, so a
      // subscriber from after the end gets it too, and the stream then ends.
      events: Stream.unwrapScoped(
        Effect.map(PubSub.subscribe(inbound.events), (subscription) =>
          Stream.merge(
            Stream.fromQueue(subscription).pipe(Stream.filter((e) => e._tag !== "Terminated")),
            Stream.fromEffect(
              Effect.map(Deferred.await(terminated), (error): ConnectionEvent => ({ _tag: "Terminated", error })),
            ),
            { haltStrategy: "right" },
          )),
      ),
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
        outboxMessages: sender.outbox.messages,
        outboxBytes: sender.outbox.bytes,
        sendersWaiting: sender.waiting,
        sent: counters.sent,
        received: counters.received,
        reads: counters.reads,
        writes: counters.writes,
      })),
      state: Ref.get(state),
      awaitClosed: Deferred.await(terminated),
      close,
    }
    return connection
  })
