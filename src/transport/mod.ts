/**
 * Byte streams over Deno sockets: dial, listen, a pull-based reader and a
 * bounded coalescing outbox. Shared by the client and the daemon.
 *
 * @module
 */
export { type Address, formatAddress, parseSpreadName } from "../protocol/address.ts"
export * from "./conn.ts"
export * from "./errors.ts"
export * from "./outbox.ts"
