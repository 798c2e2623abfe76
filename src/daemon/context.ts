/**
 * What a daemon shares with its connections: configuration, the engine,
 * the counters its limits read, and the registry of live sessions.
 *
 * @module
 */
import type { Clock, Runtime } from "effect"
import type { Outbox } from "../transport/outbox.ts"
import type { ResolvedConfig } from "./config.ts"
import type { Engine } from "./engine.ts"

/**
 * What the daemon knows of one operational session, for the checks that
 * run across all of them (the deepest outbox, unfinished frames) and for
 * shutdown.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionControl {
  /** The session's outbox. */
  readonly outbox: Outbox
  /**
   * When (Clock ms) the frame the session is in the middle of sending
   * began, or -1 when no frame is half-received.
   */
  readonly partialSince: () => number
  /** Ends the session (a limit was passed): logs `why` and closes the socket. */
  readonly expire: (why: string) => void
  /** Ends the session at daemon shutdown: leaves the engine, closes the socket, now. */
  readonly shutdown: () => void
}

/**
 * What the daemon knows of one connection still shaking hands.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandshakeControl {
  /** When it began (Clock ms). */
  readonly startedAt: number
  /** Ends the handshake if one of its deadlines has passed at `now` (Clock ms). */
  readonly check: (now: number) => void
  /** Ends it with REJECT_QUOTA to make room for a newer connection. */
  readonly displace: () => void
  /** Ends it at daemon shutdown. */
  readonly shutdown: () => void
}

/**
 * Counters and registries the daemon's listeners share.
 *
 * @since 0.1.0
 * @category models
 */
export interface DaemonShared {
  /** Connections accepted and not yet closed (handshaking included). */
  open: number
  /** Connections still shaking hands (the size of `handshakes`). */
  handshaking: number
  /** Every connection still shaking hands, oldest first. */
  readonly handshakes: Set<HandshakeControl>
  /** Those of `handshakes` that have not sent a byte yet, oldest first (displaced first). */
  readonly silentHandshakes: Set<HandshakeControl>
  /** Starts the deadline sweep of `handshakes` (called when the first one is added). */
  wakeHandshakeSweep: () => void
  /** Places taken by operational sessions (and handshakes just accepted). */
  sessions: number
  /** Handshakes displaced since the handshake bound was last reached (for one log line per episode). */
  handshakesDisplaced: number
  /** Every operational session. */
  readonly live: Set<SessionControl>
  /** The deepest any outbox has been since the daemon started (messages). */
  peak: number
  /** The deepest any outbox has been since the metrics were last published. */
  recentPeak: number
  /** Generated private names handed out so far (the counter in `r<random>-<counter>`). */
  generated: number
}

/**
 * What the daemon shares with each connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface DaemonContext {
  /** The configuration in force. */
  readonly config: ResolvedConfig
  /** The one sequencer. */
  readonly engine: Engine
  /** Names taken by operational sessions and by sessions still shaking hands. */
  readonly reserved: Set<string>
  /** Counters and the live sessions. */
  readonly shared: DaemonShared
  /** The transport of the listener the connection came in on. */
  readonly transport: "tcp" | "unix" | "tls"
  /** The daemon's clock: deadlines and the stall rule read it. */
  readonly clock: Clock.Clock
  /**
   * The daemon's runtime (its logger, log level and services), for what a
   * session does outside a fiber: logging.
   */
  readonly runtime: Runtime.Runtime<never>
  /**
   * Whether Debug records pass the runtime's minimum log level: a
   * connection's Debug lines (open, ended) are not even built otherwise.
   */
  readonly debug: boolean
}
