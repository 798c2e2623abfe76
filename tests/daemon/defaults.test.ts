/**
 * The library's defaults agree with Spread's naming: a daemon made with its
 * defaults listens on `/tmp/<port>`, which is where `connect({ daemon:
 * "<port>" })` dials.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { connect, isRegular, text } from "../../src/client/mod.ts"
import * as Daemon from "../../src/daemon/mod.ts"

const exists = (path: string): boolean => {
  try {
    return Deno.lstatSync(path).isSocket === true
  } catch {
    return false
  }
}

describe("defaults", () => {
  it.scopedLive("Daemon.make's defaults open /tmp/<port>, so connect's bare port reaches it", () =>
    Effect.gen(function* () {
      const path = yield* Effect.scoped(Effect.gen(function* () {
        const d = yield* Daemon.make({ port: 0 })
        expect(d.unixPath).toBe(`/tmp/${d.port}`)
        expect(exists(`/tmp/${d.port}`)).toBe(true)
        const c = yield* connect({ daemon: String(d.port), name: "bare" })
        expect(c.privateGroup).toBe("#bare#localhost")
        yield* c.join("defaults")
        yield* c.multicast({ groups: "defaults", data: "over the unix socket" })
        const m = yield* c.messages.pipe(Stream.filter(isRegular), Stream.runHead)
        expect(m._tag === "Some" && text(m.value)).toBe("over the unix socket")
        return `/tmp/${d.port}`
      }))
      // Closing the daemon's scope removes the socket file.
      expect(exists(path)).toBe(false)
    }))

  it.scopedLive("Daemon.layer has the same defaults as Daemon.make", () =>
    Effect.gen(function* () {
      const group = yield* Effect.gen(function* () {
        const d = yield* Daemon.SpreadDaemon
        expect(d.unixPath).toBe(`/tmp/${d.port}`)
        const c = yield* connect({ daemon: String(d.port) })
        return c.privateGroup
      }).pipe(Effect.provide(Daemon.layer({ port: 0 })))
      expect(group).toMatch(/#localhost$/)
    }))

  it.scopedLive("Daemon.make with unixSocket: false listens on TCP only", () =>
    Effect.gen(function* () {
      const d = yield* Daemon.make({ port: 0, unixSocket: false })
      expect(d.unixPath).toBeUndefined()
      expect(exists(`/tmp/${d.port}`)).toBe(false)
      const r = yield* Effect.either(connect({ daemon: String(d.port) }))
      expect(r._tag).toBe("Left")
      const tcp = yield* connect({ daemon: `${d.port}@127.0.0.1` })
      expect(tcp.privateGroup).toMatch(/#localhost$/)
    }))
})
