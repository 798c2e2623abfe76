/**
 * Daemon addresses moved to `src/protocol/address.ts`, next to the other
 * Spread naming rules; this module re-exports them for existing imports.
 *
 * @module
 */
export { type Address, formatAddress, parseSpreadName } from "../protocol/address.ts"
