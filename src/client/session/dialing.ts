/**
 * Opening a daemon session: dial (TCP, Unix socket or TLS) with the
 * {@link Transport} in the fiber's context (the real sockets unless one is
 * provided), then the handshake, within `connectTimeout`, over the
 * connection's list of daemon addresses. Used for the first session and for
 * each reconnect.
 *
 * @module
 */
import { Duration, Effect, ExecutionStrategy, Exit, Scope } from "effect"
import type { Address } from "../../protocol/address.ts"
import type { ByteStream } from "../../transport/conn.ts"
import type { TransportError } from "../../transport/errors.ts"
import { Transport } from "../../transport/transport.ts"
import { ConnectError } from "../core/connect_error.ts"
import { type Handshake, handshake } from "./handshake.ts"
import { randomPrivateName, type ResolvedOptions } from "../options.ts"
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

// A TLS record header: content type 20..23 (change_cipher_spec, alert,
// handshake, application_data), then version 3.x. No Spread daemon's first
// answer starts so (an auth-method list, or a negative reject byte).
const isTlsRecord = (b: Uint8Array): boolean => b.length >= 2 && b[0] >= 20 && b[0] <= 23 && b[1] === 3

// `stream` for the handshake, keeping the first chunk the daemon sent.
const recordingFirst = (stream: ByteStream, seen: { first: Uint8Array | undefined }): ByteStream => ({
  address: stream.address,
  read: Effect.tap(stream.read, (chunk) => {
    if (seen.first === undefined && chunk !== undefined) seen.first = chunk
  }),
  readNow: () => stream.readNow(),
  write: (bytes) => stream.write(bytes),
  writeNow: (bytes) => stream.writeNow(bytes),
  close: stream.close,
  isClosed: () => stream.isClosed(),
})

// A plain client on a TLS port: the handshake failed on an answer that is
// a TLS record (the TLS layer's alert for bytes that are no TLS).
const plainOnTlsPort = (label: string, e: ConnectError, first: Uint8Array | undefined): ConnectError =>
  first !== undefined && isTlsRecord(first) && (e.reason === "NotSpreadDaemon" || e.reason === "ConnectionClosed")
    ? new ConnectError({
      reason: "PlainOnTlsPort",
      address: label,
      detail: `this port expects TLS: it answered with a TLS record (${
        [...first.subarray(0, 3)].map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("")
      }…); connect with the tls option, or to the daemon's plain port`,
      cause: e,
    })
    : e

// Dials one address and runs the handshake with `name`, within
// `connectTimeout`; the stream's scope is closed on failure.
const openOne = (
  opts: ResolvedOptions,
  target: Target,
  name: string,
  parent: Scope.Scope,
): Effect.Effect<Opened, ConnectError> =>
  // The scope is made and its closing on failure installed with no instant
  // between them an interruption could land in.
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Scope.fork(parent, ExecutionStrategy.sequential), (scope) =>
      restore(
        Effect.gen(function* () {
          const transport = yield* Transport
          const tls = target.address._tag === "Tcp" ? opts.tls : undefined
          const stream = yield* (tls !== undefined && target.address._tag === "Tcp"
            ? dialTlsFor(transport, target.address, target.label, tls)
            : transport.dial(target.address).pipe(
              Effect.mapError((e: TransportError) =>
                new ConnectError({
                  reason: "CouldNotConnect",
                  address: target.label,
                  detail: e.cause instanceof Error ? e.cause.message : e.message,
                  cause: e,
                })
              ),
            ))
          const seen: { first: Uint8Array | undefined } = { first: undefined }
          const watched = tls === undefined ? recordingFirst(stream, seen) : stream
          // Over TLS a refused client certificate surfaces as the first read failing.
          const hs = yield* handshake(watched, { ...opts, name, address: target.address, label: target.label }).pipe(
            Effect.mapError((e) =>
              tls !== undefined
                ? e.reason === "ConnectionClosed" ? tlsConnectError(target.label, e) ?? e : e
                : plainOnTlsPort(target.label, e, seen.first)
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
        ),
      ).pipe(
        Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void)),
      ))
  )

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
