/**
 * A connected `node:tls` socket as a {@link ByteStream}, with the same
 * contract as `fromConn`: a pull-based read (the socket is paused unless a
 * read is waiting, so buffering is bounded), writes that complete only once
 * the socket took every byte (partial writes are the socket's business, not
 * the caller's), and an idempotent close. Used by the TLS listener (Deno has
 * no server API that asks for client certificates) and by the one dial Deno
 * cannot make itself (see `tls_dialer.ts`).
 *
 * @module
 */
import { Effect } from "effect"
import type { ByteStream } from "./conn.ts"
import { TransportError } from "./errors.ts"
import type { NodeTlsSocket } from "./node_tls.ts"

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
export const fromNodeSocket = (socket: NodeTlsSocket, address: string): ByteStream =>
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
  readonly #socket: NodeTlsSocket
  readonly address: string

  constructor(socket: NodeTlsSocket, address: string) {
    this.#socket = socket
    this.address = address
    socket.on("data", (b: Uint8Array) => {
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
