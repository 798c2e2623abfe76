/**
 * Byte streams: the {@link Transport} service (dial and listen, swappable:
 * sockets by default, an in-memory network for tests), the socket and TLS
 * implementations, and a bounded coalescing outbox (the daemon's).
 *
 * @module
 */
export { type Address, formatAddress, parseSpreadName } from "../protocol/address.ts"
export * from "./conn.ts"
export * from "./errors.ts"
export * from "./memory.ts"
export * from "./outbox.ts"
export * from "./tls_dialer.ts"
export * from "./tls_listener.ts"
export * from "./tls_stream.ts"
export * from "./transport.ts"
