/**
 * The TLS listener: `node:tls` behind the {@link Listener} contract, with
 * its caps (handshakes at once, handshake time, connections waiting to be
 * accepted) and the client-certificate allow-list. Accepted connections are
 * {@link ByteStream}s like TCP's, so the daemon serves all three transports
 * with one session code path.
 *
 * Why `node:tls`: `Deno.listenTls` (Deno 2.9) cannot request or verify
 * client certificates. Deno's `node:tls` server honours `requestCert` +
 * `ca` + `rejectUnauthorized`: a client without a certificate, or with one
 * from another issuer, is refused during the TLS handshake (checked in Deno
 * 2.9.6: the first gets a `CertificateRequired` alert, the second a closed
 * socket; neither reaches the Spread handshake). It is loaded on first use
 * and typed by local interfaces (`node_tls.ts`), so no Node types reach a
 * consumer's type check.
 *
 * @module
 */
import { Deferred, Effect, Queue, type Scope } from "effect"
import { type Address, formatAddress } from "../protocol/address.ts"
import type { ByteStream, Listener } from "./conn.ts"
import { TransportError } from "./errors.ts"
import { type NodeSocket, nodeTls, type NodeTlsServer, type NodeTlsSocket } from "./node_tls.ts"
import { fromNodeSocket } from "./tls_stream.ts"

/**
 * What a TLS listener serves with, and whom it lets in. PEM strings.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsServerOptions {
  /** The server's certificate chain (PEM). */
  readonly cert: string
  /** The server's private key (PEM). */
  readonly key: string
  /**
   * Certificate authorities (PEM) a client certificate must be issued by.
   * When set, every client must present a certificate issued by one of them;
   * without one the handshake is refused. When unset, no client certificate
   * is asked for.
   */
  readonly ca?: string | undefined
  /**
   * When set (with `ca`), the subject common name (or a DNS subject
   * alternative name) of the client certificate must be one of these.
   */
  readonly allowSubjects?: ReadonlyArray<string> | undefined
  /** Time a client has to finish the TLS handshake, in ms. Default 10000. */
  readonly handshakeTimeoutMs?: number | undefined
  /**
   * Most connections in their TLS handshake at once; past it a new one is
   * closed at once (and reported). Default 256.
   */
  readonly maxHandshakes?: number | undefined
}

/**
 * A TLS client that was turned away before any Spread byte was exchanged.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsRefusal {
  /** `host:port` of the client, when known. */
  readonly remote: string
  /** Why, as the TLS layer said it (or the allow-list). */
  readonly reason: string
}

/**
 * A {@link Listener} for TLS, with the refusals it made.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsListener extends Listener {
  /**
   * The next refusal (a failed TLS handshake, or a subject not on the
   * allow-list). The last 64 are kept; older ones are dropped.
   */
  readonly refused: Effect.Effect<TlsRefusal>
}

/** Subject names of a peer certificate: the common name and DNS alternative names. */
const subjectNames = (socket: NodeTlsSocket): Array<string> => {
  const cert = socket.getPeerCertificate()
  const names: Array<string> = []
  const cn = cert?.subject?.CN
  if (typeof cn === "string") names.push(cn)
  else if (Array.isArray(cn)) names.push(...cn.filter((x): x is string => typeof x === "string"))
  const alt = cert?.subjectaltname
  if (typeof alt === "string") {
    for (const part of alt.split(",")) {
      const m = /^\s*DNS:(.+)$/.exec(part)
      if (m !== null) names.push(m[1].trim())
    }
  }
  return names
}

const remoteOf = (socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined }) =>
  socket.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${socket.remotePort ?? "?"}`

/**
 * Says why a TLS handshake failed, in the words a user needs: a client that
 * sent no TLS at all (a plain Spread connect message, say) is told apart.
 */
const handshakeFailure = (e: Error & { readonly code?: string }): string =>
  /WRONG_VERSION_NUMBER|InvalidContentType|HTTP_REQUEST|http request/i.test(`${e.code ?? ""} ${e.message}`)
    ? `the client does not speak TLS (a plain Spread client?): this port expects TLS (${e.message})`
    : `TLS handshake failed: ${e.message}${e.code === undefined ? "" : ` (${e.code})`}`

/**
 * Listens for TLS on a TCP address. With `ca`, every client must present a
 * certificate issued by it, checked during the TLS handshake; with
 * `allowSubjects` too, its subject must be on the list (checked right after
 * the handshake, before the stream is handed out). Refused clients never
 * become streams; they are reported on `refused`. Port 0 picks a free port.
 *
 * @since 0.1.0
 * @category constructors
 */
export const listenTls = (
  address: { readonly hostname: string; readonly port: number },
  options: TlsServerOptions,
): Effect.Effect<TlsListener, TransportError, Scope.Scope> => {
  const label = formatAddress({ _tag: "Tcp", ...address })
  const listenFailed = (cause: unknown) => new TransportError({ reason: "ListenFailed", address: label, cause })
  const acquire = Effect.flatMap(
    Effect.mapError(nodeTls, listenFailed),
    (tls) =>
      Effect.async<{ server: NodeTlsServer; bound: Address }, TransportError>((resume) => {
        let server: NodeTlsServer
        try {
          server = tls.createServer({
            cert: options.cert,
            key: options.key,
            ...(options.ca === undefined ? {} : { ca: options.ca, requestCert: true, rejectUnauthorized: true }),
            handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
          })
        } catch (cause) {
          resume(Effect.fail(listenFailed(cause)))
          return
        }
        const onError = (cause: Error) => resume(Effect.fail(listenFailed(cause)))
        server.once("error", onError)
        server.listen(address.port, address.hostname, () => {
          server.off("error", onError)
          const a = server.address()
          const port = typeof a === "object" && a !== null ? a.port : address.port
          resume(Effect.succeed({ server, bound: { _tag: "Tcp", hostname: address.hostname, port } }))
        })
      }),
  )
  return Effect.acquireRelease(
    Effect.flatMap(acquire, ({ bound, server }) => makeTlsListener(server, bound, options)),
    (l) => l.close,
  )
}

// Connections accepted by TLS and not yet taken by the accept loop; past it
// new ones are closed (the accept loop is stuck, or the daemon is flooded).
const ACCEPT_BACKLOG = 1024
// Refusals kept for `refused`; past it the oldest is dropped.
const REFUSALS_KEPT = 64

/** A TCP connection whose TLS handshake has not finished. */
interface Handshaking {
  readonly socket: NodeSocket
  readonly remote: string
  readonly timer: ReturnType<typeof setTimeout>
}

/**
 * TCP connections in their TLS handshake: at most `max` at once, each for
 * at most `timeoutMs`. Deno's node:tls reports a handshake timeout
 * (`tlsClientError`) but leaves the socket open, so a client that connects
 * and never speaks TLS would hold it forever: every failed handshake closes
 * its socket here, and a timer one beat after the timeout closes it
 * whatever the TLS layer did. Also the peers' addresses: Deno's server-side
 * TLS socket reports none of its own, and its TCP socket may be gone (and
 * its address with it) by the time a failed handshake is reported.
 */
class Handshakes {
  readonly #pending = new Map<unknown, Handshaking>()
  readonly #peers = new WeakMap<object, string>()
  readonly #max: number
  readonly #timeoutMs: number
  readonly #refuse: (remote: string, reason: string) => void

  constructor(max: number, timeoutMs: number, refuse: (remote: string, reason: string) => void) {
    this.#max = max
    this.#timeoutMs = timeoutMs
    this.#refuse = refuse
  }

  /** A TCP connection arrived: its handshake starts, or it is closed (and reported) past the cap. */
  begin(socket: NodeSocket): void {
    const remote = remoteOf(socket) ?? "(unknown peer)"
    this.#peers.set(socket, remote)
    if (this.#pending.size >= this.#max) {
      socket.destroy()
      this.#refuse(remote, `${this.#max} TLS handshakes are already under way`)
      return
    }
    const timer = setTimeout(() => {
      if (!this.#pending.has(socket)) return
      this.#settle(socket, true)
      this.#refuse(remote, `no TLS handshake within ${this.#timeoutMs} ms`)
    }, this.#timeoutMs + 100)
    Deno.unrefTimer(timer)
    this.#pending.set(socket, { socket, remote, timer })
    socket.once("close", () => this.#settle(socket, false))
  }

  /** The peer of a TLS socket: its own address, or its TCP socket's. */
  peerOf(socket: NodeTlsSocket): string {
    const own = remoteOf(socket)
    if (own !== undefined) return own
    const parent = socket._parent
    return (typeof parent === "object" && parent !== null ? this.#peers.get(parent) : undefined) ?? "(unknown peer)"
  }

  /**
   * The handshake of a TLS socket is over (`destroy`: failed). Its TCP
   * socket is found by node's link to it, or else by the peer's address (a
   * TCP socket left pending would be destroyed by its timer, live or not).
   */
  end(socket: NodeTlsSocket, remote: string, destroy: boolean): void {
    if (this.#pending.has(socket._parent)) return this.#settle(socket._parent, destroy)
    for (const [key, h] of this.#pending) if (h.remote === remote) return this.#settle(key, destroy)
    if (destroy) socket.destroy()
  }

  /** Closes every connection still in its handshake. */
  closeAll(): void {
    for (const key of [...this.#pending.keys()]) this.#settle(key, true)
  }

  #settle(key: unknown, destroy: boolean): void {
    const h = this.#pending.get(key)
    if (h === undefined) return
    this.#pending.delete(key)
    clearTimeout(h.timer)
    if (destroy) h.socket.destroy()
  }
}

const makeTlsListener = (
  server: NodeTlsServer,
  address: Address,
  options: TlsServerOptions,
): Effect.Effect<TlsListener> =>
  Effect.gen(function* () {
    const label = formatAddress(address)
    // What the node callbacks hand to Effect code. `accepted` refuses past
    // its bound (the caller closes the connection and reports it);
    // `refusals` keeps the newest.
    const accepted = yield* Queue.dropping<ByteStream>(ACCEPT_BACKLOG)
    const refusals = yield* Queue.sliding<TlsRefusal>(REFUSALS_KEPT)
    // Closed: `shut` for the node callbacks, `closed` to wake a pending accept.
    let shut = false
    const closed = yield* Deferred.make<void>()
    const refuse = (remote: string, reason: string): void => {
      Effect.runSync(Queue.offer(refusals, { remote, reason }))
    }
    const allow = options.ca !== undefined && options.allowSubjects !== undefined
      ? new Set(options.allowSubjects)
      : undefined
    const handshakes = new Handshakes(options.maxHandshakes ?? 256, options.handshakeTimeoutMs ?? 10_000, refuse)
    server.on("connection", (socket) => handshakes.begin(socket))
    server.on("secureConnection", (socket) => {
      const remote = handshakes.peerOf(socket)
      handshakes.end(socket, remote, false)
      if (shut) return socket.destroy()
      const names = allow === undefined ? [] : subjectNames(socket)
      if (allow !== undefined && !names.some((n) => allow.has(n))) {
        socket.destroy()
        const subjects = names.map((n) => `"${n}"`).join(", ") || "(none)"
        return refuse(remote, `client certificate subject ${subjects} is not allowed`)
      }
      socket.setNoDelay(true)
      socket.setKeepAlive(true)
      if (!Effect.runSync(Queue.offer(accepted, fromNodeSocket(socket, remote)))) {
        socket.destroy()
        refuse(remote, `${ACCEPT_BACKLOG} connections are already waiting to be served`)
      }
    })
    server.on("tlsClientError", (e, socket) => {
      const remote = handshakes.peerOf(socket)
      handshakes.end(socket, remote, true)
      refuse(remote, handshakeFailure(e))
    })
    server.on("error", (e: Error) => refuse(label, `listener error: ${e.message}`))
    const closedError = new TransportError({ reason: "Closed", address: label })
    return {
      address,
      // The queue is never shut down (a shutdown would interrupt the
      // accepting fiber): closing drains it and wakes the pending accept.
      accept: Effect.suspend(() =>
        shut ? Effect.fail(closedError) : Effect.raceFirst(
          Queue.take(accepted),
          Effect.zipRight(Deferred.await(closed), Effect.fail(closedError)),
        )
      ),
      refused: Queue.take(refusals),
      close: Effect.suspend(() => {
        if (shut) return Effect.void
        shut = true
        return Effect.gen(function* () {
          yield* Deferred.succeed(closed, undefined)
          for (const s of yield* Queue.takeAll(accepted)) yield* s.close
          handshakes.closeAll()
          // `close` stops listening at once; its callback would wait for
          // every connection to end, and those are the sessions' to close
          // (the daemon closes them next). So this does not wait for it.
          try {
            server.close()
          } catch {
            // not listening any more
          }
        })
      }),
    }
  })
