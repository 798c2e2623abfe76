import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit } from "effect"
import {
  adaptiveWindow,
  type ConnectOptions,
  fixedWindow,
  noWindow,
  randomPrivateName,
  resolveOptions,
} from "../../src/client/options.ts"
import { ConnectError } from "../../src/client/core/connect_error.ts"

const failure = (o: ConnectOptions) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(resolveOptions(o))
    if (Exit.isSuccess(exit)) return expect.unreachable("options were accepted")
    const e = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    expect(e).toBeInstanceOf(ConnectError)
    return e as ConnectError
  })

describe("resolveOptions", () => {
  it.effect("resolveOptions parses every Spread address form", () =>
    Effect.gen(function* () {
      expect((yield* resolveOptions({})).address).toEqual({ _tag: "Unix", path: "/tmp/4803" })
      expect((yield* resolveOptions({ daemon: "4804" })).address).toEqual({ _tag: "Unix", path: "/tmp/4804" })
      expect((yield* resolveOptions({ daemon: "4804@127.0.0.1" })).address).toEqual({
        _tag: "Tcp",
        hostname: "127.0.0.1",
        port: 4804,
      })
      expect((yield* resolveOptions({ daemon: { host: "h", port: 5 } })).address).toEqual({
        _tag: "Tcp",
        hostname: "h",
        port: 5,
      })
      expect((yield* resolveOptions({ daemon: { host: "h" } })).address).toEqual({
        _tag: "Tcp",
        hostname: "h",
        port: 4803,
      })
      expect((yield* resolveOptions({ daemon: "/run/sp.sock" })).address).toEqual({
        _tag: "Unix",
        path: "/run/sp.sock",
      })
      expect((yield* resolveOptions({ daemon: { path: "/x" } })).address).toEqual({ _tag: "Unix", path: "/x" })
    }))

  it.effect("resolveOptions rejects malformed addresses as IllegalSpread naming the address", () =>
    Effect.gen(function* () {
      for (const daemon of ["abc", "4803@", "99999", "4803x", { host: "", port: 1 }, { host: "h", port: 0 }]) {
        const e = yield* failure({ daemon })
        expect(e.reason).toBe("IllegalSpread")
        expect(e.code).toBe(-1)
      }
      expect((yield* failure({ daemon: "abc" })).message).toContain(`"abc"`)
    }))

  it.effect("resolveOptions applies the documented defaults", () =>
    Effect.gen(function* () {
      const o = yield* resolveOptions({})
      expect(o.membership).toBe(true)
      expect(o.priority).toBe(0)
      expect(o.auth).toEqual(["NULL"])
      expect(o.authChoice.length).toBe(90)
      expect(o.window).toEqual(adaptiveWindow(500))
      expect(Duration.toMillis(o.connectTimeout)).toBe(5000)
      expect(Duration.toMillis(o.closeTimeout)).toBe(1000)
      expect(o.inboundCapacity).toBe(512)
      expect(o.slowHigh).toBe(384)
      expect(o.slowLow).toBe(128)
      expect(o.name).toMatch(/^[0-9a-z]{10}$/)
      expect((yield* resolveOptions({ priority: 7 })).priority).toBe(1)
    }))

  it("randomPrivateName gives distinct legal 10-byte names", () => {
    const names = new Set(Array.from({ length: 2000 }, randomPrivateName))
    expect(names.size).toBe(2000)
    for (const n of names) expect(n).toMatch(/^[0-9a-z]{10}$/)
  })

  it.effect("resolveOptions keeps an explicit empty name (the daemon generates one)", () =>
    Effect.gen(function* () {
      expect((yield* resolveOptions({ name: "" })).name).toBe("")
      expect((yield* resolveOptions({ name: "alice" })).name).toBe("alice")
    }))

  it.effect("resolveOptions refuses illegal private names before dialling", () =>
    Effect.gen(function* () {
      for (const name of ["eleven-char", "bad name", "a#b", "x!"]) {
        const e = yield* failure({ name })
        expect(e.reason).toBe("IllegalName")
        expect(e.message).toContain(name)
      }
    }))

  it.effect("resolveOptions refuses bad timeouts, windows, buffers and auth lists", () =>
    Effect.gen(function* () {
      expect((yield* failure({ connectTimeout: 0 })).reason).toBe("IllegalTime")
      expect((yield* failure({ closeTimeout: Duration.infinity })).reason).toBe("IllegalTime")
      expect((yield* failure({ window: fixedWindow(0) })).reason).toBe("IllegalOption")
      expect((yield* failure({ window: adaptiveWindow(1.5) })).reason).toBe("IllegalOption")
      expect((yield* failure({ inboundCapacity: 2 })).reason).toBe("IllegalOption")
      expect((yield* failure({ slowConsumerRatio: 0 })).reason).toBe("IllegalOption")
      expect((yield* failure({ outboxBytes: 1000 })).reason).toBe("IllegalOption")
      expect((yield* failure({ outboxMessages: 0 })).reason).toBe("IllegalOption")
      expect((yield* failure({ auth: [] })).reason).toBe("IllegalOption")
      expect((yield* failure({ auth: ["A", "B", "C"] })).reason).toBe("IllegalOption")
      expect((yield* resolveOptions({ window: noWindow })).window).toEqual(noWindow)
    }))
})
