import { describe, expect, it } from "@effect/vitest"
import {
  crc32,
  decodeEnvelope,
  decodeHeaders,
  encodeEnvelope,
  encodeHeaders,
  parseEnvelope,
  writeEnvelope,
} from "../../src/client/features/envelope.ts"

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
const ascii = (s: string) => hex(new TextEncoder().encode(s))
const TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

describe("envelope header fields (channels, trace context)", () => {
  it("a channel message is laid out byte for byte as docs/envelope.md says", () => {
    const bytes = encodeEnvelope({
      kind: "Message",
      idHigh: 0,
      idLow: 0,
      replyTo: "",
      headers: { channel: "chat", traceparent: TP },
      body: new TextEncoder().encode("{}"),
    })
    if (bytes === undefined) throw new Error("cannot encode")
    // H = 24 + (2 + 4) + (2 + 55) = 87
    expect(hex(bytes.subarray(0, 20))).toBe(
      "ff534658" + "01" + "04" + "0057" + "0000000000000000" + "00" + "00" + "0000",
    )
    expect(hex(bytes.subarray(20, 26))).toBe("0104" + ascii("chat"))
    expect(hex(bytes.subarray(26, 83))).toBe("0237" + ascii(TP))
    expect(hex(bytes.subarray(83, 87))).toBe(crc32(bytes, 0, 83).toString(16).padStart(8, "0"))
    expect(new TextDecoder().decode(bytes.subarray(87))).toBe("{}")
    expect(decodeEnvelope(bytes)).toEqual({
      kind: "Message",
      correlationId: "0000000000000000",
      replyTo: "",
      body: bytes.subarray(87),
      headers: { channel: "chat", traceparent: TP },
    })
  })

  it("a typed error reply sets the error-form field; tracestate and reply-to sit where the table puts them", () => {
    const bytes = encodeEnvelope({
      kind: "ErrorReply",
      idHigh: 1,
      idLow: 2,
      replyTo: "#a#b",
      headers: { channel: "c", tracestate: "k=v", errorForm: "json" },
      body: new Uint8Array(),
    })
    if (bytes === undefined) throw new Error("cannot encode")
    // H = 24 + 4 + (2 + 1) + (2 + 3) + (2 + 1) = 39
    expect(bytes[7]).toBe(39)
    expect(hex(bytes.subarray(20, 35))).toBe(ascii("#a#b") + "0101" + ascii("c") + "0303" + ascii("k=v") + "040101")
    expect(decodeHeaders(bytes)).toEqual({ channel: "c", tracestate: "k=v", errorForm: "json" })
  })

  it("an envelope without header fields is unchanged (the plain request/respond form)", () => {
    const plain = encodeEnvelope({ kind: "Request", idHigh: 1, idLow: 2, replyTo: "#a#b", body: new Uint8Array(1) })
    expect(plain?.length).toBe(29)
    expect(plain && decodeEnvelope(plain)?.headers).toBeUndefined()
    expect(plain && decodeHeaders(plain)).toEqual({})
  })

  it("readers skip field types they do not know; fields that overrun the header are ignored, the envelope stays valid", () => {
    const unknown = Uint8Array.of(0x09, 0x02, 0xaa, 0xbb, 0x01, 0x01, 0x78)
    const a = writeEnvelope("Message", 0, 0, new Uint8Array(), unknown, new Uint8Array())
    expect(decodeHeaders(a)).toEqual({ channel: "x" })
    const overrun = Uint8Array.of(0x01, 0x09, 0x78)
    const b = writeEnvelope("Message", 0, 0, new Uint8Array(), overrun, new Uint8Array())
    expect(parseEnvelope(b)?.kind).toBe("Message")
    expect(decodeHeaders(b)).toEqual({})
  })

  it("fields that cannot be written are refused: empty or over 255 bytes, non-ASCII trace context", () => {
    expect(encodeHeaders({ channel: "" })).toBeUndefined()
    expect(encodeHeaders({ channel: "é".repeat(128) })).toBeUndefined()
    expect(encodeHeaders({ channel: "é".repeat(127) })?.length).toBe(256)
    expect(encodeHeaders({ traceparent: "00-é" })).toBeUndefined()
    expect(encodeHeaders({ tracestate: "x".repeat(256) })).toBeUndefined()
    expect(
      encodeEnvelope({
        kind: "Message",
        idHigh: 0,
        idLow: 0,
        replyTo: "",
        headers: { channel: "" },
        body: new Uint8Array(),
      }),
    )
      .toBeUndefined()
  })
})
