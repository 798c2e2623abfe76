/**
 * Closing a connection: the one `close` that every caller and the scope's
 * finalizer share. The lifecycle's {@link Lifecycle.close} transition
 * decides what it takes (see {@link CloseStep}): an open connection says
 * goodbye — nothing is accepted after the disconnect frame, the writer
 * flushes and the reader drains until the daemon closes its side, bounded
 * by `closeTimeout` — then releases the socket and the fibers; a
 * reconnecting one wakes everything blocked and stops the attempts; a failed
 * one only releases; a later close waits for the first.
 *
 * Its own room because it touches every part of the connection yet owns
 * none: it reads them through {@link CloseCore}, as reconnecting does
 * through its own view.
 *
 * @module
 */
import { Deferred, Effect, FiberSet, type Scope } from "effect"
import { ConnectionError } from "../core/errors.ts"
import type { ResolvedOptions } from "../options.ts"
import type { Sender } from "../admission/send.ts"
import type { SessionLife } from "./session.ts"

/**
 * The parts of a connection closing works on; `current` and `out` are the
 * connection's current session and the buffer its senders use now.
 *
 * @since 0.2.0
 * @category models
 */
export interface CloseCore {
  readonly opts: ResolvedOptions
  readonly fibers: FiberSet.FiberSet<void, never>
  readonly life: SessionLife
  readonly sender: Sender
  /** Wakes everything blocked with a final error. */
  readonly wakeAll: (e: ConnectionError) => Effect.Effect<void>
}

/**
 * Makes the connection's `close` and installs it as the scope's finalizer.
 * The `close` is uninterruptible, safe from any fiber, any number of times
 * and concurrently; every call returns once the connection is closed.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeClose = (core: CloseCore): Effect.Effect<Effect.Effect<void>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const closedDone = yield* Deferred.make<void>()
    const release = Effect.suspend(() => core.life.session.stream.close).pipe(
      Effect.zipRight(FiberSet.clear(core.fibers)),
      Effect.zipRight(Deferred.succeed(closedDone, undefined)),
      Effect.asVoid,
    )
    const close: Effect.Effect<void> = Effect.uninterruptible(Effect.suspend(() => {
      const closedError = new ConnectionError({
        reason: "Closed",
        privateGroup: core.life.session.privateGroup,
        detail: "the connection was closed",
      })
      const [step, from] = core.life.close(closedError)
      const s = from.session
      switch (step) {
        case "Graceful":
          // Nothing is accepted after the disconnect (KILL), which goes out last.
          s.out.finish(core.sender.killFrame)
          // Wait, bounded, for the writer to flush and the daemon to close
          // its side (the reader drains until then). The wait must be
          // interruptible (a timeout interrupts it); `exit` keeps the
          // release below running even if the closing fiber is interrupted.
          return core.wakeAll(closedError).pipe(
            Effect.zipRight(Effect.exit(Effect.interruptible(
              Effect.timeout(
                Effect.zipRight(Deferred.await(s.writerDone), Deferred.await(s.readerDone)),
                core.opts.closeTimeout,
              ),
            ))),
            Effect.zipRight(release),
          )
        case "DuringReconnect":
          // No session to say goodbye on: wake everything, stop reconnecting.
          if (from._tag === "Reconnecting" && from.gap !== undefined) {
            from.gap.out.abort()
            return core.wakeAll(closedError).pipe(Effect.zipRight(from.gap.flow.end), Effect.zipRight(release))
          }
          return Effect.zipRight(core.wakeAll(closedError), release)
        case "AfterFailure":
          return release
        case "Already":
          return Deferred.await(closedDone)
      }
    }))
    yield* Effect.addFinalizer(() => close)
    return close
  })
