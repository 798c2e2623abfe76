/**
 * Opening a daemon session: dial (TCP, Unix socket or TLS), then the
 * handshake, within `connectTimeout`, over the connection's list of daemon
 * addresses. Used for the first session and for each reconnect.
 *
 * @module
 */
import { Duration, Effect, ExecutionStrategy, Exit, Scope } from "effect"
import type { Address } from "../protocol/address.ts"
import { type ByteStream, dial } from "../transport/conn.ts"
import type { TransportError } from "../transport/errors.ts"
import { ConnectError } from "./errors.ts"
import { type Handshake, handshake } from "./handshake.ts"
import { randomPrivateName, type ResolvedOptions } from "./options.ts"
import { dialTlsFor, tlsConnectError } from "./tls.ts"

/**
 * A dialled and accepted session, its stream in a scope of its own.
 *
 * @since 0.2.0
 * @category models
 */
export interface Opened {
  readonly hs: Handshake
  readonly stream: ByteStream
  readonly label: string
  readonly scope: Scope.CloseableScope
}

/**
 * One daemon address, as dialled and as named in errors.
 *
 * @since 0.2.0
 * @category models
 */
export interface Target {
  readonly address: Address
  readonly label: string
}

// Dials one address and runs the handshake with `name`, within
// `connectTimeout`; the stream's scope is closed on failure.
const openOne = (
  opts: ResolvedOptions,
  target: Target,
  name: string,
  parent: Scope.Scope,
): Effect.Effect<Opened, ConnectError> =>
  Effect.flatMap(Scope.fork(parent, ExecutionStrategy.sequential), (scope) =>
    Effect.gen(function* () {
      const tls = target.address._tag === "Tcp" ? opts.tls : undefined
      const stream = yield* (tls !== undefined && target.address._tag === "Tcp"
        ? dialTlsFor(target.address, target.label, tls)
        : dial(target.address).pipe(
          Effect.mapError((e: TransportError) =>
            new ConnectError({
              reason: "CouldNotConnect",
              address: target.label,
              detail: e.cause instanceof Error ? e.cause.message : e.message,
              cause: e,
            })
          ),
        ))
      // Over TLS a refused client certificate surfaces as the first read failing.
      const hs = yield* handshake(stream, { ...opts, name, address: target.address, label: target.label }).pipe(
        Effect.mapError((e) =>
          tls !== undefined && e.reason === "ConnectionClosed" ? tlsConnectError(target.label, e) ?? e : e
        ),
      )
      return { hs, stream, label: target.label, scope }
    }).pipe(
      Scope.extend(scope),
      Effect.timeoutFail({
        duration: opts.connectTimeout,
        onTimeout: () =>
          new ConnectError({
            reason: "Timeout",
            address: target.label,
            detail: `no session within ${Duration.format(opts.connectTimeout)}`,
          }),
      }),
      Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void)),
    ))

/**
 * Tries each address in turn. With `fresh`, a daemon that refuses `name`
 * as in use (the lost session may linger there) is asked again with a
 * fresh name. Fails with the one address's error, or, for a list, with an
 * error naming what each address answered.
 *
 * @since 0.2.0
 * @category constructors
 */
export const openAny = (
  opts: ResolvedOptions,
  name: string,
  fresh: boolean,
  parent: Scope.Scope,
): Effect.Effect<Opened, ConnectError> =>
  Effect.gen(function* () {
    const errors: Array<ConnectError> = []
    for (const target of opts.addresses) {
      let r = yield* Effect.either(openOne(opts, target, name, parent))
      if (r._tag === "Left" && fresh && r.left.reason === "RejectNotUnique") {
        r = yield* Effect.either(openOne(opts, target, name === "" ? "" : randomPrivateName(), parent))
      }
      if (r._tag === "Right") return r.right
      errors.push(r.left)
    }
    const last = errors[errors.length - 1]
    if (errors.length === 1) return yield* Effect.fail(last)
    return yield* Effect.fail(
      new ConnectError({
        reason: last.reason,
        address: opts.addresses.map((t) => t.label).join(","),
        detail: `no daemon accepted a session: ${errors.map((e) => `${e.address}: ${e.detail}`).join("; ")}`,
        cause: errors,
      }),
    )
  })
