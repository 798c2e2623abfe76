/**
 * Byte streams over Deno's sockets, as scoped resources.
 *
 * Why not `@effect/platform`'s `Socket`: its `run` pushes every chunk to a
 * handler as the runtime reads it, with no way to stop reading while the
 * consumer is behind. Spread needs that backpressure (a client stops reading
 * when its consumer is slow; a daemon must never buffer without bound), and a
 * coalescing writer that owns the write side. So this is the smallest thing
 * that fits: a pull-based `read`, a `writeAll`, and an idempotent `close`,
 * over `Deno.Conn` (TCP, Unix, and later TLS, which is a `Deno.Conn` too).
 *
 * @module
 */
import { Effect, type Scope } from "effect"
import { type Address, formatAddress } from "./address.ts"
import { TransportError } from "./errors.ts"

/**
 * One open byte stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface ByteStream {
  /** Where the stream goes (for messages and logs). */
  readonly address: string
  /**
   * The next chunk (a fresh copy the caller may keep), or `undefined` at EOF.
   * Fails with `ReadFailed`, or `Closed` once closed locally.
   */
  readonly read: Effect.Effect<Uint8Array | undefined, TransportError>
  /** Writes all of `bytes`; fails with `WriteFailed` or `Closed`. */
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, TransportError>
  /** Closes the socket; safe to call any number of times from anywhere. */
  readonly close: Effect.Effect<void>
  /** Whether `close` has run. */
  readonly isClosed: () => boolean
}

// Read buffers start small (idle sessions cost little: 10,000 of them are a
// design target) and double, up to 64 KiB, whenever a read fills one.
const READ_BUFFER_MIN = 4 * 1024
const READ_BUFFER_MAX = 64 * 1024

/**
 * Wraps an open `Deno.Conn` as a {@link ByteStream}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromConn = (conn: Deno.Conn, address: string): ByteStream => {
  let closed = false
  // One read buffer per stream; each chunk is copied out (`slice`) so frames
  // that outlive the read never pin the buffer.
  let buf = new Uint8Array(READ_BUFFER_MIN)
  const close = Effect.sync(() => {
    if (closed) return
    closed = true
    try {
      conn.close()
    } catch {
      // already closed by the runtime
    }
  })
  const read: Effect.Effect<Uint8Array | undefined, TransportError> = Effect.suspend(() =>
    closed ? Effect.fail(new TransportError({ reason: "Closed", address })) : Effect.tryPromise({
      try: () => conn.read(buf),
      catch: (cause) => new TransportError({ reason: closed ? "Closed" : "ReadFailed", address, cause }),
    }).pipe(Effect.map((n) => {
      if (n === null) return undefined
      const chunk = buf.slice(0, n)
      if (n === buf.length && buf.length < READ_BUFFER_MAX) buf = new Uint8Array(buf.length * 2)
      return chunk
    }))
  )
  const write = (bytes: Uint8Array): Effect.Effect<void, TransportError> =>
    Effect.suspend(() =>
      closed ? Effect.fail(new TransportError({ reason: "Closed", address })) : Effect.tryPromise({
        try: async () => {
          let off = 0
          while (off < bytes.length) off += await conn.write(off === 0 ? bytes : bytes.subarray(off))
        },
        catch: (cause) => new TransportError({ reason: closed ? "Closed" : "WriteFailed", address, cause }),
      })
    )
  return { address, read, write, close, isClosed: () => closed }
}

/**
 * Opens a stream to `address`; the scope closes it. The connect is
 * interruptible at any moment — bound it with a timeout — and never leaks
 * a socket: one that connects after the caller gave up is closed at once.
 * Without a timeout a TCP connect to a peer that never answers waits as
 * long as the OS retries (about two minutes on Linux).
 *
 * @since 0.1.0
 * @category constructors
 */
export const dial = (address: Address): Effect.Effect<ByteStream, TransportError, Scope.Scope> => {
  const label = formatAddress(address)
  // Not `Effect.tryPromise` inside `acquireRelease`: the acquire step is
  // uninterruptible, so a timeout could not stop a connect that hangs (a
  // listener whose accept backlog is full drops every SYN).
  const open = Effect.async<Deno.Conn, TransportError>((resume, signal) => {
    let gaveUp = false
    const pending: Promise<Deno.Conn> = address._tag === "Tcp"
      ? Deno.connect({ hostname: address.hostname, port: address.port, signal }).then((c) => {
        c.setNoDelay(true)
        c.setKeepAlive(true)
        return c as Deno.Conn
      })
      : Deno.connect({ transport: "unix", path: address.path })
    pending.then(
      (conn) => {
        if (gaveUp) {
          try {
            conn.close()
          } catch {
            // already closed
          }
        } else resume(Effect.succeed(conn))
      },
      (cause) => {
        if (!gaveUp) resume(Effect.fail(new TransportError({ reason: "ConnectFailed", address: label, cause })))
      },
    )
    return Effect.sync(() => {
      gaveUp = true
    })
  })
  return Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(restore(open), (conn) => {
      const stream = fromConn(conn, label)
      return Effect.as(Effect.addFinalizer(() => stream.close), stream)
    })
  )
}

/**
 * A listening socket: accept connections until its scope closes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Listener {
  readonly address: Address
  /** The next connection; fails with `Closed` once the listener is closed. */
  readonly accept: Effect.Effect<ByteStream, TransportError>
  readonly close: Effect.Effect<void>
}

/**
 * Listens on TCP or on a Unix socket path. A stale socket file at the path
 * is removed first (as Spread does), and the file is removed again when the
 * scope closes. Port 0 picks a free port; `address` reports the real one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const listen = (address: Address): Effect.Effect<Listener, TransportError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        if (address._tag === "Unix") {
          try {
            const st = Deno.lstatSync(address.path)
            if (st.isSocket) Deno.removeSync(address.path)
          } catch {
            // nothing there
          }
          const l = Deno.listen({ transport: "unix", path: address.path })
          try {
            Deno.chmodSync(address.path, 0o666)
          } catch {
            // best effort, as Spread's mode 0666
          }
          return { l: l as Deno.Listener, bound: address }
        }
        const l = Deno.listen({ hostname: address.hostname, port: address.port })
        return { l: l as Deno.Listener, bound: { ...address, port: l.addr.port } as Address }
      },
      catch: (cause) => new TransportError({ reason: "ListenFailed", address: formatAddress(address), cause }),
    }).pipe(Effect.map(({ bound, l }) => makeListener(l, bound))),
    (listener) => listener.close,
  )

const makeListener = (l: Deno.Listener, address: Address): Listener => {
  let closed = false
  const label = formatAddress(address)
  return {
    address,
    accept: Effect.suspend(() =>
      closed ? Effect.fail(new TransportError({ reason: "Closed", address: label })) : Effect.tryPromise({
        try: () => l.accept(),
        catch: (cause) => new TransportError({ reason: closed ? "Closed" : "ReadFailed", address: label, cause }),
      }).pipe(Effect.map((c) => {
        if (address._tag === "Tcp") {
          try {
            ;(c as Deno.TcpConn).setNoDelay(true)
            ;(c as Deno.TcpConn).setKeepAlive(true)
          } catch {
            // the peer may already be gone
          }
        }
        const remote = c.remoteAddr
        const who = remote.transport === "tcp" ? `${remote.hostname}:${remote.port}` : `${label}`
        return fromConn(c, who)
      }))
    ),
    close: Effect.sync(() => {
      if (closed) return
      closed = true
      try {
        l.close()
      } catch {
        // already closed
      }
      if (address._tag === "Unix") {
        try {
          Deno.removeSync(address.path)
        } catch {
          // already gone
        }
      }
    }),
  }
}
