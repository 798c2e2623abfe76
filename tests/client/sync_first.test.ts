import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, TestClock } from "effect"
import { fixedWindow, noWindow } from "../../src/client/options.ts"
import { Outbound } from "../../src/client/admission/outbound.ts"
import { Sender } from "../../src/client/admission/send.ts"
import { syncFirst } from "../../src/client/admission/sync_first.ts"
import { ViewTracker } from "../../src/client/core/views.ts"
import { FlowControl } from "../../src/client/admission/window.ts"
import type { Target } from "../../src/client/admission/admission.ts"
import { groupEntry } from "../../src/protocol/encode.ts"
import { ConnectionError, RequestError } from "../../src/client/core/errors.ts"

const PG = "#alice#localhost"
const targetFor = (privateGroup: string, out: Outbound, flow: FlowControl): Target => ({
  out,
  flow,
  privateGroup,
  nameField: groupEntry(privateGroup),
})
const closedError = new ConnectionError({ reason: "Closed", privateGroup: PG, detail: "test" })
const senderFor = (pg: string, out: Outbound, flow: FlowControl, membership: boolean): Sender => {
  const to = targetFor(pg, out, flow)
  return new Sender(() => to, new ViewTracker(), membership, Effect.fail(closedError))
}

describe("syncFirst", () => {
  it.effect("is lazy: made, it does nothing; each run and each yield* tries again", () =>
    Effect.gen(function* () {
      let calls = 0
      const e = syncFirst(() => {
        calls++
        return undefined
      })
      expect(calls).toBe(0)
      yield* e
      yield* e
      expect(calls).toBe(2)
      yield* Effect.repeatN(e, 2)
      expect(calls).toBe(5)
      yield* Effect.fork(e).pipe(Effect.flatMap(Fiber.join))
      expect(calls).toBe(6)
      // Effect.gen's older adapter form runs it as an Effect.
      yield* Effect.gen(function* (_) {
        yield* _(e)
      })
      expect(calls).toBe(7)
    }))

  it.effect("hands the rest to the runtime, yielded or run: its waits, failures and value", () =>
    Effect.gen(function* () {
      const failing = syncFirst(() => Effect.fail("no"))
      expect(yield* Effect.exit(failing)).toEqual(Exit.fail("no"))
      expect(
        yield* Effect.exit(Effect.gen(function* () {
          yield* failing
          return "not reached"
        })),
      ).toEqual(Exit.fail("no"))

      let done = 0
      const slow = syncFirst(() => Effect.sleep(Duration.seconds(1)).pipe(Effect.tap(() => done++)))
      const yielded = yield* Effect.fork(Effect.gen(function* () {
        yield* slow
        yield* slow
        return done
      }))
      const run = yield* Effect.fork(slow)
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.join(run)
      expect(done).toBe(2)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(yielded)).toBe(3)
    }))

  it("a generator waiting in a rest ends or throws as with any yielded Effect", () => {
    const waiting = () => {
      const g = (function* () {
        yield* syncFirst(() => Effect.never)
        return "not reached"
      })()
      expect(g.next().done).toBe(false)
      return g
    }
    expect(waiting().return("closed")).toEqual({ done: true, value: "closed" })
    expect(() => waiting().throw(new Error("thrown in"))).toThrow("thrown in")
  })

  it.effect("a yielded rest is interruptible", () =>
    Effect.gen(function* () {
      const f = yield* Effect.fork(Effect.gen(function* () {
        yield* syncFirst(() => Effect.never)
      }))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(f)
      expect(Exit.isInterrupted(yield* Fiber.await(f))).toBe(true)
    }))
})

describe("Sender.multicast as syncFirst", () => {
  const message = { groups: "g", data: new Uint8Array(10), service: "Fifo" as const }

  it.effect("a multicast made and not run queues nothing; one run twice queues twice", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      const s = senderFor(PG, out, new FlowControl(noWindow), true)
      const send = s.multicast(message)
      expect(out.frames).toBe(0)
      yield* send
      yield* send
      expect(out.frames).toBe(2)
      yield* Effect.either(send)
      expect(out.frames).toBe(3)
    }))

  it.effect("yielded, a send past the window waits, and sends once permits come back; invalid ones fail", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      const flow = new FlowControl(fixedWindow(2))
      const s = senderFor(PG, out, flow, false)
      yield* s.command("Join", "g")
      const sender = yield* Effect.fork(Effect.gen(function* () {
        for (let i = 0; i < 3; i++) yield* s.multicast(message)
      }))
      yield* Effect.yieldNow()
      expect([flow.inFlight, sender.unsafePoll()]).toEqual([2, null])
      flow.returned()
      yield* flow.giveBack(1)
      yield* Fiber.join(sender)
      expect(flow.inFlight).toBe(2)
      const bad = yield* Effect.flip(Effect.gen(function* () {
        yield* s.multicast({ ...message, groups: "" })
      }))
      expect(bad).toBeInstanceOf(RequestError)
    }))

  it.effect("yielded, a send waiting for the window is interruptible and queues nothing", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      const flow = new FlowControl(fixedWindow(1))
      const s = senderFor(PG, out, flow, false)
      yield* s.command("Join", "g")
      yield* s.multicast(message)
      const framesBefore = out.frames
      const waiting = yield* Effect.fork(Effect.gen(function* () {
        yield* s.multicast(message)
      }))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiting)
      expect(Exit.isInterrupted(yield* Fiber.await(waiting))).toBe(true)
      expect(out.frames).toBe(framesBefore)
    }))
})
