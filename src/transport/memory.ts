/**
 * An in-memory network: listeners and connections that live in this
 * process only, with the same contracts as sockets (a pull-based read, a
 * write that waits while the peer is behind, EOF after the peer closes,
 * `Closed` after a local close). A daemon and its clients given the same
 * {@link memoryTransport} talk with no socket opened.
 *
 * Every host name is this one machine: a listener on TCP port `p` is
 * reached as `p@<any host>`; Unix paths are names only (no file is made).
 * There is no TLS: `dialTls` and `listenTls` fail.
 *
 * @module
 */
import { Deferred, Effect, Exit, Layer, Queue, type Scope } from "effect"
import { type Address, formatAddress } from "../protocol/address.ts"
import type { ByteStream, Listener } from "./conn.ts"
import { TransportError } from "./errors.ts"
import { Transport } from "./transport.ts"

// Writes waiting unread in one direction of a connection; past it a write
// waits for the reader (backpressure, as a socket's buffer gives).
const PIPE_CHUNKS = 64
// Connections made and not yet accepted; past it a dial fails (as a full
// accept backlog drops a SYN, but at once).
const BACKLOG = 128
// Ports handed out for port 0: from just past Linux's default local port
// range (32768-60999), whence the OS picks the local port of every
// outgoing connection. So a number handed out here is not also a real
// socket's on the same machine (the tests check that nothing real is bound).
const FIRST_EPHEMERAL_PORT = 61000

/** One side of a connection: whether it closed, and a signal for waiters. */
class End {
  closed = false
  readonly signal: Deferred.Deferred<void>
  constructor(signal: Deferred.Deferred<void>) {
    this.signal = signal
  }
  close(): void {
    if (this.closed) return
    this.closed = true
    Deferred.unsafeDone(this.signal, Exit.void)
  }
}

class MemoryStream implements ByteStream {
  readonly address: string
  readonly #incoming: Queue.Queue<Uint8Array>
  readonly #outgoing: Queue.Queue<Uint8Array>
  readonly #self: End
  readonly #peer: End
  readonly #closedError: TransportError
  readonly #peerGone: TransportError

  constructor(
    address: string,
    incoming: Queue.Queue<Uint8Array>,
    outgoing: Queue.Queue<Uint8Array>,
    self: End,
    peer: End,
  ) {
    this.address = address
    this.#incoming = incoming
    this.#outgoing = outgoing
    this.#self = self
    this.#peer = peer
    this.#closedError = new TransportError({ reason: "Closed", address })
    this.#peerGone = new TransportError({
      reason: "WriteFailed",
      address,
      cause: new Error("the peer closed the connection"),
    })
  }

  get read(): Effect.Effect<Uint8Array | undefined, TransportError> {
    return Effect.suspend(() => {
      if (this.#self.closed) return Effect.fail(this.#closedError)
      // What the peer wrote before it closed is read before the EOF.
      return Effect.flatMap(Queue.poll(this.#incoming), (o) => {
        if (o._tag === "Some") return Effect.succeed<Uint8Array | undefined>(o.value)
        if (this.#peer.closed) return Effect.succeed(undefined)
        return Effect.raceFirst(
          Queue.take(this.#incoming),
          Effect.raceFirst(
            Effect.as(Deferred.await(this.#peer.signal), undefined),
            Effect.zipRight(Deferred.await(this.#self.signal), Effect.fail(this.#closedError)),
          ),
        )
      })
    })
  }

  readNow(): Promise<Uint8Array | undefined> {
    return Effect.runPromise(Effect.either(this.read)).then((r) =>
      r._tag === "Right" ? r.right : Promise.reject(r.left)
    )
  }

  write(bytes: Uint8Array): Effect.Effect<void, TransportError> {
    return Effect.suspend(() => {
      if (this.#self.closed) return Effect.fail(this.#closedError)
      if (this.#peer.closed) return Effect.fail(this.#peerGone)
      // A copy: the caller may reuse its buffer once the write is done.
      return Effect.raceFirst(
        Effect.asVoid(Queue.offer(this.#outgoing, bytes.slice())),
        Effect.raceFirst(
          Effect.zipRight(Deferred.await(this.#peer.signal), Effect.fail(this.#peerGone)),
          Effect.zipRight(Deferred.await(this.#self.signal), Effect.fail(this.#closedError)),
        ),
      )
    })
  }

  writeNow(bytes: Uint8Array): Promise<void> {
    return Effect.runPromise(Effect.either(this.write(bytes))).then((r) =>
      r._tag === "Right" ? undefined : Promise.reject(r.left)
    )
  }

  get close(): Effect.Effect<void> {
    return Effect.sync(() => this.#self.close())
  }

  isClosed(): boolean {
    return this.#self.closed
  }
}

/**
 * A connected pair of in-memory streams, with no listener: what a dialler
 * holds (`client`, labelled `clientLabel`) and what a listener would accept
 * (`server`). For tests that play one side by hand.
 *
 * @since 0.2.0
 * @category constructors
 */
export const memoryPair = (
  clientLabel = "memory:client",
  serverLabel = "memory:server",
): Effect.Effect<{ readonly client: ByteStream; readonly server: ByteStream }> =>
  Effect.gen(function* () {
    const toServer = yield* Queue.bounded<Uint8Array>(PIPE_CHUNKS)
    const toClient = yield* Queue.bounded<Uint8Array>(PIPE_CHUNKS)
    const c = new End(yield* Deferred.make<void>())
    const s = new End(yield* Deferred.make<void>())
    return {
      client: new MemoryStream(clientLabel, toClient, toServer, c, s),
      server: new MemoryStream(serverLabel, toServer, toClient, s, c),
    }
  })

interface Bound {
  readonly accepted: Queue.Queue<ByteStream>
}

const keyOf = (a: Address): string => (a._tag === "Tcp" ? `tcp:${a.port}` : `unix:${a.path}`)

const noTls = (
  reason: "ConnectFailed" | "ListenFailed",
  address: { readonly hostname: string; readonly port: number },
) =>
  Effect.fail(
    new TransportError({
      reason,
      address: formatAddress({ _tag: "Tcp", ...address }),
      cause: new Error("the in-memory transport carries no TLS: use the socket transport for TLS"),
    }),
  )

/**
 * A fresh in-memory network as a {@link Transport}: give the same value to a
 * daemon and to its clients (`Effect.provideService(Transport, t)`), and
 * they talk with no socket opened. Each call makes a separate network.
 *
 * @since 0.2.0
 * @category constructors
 */
export const memoryTransport = (): Transport => {
  const bound = new Map<string, Bound>()
  let nextPort = FIRST_EPHEMERAL_PORT
  let connections = 0

  const listen = (address: Address): Effect.Effect<Listener, TransportError, Scope.Scope> =>
    Effect.gen(function* () {
      let at = address
      if (at._tag === "Tcp" && at.port === 0) {
        // The next free one, wrapping around past 65535.
        const next = (p: number) => (p >= 65535 ? FIRST_EPHEMERAL_PORT : p + 1)
        for (let tried = 0; bound.has(`tcp:${nextPort}`); tried++) {
          if (tried > 65535 - FIRST_EPHEMERAL_PORT) {
            return yield* new TransportError({
              reason: "ListenFailed",
              address: formatAddress(at),
              cause: new Error(`every port from ${FIRST_EPHEMERAL_PORT} to 65535 is bound`),
            })
          }
          nextPort = next(nextPort)
        }
        at = { ...at, port: nextPort }
        nextPort = next(nextPort)
      }
      const label = formatAddress(at)
      const key = keyOf(at)
      if (bound.has(key)) {
        return yield* new TransportError({
          reason: "ListenFailed",
          address: label,
          cause: new Error(`address ${label} is in use (in-memory transport)`),
        })
      }
      const accepted = yield* Queue.dropping<ByteStream>(BACKLOG)
      const closed = yield* Deferred.make<void>()
      const closedError = new TransportError({ reason: "Closed", address: label })
      let shut = false
      const entry: Bound = { accepted }
      bound.set(key, entry)
      const close = Effect.suspend(() => {
        if (shut) return Effect.void
        shut = true
        if (bound.get(key) === entry) bound.delete(key)
        return Effect.zipRight(
          Deferred.succeed(closed, undefined),
          Effect.flatMap(Queue.takeAll(accepted), (pending) => Effect.forEach(pending, (s) => s.close)),
        )
      })
      yield* Effect.addFinalizer(() => close)
      const listener: Listener = {
        address: at,
        // The queue is never shut down (that would interrupt the accepting
        // fiber): closing drains it and wakes the pending accept.
        accept: Effect.suspend(() =>
          shut ? Effect.fail(closedError) : Effect.raceFirst(
            Queue.take(accepted),
            Effect.zipRight(Deferred.await(closed), Effect.fail(closedError)),
          )
        ),
        close,
      }
      return listener
    })

  const dial = (address: Address): Effect.Effect<ByteStream, TransportError, Scope.Scope> =>
    Effect.gen(function* () {
      const label = formatAddress(address)
      const target = bound.get(keyOf(address))
      if (target === undefined) {
        return yield* new TransportError({
          reason: "ConnectFailed",
          address: label,
          cause: new Error(`connection refused: nothing listens on ${label} (in-memory transport)`),
        })
      }
      const { client, server } = yield* memoryPair(label, `memory#${++connections}`)
      if (!(yield* Queue.offer(target.accepted, server))) {
        return yield* new TransportError({
          reason: "ConnectFailed",
          address: label,
          cause: new Error(`${BACKLOG} connections already wait to be accepted on ${label} (in-memory transport)`),
        })
      }
      yield* Effect.addFinalizer(() => client.close)
      return client
    })

  return {
    name: "memory",
    dial,
    listen,
    dialTls: (address) => noTls("ConnectFailed", address),
    listenTls: (address) => noTls("ListenFailed", address),
  }
}

/**
 * Provides a fresh in-memory network ({@link memoryTransport}) to everything
 * built with it: a daemon and clients under one `Effect.provide(layerMemory)`
 * reach each other with no socket opened.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory: Layer.Layer<never> = Layer.sync(Transport, memoryTransport)

/**
 * Runs `effect` over a fresh in-memory network.
 *
 * @since 0.2.0
 * @category combinators
 */
export const withMemoryTransport = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => Effect.provideService(effect, Transport, memoryTransport()))
