/**
 * One daemon session under a connection: what is replaced when the
 * connection reconnects. Its record ({@link Session}), its two fibers — the
 * reader (receive.ts) and the writer, which writes everything encoded since
 * its last write in one write — and what the loss of it leads to: the
 * lifecycle's `lose` transition decides between failing for good and
 * reconnecting (reconnect.ts). The lifecycle — the connection's one state
 * value — holds the session itself.
 *
 * @module
 */
import { Deferred, Effect, Exit, FiberId, type Schedule, type Scope } from "effect"
import { FrameDecoder } from "../../protocol/decoder.ts"
import type { Version } from "../../protocol/handshake.ts"
import type { ByteStream } from "../../transport/conn.ts"
import type { Opened } from "./dialing.ts"
import { ConnectionError } from "../core/errors.ts"
import type { ConnectError } from "../core/connect_error.ts"
import type { Reassembly } from "../features/reassembly.ts"
import type { Inbound } from "../core/inbound.ts"
import type { ResolvedOptions } from "../options.ts"
import type { Outbound } from "../admission/outbound.ts"
import { reader } from "./reader.ts"
import type { Router } from "../features/router.ts"
import type { Sender } from "../admission/send.ts"
import type { Life, Lifecycle } from "../core/state.ts"
import type { Target } from "../admission/admission.ts"
import { groupEntry } from "../../protocol/encode.ts"
import type { Counters } from "./stats.ts"
import type { ViewsRef, ViewTracker } from "../core/views.ts"
import type { FlowControl } from "../admission/window.ts"

/**
 * One daemon session under a connection: an immutable record owning its
 * socket (and the scope that closes it), its outbound buffer and flow
 * window, its decoder, its private group, and the signals of its reader
 * and writer fibers having stopped.
 *
 * @since 0.2.0
 * @category models
 */
export interface Session extends Target {
  readonly stream: ByteStream
  readonly scope: Scope.CloseableScope
  readonly decoder: FrameDecoder
  readonly privateName: string
  readonly daemonName: string
  readonly version: Version
  readonly label: string
  /** The groups it joins again whose answers are still due (see `rejoining` in reader.ts). */
  readonly rejoining: Set<string>
  /** Done when the reader fiber stopped. */
  readonly readerDone: Deferred.Deferred<void>
  /** Done when the writer fiber stopped. */
  readonly writerDone: Deferred.Deferred<void>
}

/**
 * The connection's one state value: its lifecycle, holding the session
 * (and while reconnecting, the gap buffers senders queue into).
 *
 * @since 0.3.0
 * @category models
 */
export type SessionLife = Lifecycle<Session, Target>

/**
 * Where senders' frames go in state `s`: the open session; while
 * reconnecting, the gap buffers (or, with none, the lost session's closed
 * buffer, so sends fail with the gap's error); else the last session's
 * closed buffer.
 *
 * @since 0.3.0
 * @category constructors
 */
export const targetOf = (s: Life<Session, Target>): Target =>
  s._tag === "Reconnecting" && s.gap !== undefined ? s.gap : s.session

/**
 * The record of an opened session whose senders use `out` and `flow`;
 * `rejoining`, the groups it joins again (see `rejoining` in reader.ts).
 *
 * @since 0.2.0
 * @category constructors
 */
export const sessionOf = (o: Opened, out: Outbound, flow: FlowControl, rejoining: Iterable<string>): Session => {
  const decoder = new FrameDecoder("toClient")
  decoder.push(o.hs.leftover)
  return {
    stream: o.stream,
    scope: o.scope,
    out,
    flow,
    decoder,
    privateGroup: o.hs.accept.privateGroup,
    nameField: groupEntry(o.hs.accept.privateGroup),
    privateName: o.hs.privateName,
    daemonName: o.hs.daemonName,
    version: o.hs.accept.version,
    label: o.label,
    rejoining: new Set(rejoining),
    readerDone: Deferred.unsafeMake(FiberId.none),
    writerDone: Deferred.unsafeMake(FiberId.none),
  }
}

/**
 * The parts of a connection a session's fibers work with; `current` is the
 * connection's current session.
 *
 * @since 0.2.0
 * @category models
 */
export interface SessionCore {
  readonly opts: ResolvedOptions
  /** Starts a fiber in the connection's set, from the runtime captured at connect (see connection.ts). */
  readonly start: (effect: Effect.Effect<void>) => Effect.Effect<void>
  readonly life: SessionLife
  readonly sender: Sender
  readonly tracker: ViewTracker
  readonly views: ViewsRef
  readonly inbound: Inbound
  readonly router: Router
  readonly reassembly: Reassembly
  readonly counters: Counters
  /** Wakes everything blocked with a final error. */
  readonly wakeAll: (e: ConnectionError) => Effect.Effect<void>
  /** Fresh gap buffers for senders while reconnecting (`whileReconnecting: "wait"`), after `lost`. */
  readonly gapOf: (lost: Session) => Target | undefined
  /** Starts reconnecting after the loss of a session (reconnect.ts). */
  readonly reconnect: (
    lost: Session,
    e: ConnectionError,
    schedule: Schedule.Schedule<unknown, ConnectError>,
  ) => Effect.Effect<void>
}

/**
 * Starts session `s`'s reader and writer fibers (interruptible, also when
 * started from the uninterruptible step that installs a new session).
 *
 * @since 0.2.0
 * @category constructors
 */
export const runSession = (core: SessionCore, s: Session): Effect.Effect<void> =>
  Effect.gen(function* () {
    const fail = lose(core, s)
    yield* core.start(
      Effect.interruptible(reader({
        privateGroup: s.privateGroup,
        stream: s.stream,
        decoder: s.decoder,
        flow: s.flow,
        sender: core.sender,
        tracker: core.tracker,
        views: core.views,
        inbound: core.inbound,
        router: core.router,
        reassembly: core.reassembly,
        counters: core.counters,
        fail,
        rejoining: s.rejoining,
        ended: () => s.out.closed,
      })).pipe(Effect.ensuring(Deferred.done(s.readerDone, Exit.void))),
    )
    // The writer: everything encoded since the last write, in one write.
    yield* core.start(
      Effect.interruptible(Effect.gen(function* () {
        while (true) {
          const bytes = yield* s.out.take
          if (bytes === undefined) return
          core.counters.bytesWritten += bytes.length
          const r = yield* Effect.either(s.stream.write(bytes))
          if (r._tag === "Left") return yield* fail("NetError", `writing to ${s.stream.address} failed`, r.left)
        }
      })).pipe(Effect.ensuring(Deferred.done(s.writerDone, Exit.void))),
    )
  })

// Session `s`'s reader or writer failed: the lifecycle's `lose` transition
// decides (a session that is no longer the current one is ignored).
const lose =
  (core: SessionCore, s: Session) =>
  (reason: ConnectionError["reason"], detail: string, cause?: unknown): Effect.Effect<void> =>
    Effect.suspend(() => {
      const e = new ConnectionError({ reason, privateGroup: s.privateGroup, detail, cause })
      const schedule = core.opts.reconnect
      const gapError = schedule === undefined ? undefined : new ConnectionError({
        reason,
        privateGroup: s.privateGroup,
        detail: `${detail}; the connection is reconnecting`,
        cause,
        reconnecting: true,
      })
      const gap = gapError === undefined ? undefined : core.gapOf(s)
      switch (core.life.lose(s, e, gapError, gap)) {
        case "Ignore":
          return Effect.void
        case "Fail":
          s.out.abort()
          return Effect.zipRight(s.stream.close, core.wakeAll(e))
        case "Reconnect":
          return schedule === undefined ? Effect.void : core.reconnect(s, e, schedule)
      }
    })
