/**
 * The mark a connection opened with `reconnect` puts in its streams where a
 * lost session was replaced by a new one ({@link Discontinuity}), and the
 * refinement that tells it from a daemon's transitional signal.
 *
 * @module
 */
import type { ServerMessage, TransitionalMessage } from "../../protocol/server_messages.ts"
import type { ConnectionError } from "./errors.ts"

/**
 * The mark a connection opened with `reconnect` puts in `messages` and in
 * every `subscribe` stream where a lost session was replaced by a new one:
 * what comes before it came through the old session, what comes after
 * through the new one, and whatever was multicast in between is lost
 * (Spread replays nothing). It comes before any message of the new
 * session, and never waits for room: a stream whose buffer is full holds
 * it (one at most) until a receiver makes room or ahead of the next
 * message; reconnects that follow while it is unread, with no message
 * after it, are coalesced into it (`reconnects` counts them, `cause`,
 * `privateGroup` and `rejoined` are the latest, `previousPrivateGroup` the
 * first). So a stream nobody reads holds one mark however often the
 * connection reconnects, and a reconnect never waits for a reader.
 *
 * It is a transitional signal (`_tag: "Transitional"`, as Spread sends
 * before a view changes), so code that switches over the message kinds or
 * filters with {@link isRegular} keeps working; the regular membership
 * messages of the groups joined again follow. {@link isDiscontinuity} tells
 * it from a daemon's transitional signal.
 *
 * @since 0.2.0
 * @category models
 */
export interface Discontinuity extends TransitionalMessage {
  /** Tells a discontinuity from a daemon's transitional signal. */
  readonly discontinuity: true
  /**
   * The subscribed group in a `subscribe` stream; in `messages`, the new
   * session's private group.
   */
  readonly group: string
  /** No group id: this signal is the client's, not the daemon's. */
  readonly groupId: undefined
  /** Why the old session was lost. */
  readonly cause: ConnectionError
  /** The new session's private group. */
  readonly privateGroup: string
  /** The lost session's private group (the same unless the daemon refused the name). */
  readonly previousPrivateGroup: string
  /** The groups joined again. */
  readonly rejoined: ReadonlyArray<string>
  /**
   * How many reconnects this mark stands for: 1, or more when later ones
   * came while it was unread and coalesced into it.
   *
   * @since 0.3.0
   */
  readonly reconnects: number
}

/**
 * Whether a received message is a {@link Discontinuity}: the session was
 * replaced here, and messages may have been lost in between.
 *
 * @since 0.2.0
 * @category refinements
 */
export const isDiscontinuity = (m: ServerMessage): m is Discontinuity =>
  m._tag === "Transitional" && "discontinuity" in m && m.discontinuity === true
