/**
 * One daemon session under a connection: what is replaced when the
 * connection reconnects. Its record ({@link Session}), its two fibers — the
 * reader (receive.ts) and the writer, which writes everything encoded since
 * its last write in one write — and what the loss of it leads to: the
 * lifecycle's {@link Lifecycle.lose} transition decides between failing for
 * good and reconnecting (reconnect.ts).
 *
 * @module
 */
import { Effect, type Fiber, FiberSet, type Schedule, type Scope } from "effect"
import { FrameDecoder } from "../../protocol/decoder.ts"
import type { Version } from "../../protocol/handshake.ts"
import type { ByteStream } from "../../transport/conn.ts"
import type { Opened } from "../dialing.ts"
import { type ConnectError, ConnectionError } from "../errors.ts"
import type { Reassembly } from "../features/fragments.ts"
import type { Inbound } from "../core/inbound.ts"
import type { ResolvedOptions } from "../options.ts"
import type { Outbound } from "../admission/outbound.ts"
import { reader } from "./reader.ts"
import type { Router } from "../features/router.ts"
import type { Sender } from "../admission/send.ts"
import type { Lifecycle } from "../core/state.ts"
import type { Counters } from "./stats.ts"
import type { ViewsRef, ViewTracker } from "../core/views.ts"
import type { FlowControl } from "../admission/window.ts"

/**
 * One daemon session under a connection.
 *
 * @since 0.2.0
 * @category models
 */
export interface Session {
  readonly stream: ByteStream
  readonly scope: Scope.CloseableScope
  readonly out: Outbound
  readonly flow: FlowControl
  readonly privateGroup: string
  readonly privateName: string
  readonly daemonName: string
  readonly version: Version
  readonly label: string
  readonly rejoining: Set<string>
  reader: Fiber.RuntimeFiber<void> | undefined
  writer: Fiber.RuntimeFiber<void> | undefined
}

/**
 * The record of an opened session whose senders use `out` and `flow`;
 * `rejoining`, the groups it joins again (see `rejoining` in receive.ts).
 *
 * @since 0.2.0
 * @category constructors
 */
export const sessionOf = (o: Opened, out: Outbound, flow: FlowControl, rejoining: Iterable<string>): Session => ({
  stream: o.stream,
  scope: o.scope,
  out,
  flow,
  privateGroup: o.hs.accept.privateGroup,
  privateName: o.hs.privateName,
  daemonName: o.hs.daemonName,
  version: o.hs.accept.version,
  label: o.label,
  rejoining: new Set(rejoining),
  reader: undefined,
  writer: undefined,
})

/**
 * The parts of a connection a session's fibers work with; `current` is the
 * connection's current session.
 *
 * @since 0.2.0
 * @category models
 */
export interface SessionCore {
  readonly opts: ResolvedOptions
  readonly fibers: FiberSet.FiberSet<void, never>
  readonly life: Lifecycle
  readonly sender: Sender
  readonly tracker: ViewTracker
  readonly views: ViewsRef
  readonly inbound: Inbound
  readonly router: Router
  readonly reassembly: Reassembly
  readonly counters: Counters
  readonly current: Session
  /** Wakes everything blocked with a final error. */
  readonly wakeAll: (e: ConnectionError) => Effect.Effect<void>
  /** Starts reconnecting after the loss of a session (reconnect.ts). */
  readonly disconnect: (
    s: Session,
    e: ConnectionError,
    gap: ConnectionError,
    schedule: Schedule.Schedule<unknown, ConnectError>,
  ) => Effect.Effect<void>
}

/**
 * Starts a session's reader and writer fibers (interruptible, also when
 * started from the uninterruptible step that installs a new session);
 * `leftover` is what the handshake read past its end.
 *
 * @since 0.2.0
 * @category constructors
 */
export const runSession = (core: SessionCore, s: Session, leftover: Uint8Array): Effect.Effect<void> =>
  Effect.gen(function* () {
    const fail = lost(core, s)
    const decoder = new FrameDecoder("toClient")
    decoder.push(leftover)
    s.reader = yield* FiberSet.run(
      core.fibers,
      Effect.interruptible(reader({
        privateGroup: s.privateGroup,
        stream: s.stream,
        decoder,
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
      })),
    )
    // The writer: everything encoded since the last write, in one write.
    s.writer = yield* FiberSet.run(
      core.fibers,
      Effect.interruptible(Effect.gen(function* () {
        while (true) {
          const bytes = yield* s.out.take
          if (bytes === undefined) return
          core.counters.bytesWritten += bytes.length
          const r = yield* Effect.either(s.stream.write(bytes))
          if (r._tag === "Left") return yield* fail("NetError", `writing to ${s.stream.address} failed`, r.left)
        }
      })),
    )
  })

// Session `s`'s reader or writer failed. A session that is no longer the
// current one (its loss was already handled) is ignored.
const lost =
  (core: SessionCore, s: Session) =>
  (reason: ConnectionError["reason"], detail: string, cause?: unknown): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (s !== core.current) return Effect.void
      const e = new ConnectionError({ reason, privateGroup: s.privateGroup, detail, cause })
      const schedule = core.opts.reconnect
      const gap = schedule === undefined ? undefined : new ConnectionError({
        reason,
        privateGroup: s.privateGroup,
        detail: `${detail}; the connection is reconnecting`,
        cause,
        reconnecting: true,
      })
      return Effect.flatMap(core.life.lose(e, gap), (step) => {
        switch (step) {
          case "Ignore":
            return Effect.void
          case "Fail":
            s.out.abort()
            return Effect.zipRight(s.stream.close, core.wakeAll(e))
          case "Reconnect":
            return schedule === undefined || gap === undefined ? Effect.void : core.disconnect(s, e, gap, schedule)
        }
      })
    })
