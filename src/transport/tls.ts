/**
 * TLS byte streams: a listener that can require client certificates, and a
 * dialer that can present one. Both produce the same {@link ByteStream} as
 * TCP and Unix sockets, so everything above the byte stream (the daemon's
 * session, the client's handshake and connection) is one code path for all
 * three transports.
 *
 * Why `node:tls` on the listening side: `Deno.listenTls` (Deno 2.9) cannot
 * request or verify client certificates. Deno's `node:tls` server honours
 * `requestCert` + `ca` + `rejectUnauthorized`: a client without a
 * certificate, or with one from another issuer, is refused during the TLS
 * handshake (checked in Deno 2.9.6: the first gets a `CertificateRequired`
 * alert, the second a closed socket; neither reaches the Spread handshake).
 * The node socket is wrapped here with the same contract as `fromConn`:
 * a pull-based read (the socket is paused unless a read is waiting, so
 * buffering is bounded), writes that complete only once the socket took
 * every byte (partial writes are the socket's business, not the caller's),
 * and an idempotent close.
 *
 * The dialing side uses `Deno.connectTls` (client certificate via
 * `cert`/`key`), except when the name to verify differs from the host to
 * dial: Deno has no option for that together with a client certificate
 * (`Deno.startTls` takes a name but no certificate), so that case goes
 * through `node:tls`'s `connect` and the same wrapper.
 *
 * @module
 */
import { Effect, type Scope } from "effect"
import type { Buffer } from "node:buffer"
import type { Socket } from "node:net"
import tls from "node:tls"
import { type Address, formatAddress } from "./address.ts"
import { type ByteStream, fromConn, type Listener } from "./conn.ts"
import { TransportError } from "./errors.ts"

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

/**
 * A small bounded FIFO with one waiting taker: what the node callbacks
 * hand to Effect code.
 */
class Handoff<A> {
  #items: Array<A> = []
  #wake: (() => void) | undefined
  constructor(readonly capacity: number, readonly policy: "dropOldest" | "refuse") {}
  get size(): number {
    return this.#items.length
  }
  /** Adds an item; answers false when it was refused (full, `refuse` policy). */
  push(a: A): boolean {
    if (this.#items.length >= this.capacity) {
      if (this.policy === "refuse") return false
      this.#items.shift()
    }
    this.#items.push(a)
    this.wake()
    return true
  }
  wake(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }
  shift(): A | undefined {
    return this.#items.shift()
  }
  drain(): Array<A> {
    const all = this.#items
    this.#items = []
    return all
  }
  /** Waits until `ready()` holds (re-checked after every wake-up). */
  until(ready: () => boolean): Effect.Effect<void> {
    return Effect.suspend(() =>
      ready() ? Effect.void : Effect.async<void>((resume) => {
        this.#wake = () => resume(Effect.void)
        return Effect.sync(() => {
          this.#wake = undefined
        })
      }).pipe(Effect.zipRight(this.until(ready)))
    )
  }
}

// At most this many bytes read from the socket wait for the reader (plus
// the one chunk that crossed the line); past it the socket is paused (TCP
// backpressure to the peer) until a read drains it.
const READ_HIGH_WATER = 64 * 1024

type ReadResult =
  | { readonly _tag: "Chunk"; readonly chunk: Uint8Array | undefined }
  | { readonly _tag: "Failed"; readonly error: TransportError }

/**
 * Wraps a connected `node:tls` socket as a {@link ByteStream}: reads pull
 * (the socket is paused while `READ_HIGH_WATER` bytes wait), a write ends
 * when the socket has taken all of it, close is idempotent and settles a
 * pending read.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromNodeSocket = (socket: tls.TLSSocket, address: string): ByteStream =>
  new NodeSocketStream(socket, address)

// A class, as `fromConn`'s stream: a daemon holds one per session.
class NodeSocketStream implements ByteStream {
  #closed = false
  // EOF seen, and the socket error if one came (reads report it after the
  // chunks that arrived before it).
  #ended = false
  #failure: unknown = undefined
  readonly #chunks: Array<Uint8Array> = []
  #buffered = 0
  // The one read waiting for bytes (a stream has one reader).
  #pending: ((r: ReadResult) => void) | undefined
  // Write callbacks waiting, woken with an error if the socket dies first.
  readonly #writers = new Set<(e: unknown) => void>()
  readonly #socket: tls.TLSSocket
  readonly address: string

  constructor(socket: tls.TLSSocket, address: string) {
    this.#socket = socket
    this.address = address
    socket.on("data", (b: Buffer) => {
      // A plain Uint8Array the caller may keep: node may hand out views of
      // a shared pool, and Buffer's `slice` is a view, not a copy.
      const own = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength
        ? new Uint8Array(b.buffer, 0, b.byteLength)
        : Uint8Array.prototype.slice.call(b)
      this.#chunks.push(own)
      this.#buffered += own.length
      if (this.#buffered >= READ_HIGH_WATER) socket.pause()
      this.#poll()
    })
    socket.on("end", () => {
      this.#ended = true
      this.#poll()
    })
    socket.on("error", (e: Error) => {
      this.#failure ??= e
      this.#failWriters(e)
      this.#poll()
    })
    socket.on("close", () => {
      this.#ended = true
      this.#failWriters(this.#failure ?? new Error("socket closed"))
      this.#poll()
    })
    // Nothing is read until someone asks.
    socket.pause()
  }

  #failWriters(e: unknown): void {
    for (const w of this.#writers) w(e)
    this.#writers.clear()
  }

  // What a read answers now, or undefined when it must wait.
  #result(): ReadResult | undefined {
    if (this.#closed) return { _tag: "Failed", error: new TransportError({ reason: "Closed", address: this.address }) }
    const c = this.#chunks.shift()
    if (c !== undefined) {
      this.#buffered -= c.length
      if (this.#buffered < READ_HIGH_WATER && !this.#ended) this.#socket.resume()
      return { _tag: "Chunk", chunk: c }
    }
    if (this.#failure !== undefined) {
      return {
        _tag: "Failed",
        error: new TransportError({ reason: "ReadFailed", address: this.address, cause: this.#failure }),
      }
    }
    if (this.#ended) return { _tag: "Chunk", chunk: undefined }
    return undefined
  }

  #poll(): void {
    const cb = this.#pending
    if (cb === undefined) return
    const r = this.#result()
    if (r === undefined) return
    this.#pending = undefined
    cb(r)
  }

  #next(cb: (r: ReadResult) => void): void {
    const r = this.#result()
    if (r !== undefined) return cb(r)
    this.#pending = cb
    this.#socket.resume()
  }

  get read(): Effect.Effect<Uint8Array | undefined, TransportError> {
    // An interrupted read leaves nothing behind: bytes that arrive later
    // wait for the next read.
    return Effect.async<Uint8Array | undefined, TransportError>((resume) => {
      const cb = (r: ReadResult) => resume(r._tag === "Chunk" ? Effect.succeed(r.chunk) : Effect.fail(r.error))
      this.#next(cb)
      return Effect.sync(() => {
        if (this.#pending === cb) this.#pending = undefined
      })
    })
  }

  readNow(): Promise<Uint8Array | undefined> {
    return new Promise((resolve, reject) =>
      this.#next((r) => (r._tag === "Chunk" ? resolve(r.chunk) : reject(r.error)))
    )
  }

  // Starts a write; `done` runs once, when the socket has handed every byte
  // on (node loops over partial writes itself) or failed. Until then the
  // caller (a session's writer) waits and takes nothing more from its outbox.
  #write(bytes: Uint8Array, done: (e: TransportError | undefined) => void): () => void {
    if (this.#closed) {
      done(new TransportError({ reason: "Closed", address: this.address }))
      return () => {}
    }
    if (this.#failure !== undefined) {
      done(new TransportError({ reason: "WriteFailed", address: this.address, cause: this.#failure }))
      return () => {}
    }
    let settled = false
    const finish = (e: unknown) => {
      if (settled) return
      settled = true
      this.#writers.delete(finish)
      done(
        e === undefined || e === null ? undefined : new TransportError({
          reason: this.#closed ? "Closed" : "WriteFailed",
          address: this.address,
          cause: e,
        }),
      )
    }
    this.#writers.add(finish)
    this.#socket.write(bytes, (e?: Error | null) => finish(e ?? undefined))
    return () => {
      settled = true
      this.#writers.delete(finish)
    }
  }

  write(bytes: Uint8Array): Effect.Effect<void, TransportError> {
    return Effect.async<void, TransportError>((resume) => {
      const cancel = this.#write(bytes, (e) => resume(e === undefined ? Effect.void : Effect.fail(e)))
      return Effect.sync(cancel)
    })
  }

  writeNow(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#write(bytes, (e) => (e === undefined ? resolve() : reject(e)))
    })
  }

  get close(): Effect.Effect<void> {
    return Effect.sync(() => this.closeNow())
  }

  /** Closes the socket now (idempotent); a pending read fails with `Closed`. */
  closeNow(): void {
    if (this.#closed) return
    this.#closed = true
    this.#failWriters(new Error("closed locally"))
    this.#poll()
    const socket = this.#socket
    if (socket.destroyed) return
    // Say goodbye properly: what the socket already took (a last membership
    // notice, say) is flushed, then close_notify and FIN. A peer that does
    // not read lets none of it finish: the socket is dropped after a second
    // whatever happens (the timer does not keep the process alive).
    const timer = setTimeout(() => socket.destroy(), 1000)
    Deno.unrefTimer(timer)
    socket.once("close", () => clearTimeout(timer))
    socket.end(() => socket.destroy())
  }

  isClosed(): boolean {
    return this.#closed
  }
}

/** Subject names of a peer certificate: the common name and DNS alternative names. */
const subjectNames = (socket: tls.TLSSocket): Array<string> => {
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

const remoteOf = (socket: { remoteAddress?: string; remotePort?: number }): string =>
  socket.remoteAddress === undefined ? "unknown" : `${socket.remoteAddress}:${socket.remotePort ?? "?"}`

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
  const acquire = Effect.async<{ server: tls.Server; bound: Address }, TransportError>((resume) => {
    let server: tls.Server
    try {
      server = tls.createServer({
        cert: options.cert,
        key: options.key,
        ...(options.ca === undefined ? {} : { ca: options.ca, requestCert: true, rejectUnauthorized: true }),
        handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
      })
    } catch (cause) {
      resume(Effect.fail(new TransportError({ reason: "ListenFailed", address: label, cause })))
      return
    }
    const onError = (cause: Error) => {
      resume(Effect.fail(new TransportError({ reason: "ListenFailed", address: label, cause })))
    }
    server.once("error", onError)
    server.listen(address.port, address.hostname, () => {
      server.off("error", onError)
      const a = server.address()
      const port = typeof a === "object" && a !== null ? a.port : address.port
      resume(Effect.succeed({ server, bound: { _tag: "Tcp", hostname: address.hostname, port } }))
    })
  })
  return Effect.acquireRelease(
    Effect.map(acquire, ({ bound, server }) => makeTlsListener(server, bound, options)),
    (l) => l.close,
  )
}

// Connections accepted by TLS and not yet taken by the accept loop; past it
// new ones are closed (the accept loop is stuck, or the daemon is flooded).
const ACCEPT_BACKLOG = 1024

const makeTlsListener = (server: tls.Server, address: Address, options: TlsServerOptions): TlsListener => {
  let closed = false
  const label = formatAddress(address)
  const accepted = new Handoff<ByteStream>(ACCEPT_BACKLOG, "refuse")
  const refusals = new Handoff<TlsRefusal>(64, "dropOldest")
  const allow = options.ca !== undefined && options.allowSubjects !== undefined
    ? new Set(options.allowSubjects)
    : undefined
  // TCP connections whose TLS handshake has not finished. Deno's node:tls
  // reports a handshake timeout (`tlsClientError`) but leaves the socket
  // open, so a client that connects and never speaks TLS would hold it
  // forever: every failed handshake closes its socket here, and a timer one
  // beat after the timeout closes it whatever the TLS layer did.
  const timeoutMs = options.handshakeTimeoutMs ?? 10_000
  const handshaking = new Map<string, { readonly socket: Socket; readonly timer: ReturnType<typeof setTimeout> }>()
  const settle = (remote: string, destroy: boolean): void => {
    const h = handshaking.get(remote)
    if (h === undefined) return
    handshaking.delete(remote)
    clearTimeout(h.timer)
    if (destroy) h.socket.destroy()
  }
  const maxHandshakes = options.maxHandshakes ?? 256
  server.on("connection", (socket: Socket) => {
    const remote = remoteOf(socket)
    if (handshaking.size >= maxHandshakes) {
      socket.destroy()
      refusals.push({ remote, reason: `${maxHandshakes} TLS handshakes are already under way` })
      return
    }
    const timer = setTimeout(() => {
      if (!handshaking.has(remote)) return
      settle(remote, true)
      refusals.push({ remote, reason: `no TLS handshake within ${timeoutMs} ms` })
    }, timeoutMs + 100)
    Deno.unrefTimer(timer)
    handshaking.set(remote, { socket, timer })
    socket.once("close", () => settle(remote, false))
  })
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const remote = remoteOf(socket)
    settle(remote, false)
    if (closed) {
      socket.destroy()
      return
    }
    if (allow !== undefined) {
      const names = subjectNames(socket)
      if (!names.some((n) => allow.has(n))) {
        socket.destroy()
        refusals.push({
          remote,
          reason: `client certificate subject ${names.map((n) => `"${n}"`).join(", ") || "(none)"} is not allowed`,
        })
        return
      }
    }
    socket.setNoDelay(true)
    socket.setKeepAlive(true)
    if (!accepted.push(fromNodeSocket(socket, remote))) {
      socket.destroy()
      refusals.push({ remote, reason: `${ACCEPT_BACKLOG} connections are already waiting to be served` })
    }
  })
  server.on("tlsClientError", (e: Error & { code?: string }, socket: tls.TLSSocket) => {
    settle(remoteOf(socket), true)
    refusals.push({
      remote: remoteOf(socket),
      reason: `TLS handshake failed: ${e.message}${e.code === undefined ? "" : ` (${e.code})`}`,
    })
  })
  server.on("error", (e: Error) => refusals.push({ remote: label, reason: `listener error: ${e.message}` }))
  return {
    address,
    accept: accepted.until(() => closed || accepted.size > 0).pipe(
      Effect.flatMap(() => {
        const s = closed ? undefined : accepted.shift()
        return s === undefined
          ? Effect.fail(new TransportError({ reason: "Closed", address: label }))
          : Effect.succeed(s)
      }),
    ),
    refused: refusals.until(() => refusals.size > 0).pipe(
      Effect.flatMap(() => {
        const r = refusals.shift()
        return r === undefined ? Effect.never : Effect.succeed(r)
      }),
    ),
    close: Effect.suspend(() => {
      if (closed) return Effect.void
      closed = true
      accepted.wake()
      for (const s of accepted.drain()) Effect.runSync(s.close)
      for (const remote of [...handshaking.keys()]) settle(remote, true)
      // `close` stops listening at once; its callback would wait for every
      // connection to end, and those are the sessions' to close (the daemon
      // closes them next). So this does not wait for it.
      return Effect.sync(() => {
        try {
          server.close()
        } catch {
          // not listening any more
        }
      })
    }),
  }
}

/**
 * What a TLS dial presents and trusts. PEM strings.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsClientOptions {
  /** Authorities to trust for the daemon's certificate (instead of only the system's). */
  readonly caCerts?: ReadonlyArray<string> | undefined
  /** The client certificate to present (with `key`). */
  readonly cert?: string | undefined
  /** The client certificate's private key. */
  readonly key?: string | undefined
  /** The name the daemon's certificate must carry; the host dialled by default. */
  readonly serverName?: string | undefined
}

/**
 * Why a TLS handshake failed, as far as the client can tell.
 *
 * - `UnknownAuthority`: the daemon's certificate is not issued by a trusted authority.
 * - `NameMismatch`: the daemon's certificate does not carry the expected name.
 * - `CertificateRefused`: the daemon refused this client's certificate (or its absence).
 * - `Other`: another TLS failure.
 *
 * @since 0.1.0
 * @category models
 */
export type TlsFailure = "UnknownAuthority" | "NameMismatch" | "CertificateRefused" | "Other"

const messageChain = (e: unknown): string => {
  const parts: Array<string> = []
  for (let c: unknown = e, i = 0; c !== undefined && c !== null && i < 5; i++) {
    if (c instanceof TransportError) {
      c = c.cause
      continue
    }
    if (c instanceof Error) {
      parts.push(c.message)
      c = (c as { cause?: unknown }).cause
      continue
    }
    parts.push(String(c))
    break
  }
  return parts.join(": ")
}

/**
 * Classifies a failure seen while dialling or shaking hands over TLS
 * (the messages of Deno 2.9's rustls and of `node:tls`); `undefined` when it
 * does not look like a TLS failure.
 *
 * @since 0.1.0
 * @category utils
 */
export const classifyTlsFailure = (e: unknown): TlsFailure | undefined => {
  const m = messageChain(e)
  if (/UnknownIssuer|unknown ?ca|UNABLE_TO_(GET|VERIFY)|self[- ]signed|CERT_UNTRUSTED/i.test(m)) {
    return "UnknownAuthority"
  }
  if (/not valid for name|ALTNAME|hostname\/IP does not match|NotValidForName/i.test(m)) return "NameMismatch"
  if (/CertificateRequired|BadCertificate|certificate required|bad certificate|UnsupportedCertificate/i.test(m)) {
    return "CertificateRefused"
  }
  // A daemon that refuses a certificate from another issuer closes the
  // socket without an alert: the client sees an EOF without close_notify.
  if (/close_notify|UnexpectedEof|ECONNRESET/i.test(m)) return "CertificateRefused"
  if (/tls|certificate|handshake|alert/i.test(m)) return "Other"
  return undefined
}

/**
 * Dials a daemon over TLS and completes the TLS handshake; the scope closes
 * the stream. Interruptible at any moment (bound it with a timeout); a
 * socket that connects after the caller gave up is closed at once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const dialTls = (
  address: { readonly hostname: string; readonly port: number },
  options: TlsClientOptions,
): Effect.Effect<ByteStream, TransportError, Scope.Scope> => {
  const label = formatAddress({ _tag: "Tcp", ...address })
  const caCerts = options.caCerts === undefined ? undefined : [...options.caCerts]
  const open = Effect.async<ByteStream, TransportError>((resume) => {
    let gaveUp = false
    // The node socket of the fallback path, destroyed if the caller gives up
    // before it connects (Deno.connectTls takes no abort signal: a socket it
    // connects late is closed once it is there).
    let connecting: tls.TLSSocket | undefined
    let pending: Promise<ByteStream>
    if (options.serverName === undefined || options.serverName === address.hostname) {
      const cert = options.cert !== undefined && options.key !== undefined
        ? { cert: options.cert, key: options.key }
        : {}
      // The handshake completes here, so a problem with the daemon's
      // certificate is a connect failure. The daemon's verdict on ours comes
      // later, with the first read (TLS 1.3: the client finishes first).
      pending = Deno.connectTls({ hostname: address.hostname, port: address.port, caCerts, ...cert }).then(
        (conn) =>
          conn.handshake().then(
            () => fromConn(conn, label),
            (e: unknown) => {
              conn.close()
              return Promise.reject(e)
            },
          ),
      )
    } else {
      const servername = options.serverName
      pending = new Promise<ByteStream>((ok, ko) => {
        const socket = connecting = tls.connect({
          host: address.hostname,
          port: address.port,
          servername,
          ...(caCerts === undefined ? {} : { ca: caCerts }),
          ...(options.cert === undefined ? {} : { cert: options.cert }),
          ...(options.key === undefined ? {} : { key: options.key }),
        })
        const onError = (e: Error) => {
          socket.destroy()
          ko(e)
        }
        socket.once("error", onError)
        socket.once("secureConnect", () => {
          connecting = undefined
          socket.off("error", onError)
          socket.setNoDelay(true)
          ok(fromNodeSocket(socket, label))
        })
      })
    }
    pending.then(
      (stream) => {
        if (gaveUp) Effect.runSync(stream.close)
        else resume(Effect.succeed(stream))
      },
      (cause) => {
        if (!gaveUp) resume(Effect.fail(new TransportError({ reason: "ConnectFailed", address: label, cause })))
      },
    )
    return Effect.sync(() => {
      gaveUp = true
      connecting?.destroy()
    })
  })
  return Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(restore(open), (stream) => Effect.as(Effect.addFinalizer(() => stream.close), stream))
  )
}
