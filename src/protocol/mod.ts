/**
 * The pure Spread 4/5 client–daemon protocol codec: constants, names, the
 * handshake, frames in either byte order, typed messages and an incremental,
 * bounds-checked decoder. No IO, no clock, no Effect runtime.
 *
 * @example
 * ```ts
 * import { encodeMulticast, FrameDecoder, decodeServerMessage } from "@spreadfx/spreadfx/protocol"
 *
 * const bytes = encodeMulticast({
 *   privateGroup: "#alice#localhost",
 *   service: "Agreed",
 *   groups: ["svc"],
 *   messType: 5,
 *   data: new TextEncoder().encode("agreed"),
 * })
 * const decoder = new FrameDecoder("toClient")
 * decoder.push(bytes)
 * const frame = decoder.next()
 * ```
 *
 * @module
 */
export * from "./address.ts"
export * from "./bytes.ts"
export * from "./constants.ts"
export * from "./decoder.ts"
export * from "./encode.ts"
export * from "./errors.ts"
export * from "./frame.ts"
export * from "./handshake.ts"
export * from "./client_frames.ts"
export * from "./client_requests.ts"
export * from "./daemon_encoders.ts"
export * from "./names.ts"
export * from "./printable.ts"
export * from "./server_messages.ts"
