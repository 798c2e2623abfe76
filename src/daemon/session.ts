/**
 * One operational session inside the daemon, after its handshake: a read
 * loop that decodes, checks and hands each request to the engine, a writer
 * that drains the session's bounded outbox in coalesced writes, and the
 * cut-off policy for slow readers.
 *
 * A session keeps no fiber. An idle one is a pending read on its socket
 * and a few small objects (10,000 idle sessions are a design target, and a
 * parked fiber with its stack costs more than everything else together);
 * the writer runs only while frames wait. The daemon's scope still owns
 * every session: the daemon registers each in `shared.live` and ends them
 * all when it closes, and closing a socket settles its pending read.
 *
 * Nothing a client sent is dropped because the daemon stopped writing to
 * it. When a write fails (the client reset the connection, typically by
 * closing it with our frames unread) or the session is cut off as a slow
 * reader, the session turns deaf: it writes nothing more and discards what
 * the engine offers it, but reads on, and every request it reads is
 * sequenced as usual. It ends at EOF, at a read error, once no byte has
 * come for {@link DRAIN_QUIET_MS} (what a client sent before it went away
 * is already in the kernel's receive queue and comes at once), or at the
 * latest {@link DRAIN_MS} after it turned deaf; only then does the engine
 * sequence its disconnect, after everything it read. A session that ends
 * by EOF or a read error has read everything there was. The endings that
 * drop what follows are the ones the client asked for or broke: KILL (what
 * follows a KILL is ignored, as Spread does), a protocol violation, an
 * unfinished frame past its deadline, and daemon shutdown.
 *
 * @module
 */
import { Effect, Runtime } from "effect"
import { FrameDecoder } from "../protocol/decoder.ts"
import { isProtocolError } from "../protocol/handshake.ts"
import { clientFrameValidator, commandGroup } from "../protocol/client_frames.ts"
import { privateGroupName } from "../protocol/names.ts"
import { quoted } from "../protocol/printable.ts"
import type { ByteStream } from "../transport/conn.ts"
import { TransportError } from "../transport/errors.ts"
import { compacted, Outbox } from "../transport/outbox.ts"
import type { DaemonContext, SessionControl } from "./context.ts"
import type { Delivery, EngineSession } from "./engine.ts"

/**
 * What a finished handshake hands to {@link startSession}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Accepted {
  /** The private name. */
  readonly name: string
  /** Whether the client asked for membership messages. */
  readonly membership: boolean
  /** Bytes received after the handshake (the start of the first frames). */
  readonly rest: Uint8Array
}

/**
 * A session is cut off as a slow reader only when its socket has taken
 * nothing for this long. A real daemon writes each frame to the socket at
 * once and queues (and counts against MaxSessionMessages) only what the
 * full socket buffer refuses; here frames always pass through the outbox,
 * so a burst read in one turn can queue many frames for a reader that is
 * keeping up. Counting them only while the socket is stalled keeps
 * Spread's meaning: the limit applies once the socket buffer is full.
 */
const STALL_MS = 100

/** How long a closing session's writer may flush what is queued. */
const FLUSH_MS = 1000

/**
 * A deaf session (cut off, or its write failed) ends when nothing has
 * arrived for this long: its client's unread requests were already queued
 * in the kernel and arrive at once.
 */
const DRAIN_QUIET_MS = 200

/** The longest a deaf session reads on (a client that keeps sending). */
const DRAIN_MS = 1000

/** How a session ended; `warn` endings are logged at Warning, once. */
type Ending = { readonly why: string; readonly warn: boolean }

/**
 * Runs an accepted session until it ends, without a fiber. `release` gives
 * back what the connection holds (its name, its place, the socket) and is
 * called exactly once, when the session has ended and its writer has
 * flushed (bounded) or the daemon shut it down.
 *
 * @since 0.1.0
 * @category combinators
 */
export const startSession = (ctx: DaemonContext, stream: ByteStream, hs: Accepted, release: () => void): void => {
  new DaemonSession(ctx, stream, hs, release).start(hs.rest)
}

const logWith = (ctx: DaemonContext, effect: Effect.Effect<void>): void => Runtime.runSync(ctx.runtime, effect)

// A class, not a bag of closures: 10,000 idle sessions share its methods.
class DaemonSession implements EngineSession, SessionControl {
  readonly privateName: string
  readonly privateGroup: string
  readonly membership: boolean
  readonly outbox: Outbox
  readonly #ctx: DaemonContext
  readonly #stream: ByteStream
  readonly #release: () => void
  readonly #checkFrame: ReturnType<typeof clientFrameValidator>
  // When the write in flight started, or -1 while nothing is being written.
  #writingSince = -1
  // Whether the queue was compacted during the current stall.
  #compactedSinceStall = false
  // The writer's run while frames wait; undefined when it is not running.
  #writing: Promise<void> | undefined
  #ended: Ending | undefined
  // Set once nothing more is read (EOF, KILL, a violation, a deadline, shutdown).
  #stopped = false
  // Deaf: writes nothing more and discards offers, but reads on (bounded).
  #deaf = false
  #deafSince = -1
  #quietTimer: ReturnType<typeof setTimeout> | undefined
  #finished = false
  // When the frame being received began (Clock ms), or -1 between frames.
  #partialSince = -1
  // Made when bytes come, dropped when every byte was a whole frame: an
  // idle session holds none.
  #decoder: FrameDecoder | undefined
  // Joins refused so far: the first is logged, the count ends the session's last line.
  #refusals = 0

  constructor(ctx: DaemonContext, stream: ByteStream, hs: Accepted, release: () => void) {
    this.#ctx = ctx
    this.#stream = stream
    this.#release = release
    this.privateName = hs.name
    this.privateGroup = privateGroupName(hs.name, ctx.config.name)
    this.membership = hs.membership
    // The outbox bounds bytes; the message limit is applied by `offer`.
    this.outbox = new Outbox({ maxMessages: Number.MAX_SAFE_INTEGER, maxBytes: ctx.config.maxSessionBytes })
    this.#checkFrame = clientFrameValidator(hs.name, ctx.config.name)
  }

  start(rest: Uint8Array): void {
    this.#ctx.engine.add(this)
    this.#ctx.shared.live.add(this)
    if (this.#ctx.debug) {
      logWith(this.#ctx, Effect.logDebug(`Session ${this.privateGroup} open from ${this.#stream.address}`))
    }
    this.#onChunk(rest)
  }

  // -- SessionControl

  partialSince(): number {
    return this.#partialSince
  }

  expire(why: string): void {
    this.#end(why, true)
    this.#stopped = true
    this.#closeSocket()
  }

  shutdown(): void {
    this.#end("closed (daemon shutdown)", false)
    this.#stopped = true
    this.outbox.clear()
    this.outbox.close()
    this.#finish()
  }

  // -- EngineSession

  offer(frame: Uint8Array): Delivery {
    if (this.#deaf) return "Discarded"
    const box = this.outbox
    let bytes = frame
    const stalled = this.#writingSince >= 0 && box.messages > 0 &&
      this.#ctx.clock.unsafeCurrentTimeMillis() - this.#writingSince >= STALL_MS
    if (stalled) {
      if (box.messages >= this.#ctx.config.maxSessionMessages) return "Overflow"
      // Frames are views into read chunks of up to 64 KiB. While the
      // reader is stuck, queue only their own bytes (the first time,
      // compact what is already queued too), so the byte limit bounds
      // memory; a reader that keeps up pays no copy.
      if (!this.#compactedSinceStall) {
        box.compact()
        this.#compactedSinceStall = true
      }
      bytes = compacted(bytes)
    }
    const r = box.offer(bytes)
    if (r === "Queued") {
      // Started one turn later (a microtask), so every frame queued while
      // the current chunk is handled goes in the same write.
      if (this.#writing === undefined) this.#writing = Promise.resolve().then(() => this.#write())
      const n = box.messages
      const shared = this.#ctx.shared
      if (n > shared.recentPeak) {
        shared.recentPeak = n
        if (n > shared.peak) shared.peak = n
      }
    }
    return r
  }

  cutOff(reason: string): void {
    const box = this.outbox
    const config = this.#ctx.config
    this.#end(
      `cut off: ${reason} (${box.messages} frames, ${box.bytes} bytes queued; limits ${config.maxSessionMessages} ` +
        `frames with the socket stalled ${STALL_MS} ms, ${config.maxSessionBytes} bytes)`,
      true,
    )
    this.#deafen()
  }

  // Writes nothing more and drops what is queued, but reads on until EOF,
  // a read error, DRAIN_QUIET_MS without a byte, or DRAIN_MS in all; the
  // read loop then ends the session (the engine's disconnect comes last).
  #deafen(): void {
    if (this.#deaf) return
    this.#deaf = true
    // Real time, as the timers that end the drain (not the Clock).
    this.#deafSince = performance.now()
    this.outbox.clear()
    if (this.#stopped) return
    this.#quiet()
  }

  // (Re)starts the quiet deadline of a deaf session; past DRAIN_MS it
  // ends the drain at once.
  #quiet(): void {
    if (this.#quietTimer !== undefined) clearTimeout(this.#quietTimer)
    const left = this.#deafSince + DRAIN_MS - performance.now()
    this.#quietTimer = setTimeout(this.#drained, Math.max(0, Math.min(DRAIN_QUIET_MS, left)))
  }

  // The drain is over: closing the socket settles the pending read, and the
  // read loop ends the session.
  readonly #drained = (): void => {
    this.#quietTimer = undefined
    this.#stopped = true
    this.#closeSocket()
  }

  // -- the writer: runs while frames wait, then stops

  async #write(): Promise<void> {
    const box = this.outbox
    try {
      for (;;) {
        const batch = box.takeNow()
        if (batch === undefined) return
        this.#writingSince = this.#ctx.clock.unsafeCurrentTimeMillis()
        await this.#stream.writeNow(batch)
        this.#writingSince = -1
        this.#compactedSinceStall = false
      }
    } catch (e) {
      // Nothing more can be written, but what the client sent before it
      // went away may still be unread: read on (bounded), then end.
      this.#end(`write failed: ${e instanceof Error ? e.message : String(e)}`, false)
      this.#deafen()
    } finally {
      this.#writingSince = -1
      this.#writing = undefined
    }
  }

  // -- the reader: one pending read, no fiber

  #readNext(): void {
    this.#stream.readNow().then(this.#onChunk, this.#onReadFailed)
  }

  // Both read callbacks catch everything: a throw escaping them would be an
  // unhandled rejection, which ends the whole daemon process.
  readonly #onChunk = (chunk: Uint8Array | undefined): void => {
    try {
      if (this.#handle(chunk)) this.#readNext()
      else this.#ending()
    } catch (defect) {
      this.#defect(defect)
    }
  }

  readonly #onReadFailed = (e: unknown): void => {
    try {
      const closed = e instanceof TransportError && e.reason === "Closed"
      this.#end(closed ? "closed" : `read failed: ${e instanceof Error ? e.message : String(e)}`, false)
      this.#ending()
    } catch (defect) {
      this.#defect(defect)
    }
  }

  // A bug, not the client's doing: end this session alone, loudly, and
  // give back what it holds whatever state it was in.
  #defect(defect: unknown): void {
    this.#end(`ended by a defect: ${defect instanceof Error ? defect.stack ?? defect.message : String(defect)}`, true)
    try {
      this.#ending()
    } catch {
      // logging failed too: still give everything back
    }
    this.#closeSocket()
    this.#finish()
  }

  // Feeds a chunk (undefined: EOF); answers whether to read on.
  #handle(chunk: Uint8Array | undefined): boolean {
    if (this.#stopped) return false
    if (this.#deaf) this.#quiet()
    if (chunk === undefined) {
      const cut = this.#decoder?.end()
      if (cut === undefined) this.#end("EOF", false)
      else this.#end(`killed: EOF inside a message (${cut.detail})`, true)
      return false
    }
    if (chunk.length === 0 && this.#decoder === undefined) return true
    const d = this.#decoder ??= new FrameDecoder("toDaemon")
    d.push(chunk)
    return this.#drain(d) && !this.#stopped
  }

  // Handles every whole frame buffered; answers false once the session ends.
  #drain(d: FrameDecoder): boolean {
    const engine = this.#ctx.engine
    for (let handled = false;; handled = true) {
      const f = d.next()
      if (f === undefined) {
        // A frame begun and not finished starts (or keeps) its deadline.
        // With nothing buffered the decoder goes (the next chunk makes
        // another): an idle session holds none.
        if (d.buffered === 0) {
          this.#partialSince = -1
          this.#decoder = undefined
        } else if (handled || this.#partialSince < 0) this.#partialSince = this.#ctx.clock.unsafeCurrentTimeMillis()
        return true
      }
      if (isProtocolError(f)) {
        this.#end(`killed: ${f.message}`, true)
        return false
      }
      const req = this.#checkFrame(f)
      if (isProtocolError(req)) {
        this.#end(`killed: ${req.message}`, true)
        return false
      }
      switch (req._tag) {
        case "Multicast":
          engine.multicast(this, f, req.selfDiscard)
          break
        case "Join": {
          const group = commandGroup(f)
          const refused = engine.join(this, group, f)
          if (refused !== undefined && this.#refusals++ === 0) {
            logWith(
              this.#ctx,
              Effect.logInfo(
                `Session ${this.privateGroup} join of ${quoted(group)} refused: ${refused} ` +
                  "(further refusals are only counted)",
              ),
            )
          }
          break
        }
        case "Leave":
          engine.leave(this, commandGroup(f))
          break
        case "Kill":
          this.#end("disconnected (KILL)", false)
          return false
      }
    }
  }

  // -- endings

  // Records why the session ends (the first reason wins); stopping the
  // reads is up to the caller.
  #end(why: string, warn: boolean): void {
    this.#ended ??= { why, warn }
  }

  #closeSocket(): void {
    Effect.runSync(this.#stream.close)
  }

  // The end of the read loop: sequence the disconnect, log, let the writer
  // flush what is queued (bounded), then close.
  #ending(): void {
    if (this.#finished) return
    this.#stopped = true
    if (this.#quietTimer !== undefined) {
      clearTimeout(this.#quietTimer)
      this.#quietTimer = undefined
    }
    this.#ctx.engine.remove(this)
    this.outbox.close()
    const e0 = this.#ended ?? { why: "closed", warn: false }
    const e = this.#refusals === 0 ? e0 : { ...e0, why: `${e0.why} (${this.#refusals} joins refused)` }
    if (e.warn) logWith(this.#ctx, Effect.logWarning(`Session ${this.privateGroup} ${e.why}`))
    else if (this.#ctx.debug) logWith(this.#ctx, Effect.logDebug(`Session ${this.privateGroup} ended: ${e.why}`))
    const flushing = this.#writing
    // A deaf session has nothing to flush (a write may hang on a client
    // that does not read).
    if (flushing === undefined || this.#deaf || this.#stream.isClosed()) return this.#finish()
    const timer = setTimeout(() => this.#finish(), FLUSH_MS)
    // `#write` never rejects; `#finish` is idempotent and gives back what
    // the session holds.
    void flushing.then(() => {
      clearTimeout(timer)
      this.#finish()
    })
  }

  // Gives everything back, once: the engine, the registry, the socket.
  #finish(): void {
    if (this.#finished) return
    this.#finished = true
    if (this.#quietTimer !== undefined) clearTimeout(this.#quietTimer)
    this.#ctx.shared.live.delete(this)
    this.#ctx.engine.remove(this)
    this.#release()
  }
}
