/**
 * One total order: several senders and receivers over overlapping groups
 * must all see the messages they share in the same order, and each
 * sender's messages in the order it sent them (protocol reference 8.3).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { decodeServerMessage, encodeMulticast, type ServiceLevel } from "../../src/protocol/mod.ts"
import { concat, RawClient } from "../_helpers/raw_client.ts"
import { joinNow, quiet, startDaemon, tcp } from "./_fixtures.ts"

const SENDERS = 4
const RECEIVERS = 4
const PER_SENDER = 500
const GROUPS = ["g0", "g1", "g2", "g3"]
const LEVELS: ReadonlyArray<ServiceLevel> = ["Agreed", "Fifo", "Safe", "Causal", "Reliable", "Unreliable"]

/** Where message k of sender s goes: one group, or two, or a group plus a private group. */
const destinations = (s: number, k: number): Array<string> => {
  const a = GROUPS[(s + k) % 4]
  switch (k % 3) {
    case 0:
      return [a]
    case 1:
      return [a, GROUPS[(s + k + 1) % 4]]
    default:
      return [a, `#r${k % RECEIVERS}#localhost`]
  }
}

/** Receiver r is in groups r and r+1; sender s is in group s (so it gets its own messages there). */
const receiverGroups = (r: number): Array<string> => [GROUPS[r], GROUPS[(r + 1) % 4]]

interface Seen {
  readonly who: string
  /** Message ids ("s:k") in arrival order. */
  readonly ids: ReadonlyArray<string>
}

/** Reads frames until `expected` data messages have arrived (membership messages are skipped). */
const collect = (c: RawClient, expected: number) =>
  Effect.gen(function* () {
    const ids: Array<string> = []
    while (ids.length < expected) {
      const f = yield* c.frame(5000)
      const m = decodeServerMessage(f)
      if (m._tag === "Regular") ids.push(new TextDecoder().decode(m.data))
    }
    expect((yield* c.next(100))._tag).toBe("Timeout")
    return { who: c.privateGroup, ids } satisfies Seen
  })

describe("Daemon order", () => {
  it.scopedLive(
    "Daemon delivers messages of 4 concurrent senders in one total order to 4 receivers over overlapping groups",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const receivers: Array<RawClient> = []
        for (let r = 0; r < RECEIVERS; r++) {
          const c = yield* RawClient.connect(tcp(d), { name: `r${r}` })
          for (const g of receiverGroups(r)) yield* joinNow(c, g)
          receivers.push(c)
        }
        const senders: Array<RawClient> = []
        for (let s = 0; s < SENDERS; s++) {
          const c = yield* RawClient.connect(tcp(d), { name: `s${s}` })
          yield* joinNow(c, GROUPS[s])
          senders.push(c)
        }
        // Who gets what: the message ids each client must receive.
        const want = new Map<string, Array<string>>()
        const members = (g: string): Array<string> => {
          if (g.startsWith("#")) return [g]
          const i = GROUPS.indexOf(g)
          const out = [`#s${i}#localhost`]
          for (let r = 0; r < RECEIVERS; r++) if (receiverGroups(r).includes(g)) out.push(`#r${r}#localhost`)
          return out
        }
        for (let s = 0; s < SENDERS; s++) {
          for (let k = 0; k < PER_SENDER; k++) {
            for (const who of new Set(destinations(s, k).flatMap(members))) {
              const l = want.get(who) ?? []
              l.push(`${s}:${k}`)
              want.set(who, l)
            }
          }
        }
        const everyone = [...receivers, ...senders]
        const readers = yield* Effect.forEach(
          everyone,
          (c) => Effect.fork(collect(c, want.get(c.privateGroup)?.length ?? 0)),
        )
        // The senders take turns: each round, every sender writes a batch of 25
        // (one write each), then a short pause lets the daemon read them, so
        // its input really interleaves the senders whatever the OS schedules.
        for (let k0 = 0; k0 < PER_SENDER; k0 += 25) {
          yield* Effect.forEach(senders, (c, s) => {
            const batch: Array<Uint8Array> = []
            for (let k = k0; k < k0 + 25; k++) {
              batch.push(encodeMulticast({
                privateGroup: c.privateGroup,
                service: LEVELS[k % LEVELS.length],
                groups: destinations(s, k),
                data: new TextEncoder().encode(`${s}:${k}`),
              }))
            }
            return c.write(concat(batch))
          }, { concurrency: "unbounded", discard: true })
          yield* Effect.sleep(2)
        }
        const seen = yield* Effect.forEach(readers, Fiber.join)

        // Every client got exactly what was addressed to it, each once.
        for (const v of seen) {
          expect([...v.ids].sort(), v.who).toEqual([...(want.get(v.who) ?? [])].sort())
        }
        // Each sender's messages arrive everywhere in the order it sent them.
        for (const v of seen) {
          const last = new Array<number>(SENDERS).fill(-1)
          for (const id of v.ids) {
            const [s, k] = id.split(":").map(Number)
            expect(k, `${v.who}: ${id} after ${s}:${last[s]}`).toBeGreaterThan(last[s])
            last[s] = k
          }
        }
        // Any two clients agree on the order of the messages they share.
        let pairs = 0
        let shared = 0
        for (const a of seen) {
          const pos = new Map(a.ids.map((id, i) => [id, i]))
          for (const b of seen) {
            if (a === b) continue
            let prev = -1
            for (const id of b.ids) {
              const p = pos.get(id)
              if (p === undefined) continue
              expect(p, `${a.who} and ${b.who} disagree at ${id}`).toBeGreaterThan(prev)
              prev = p
              shared++
            }
            pairs++
          }
        }
        expect(pairs).toBe(56)
        expect(shared).toBeGreaterThan(10_000)
        // The senders really interleaved.
        const switches = seen[0].ids.filter((id, i, a) => i > 0 && id[0] !== a[i - 1][0]).length
        expect(switches).toBeGreaterThan(3)
      }).pipe(quiet),
    15_000,
  )
})
