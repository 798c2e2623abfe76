/**
 * Typed messages: what a client sends (multicast, join, leave, disconnect),
 * what a daemon sends (regular, membership, transitional, self-leave,
 * reject), the membership body, and the daemon's header checks. They live
 * in four modules; this one re-exports them all, so imports of
 * `messages.ts` keep working.
 *
 * @module
 */
export * from "./client_requests.ts"
export * from "./client_frames.ts"
export * from "./server_messages.ts"
export * from "./daemon_encoders.ts"
