import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { compacted, Outbox } from "../../src/transport/outbox.ts"

const frame = (n: number, fill: number) => new Uint8Array(n).fill(fill)

describe("Outbox", () => {
  it.effect("Outbox.take coalesces queued frames into one buffer, in order, up to the batch size", () =>
    Effect.gen(function* () {
      const box = new Outbox({ maxMessages: 100, maxBytes: 1_000_000, batchBytes: 10 })
      for (const f of [frame(4, 1), frame(4, 2), frame(4, 3)]) expect(box.offer(f)).toBe("Queued")
      expect(box.messages).toBe(3)
      expect(Array.from((yield* box.take) ?? [])).toEqual([1, 1, 1, 1, 2, 2, 2, 2])
      expect(Array.from((yield* box.take) ?? [])).toEqual([3, 3, 3, 3])
      expect([box.messages, box.bytes]).toEqual([0, 0])
    }))

  it("Outbox.offer answers Overflow past either limit and queues nothing", () => {
    const byCount = new Outbox({ maxMessages: 2, maxBytes: 1000 })
    expect([byCount.offer(frame(1, 0)), byCount.offer(frame(1, 0)), byCount.offer(frame(1, 0))])
      .toEqual(["Queued", "Queued", "Overflow"])
    expect(byCount.messages).toBe(2)
    const byBytes = new Outbox({ maxMessages: 100, maxBytes: 10 })
    expect([byBytes.offer(frame(6, 0)), byBytes.offer(frame(6, 0))]).toEqual(["Queued", "Overflow"])
    expect(byBytes.bytes).toBe(6)
  })

  it.effect("Outbox.take waits for a frame, and answers undefined once closed and drained", () =>
    Effect.gen(function* () {
      const box = new Outbox({ maxMessages: 10, maxBytes: 100 })
      const waiting = yield* Effect.fork(box.take)
      yield* Effect.yieldNow()
      box.offer(frame(3, 7))
      expect(Array.from((yield* Fiber.join(waiting)) ?? [])).toEqual([7, 7, 7])
      box.offer(frame(1, 1))
      box.close()
      expect(box.offer(frame(1, 2))).toBe("Closed")
      expect(Array.from((yield* box.take) ?? [])).toEqual([1])
      expect(yield* box.take).toBeUndefined()
    }))

  it("compacted copies a small view of a large buffer and keeps anything else as it is", () => {
    const chunk = new Uint8Array(64 * 1024).fill(5)
    const small = chunk.subarray(100, 200)
    const c = compacted(small)
    expect(c).not.toBe(small)
    expect(c.buffer.byteLength).toBe(100)
    expect(Array.from(c)).toEqual(Array.from(small))
    const large = chunk.subarray(0, 40 * 1024)
    expect(compacted(large)).toBe(large)
    const whole = new Uint8Array(10)
    expect(compacted(whole)).toBe(whole)
  })

  it.effect("Outbox.compact replaces queued small views with their own bytes", () =>
    Effect.gen(function* () {
      const chunk = new Uint8Array(64 * 1024)
      chunk.set([1, 2, 3], 10)
      const box = new Outbox({ maxMessages: 10, maxBytes: 1000, batchBytes: 1 })
      box.offer(chunk.subarray(10, 13))
      box.compact()
      const out = (yield* box.take) ?? new Uint8Array(0)
      expect(Array.from(out)).toEqual([1, 2, 3])
      expect(out.buffer.byteLength).toBe(3)
    }))

  it("Outbox reuses its coalescing buffer, gives it back once drained, and never after a clear", () => {
    const limits = { maxMessages: 100, maxBytes: 1_000_000 }
    const a = new Outbox(limits)
    a.offer(frame(4, 1))
    a.offer(frame(4, 2))
    const first = a.takeNow() ?? new Uint8Array(0)
    expect(Array.from(first)).toEqual([1, 1, 1, 1, 2, 2, 2, 2])
    // The previous batch was written: the next one goes into the same buffer.
    a.offer(frame(2, 3))
    a.offer(frame(2, 4))
    const second = a.takeNow() ?? new Uint8Array(0)
    expect(Array.from(second)).toEqual([3, 3, 4, 4])
    expect(second.buffer).toBe(first.buffer)
    // Drained: the buffer goes back to the shared pool, where the next outbox finds it.
    expect(a.takeNow()).toBeUndefined()
    const b = new Outbox(limits)
    b.offer(frame(1, 5))
    b.offer(frame(1, 6))
    const fromPool = b.takeNow() ?? new Uint8Array(0)
    expect(fromPool.buffer).toBe(first.buffer)
    expect(Array.from(fromPool)).toEqual([5, 6])
    // Cleared while a write of its batch may be under way: that buffer is
    // never handed to another outbox.
    b.clear()
    expect(b.takeNow()).toBeUndefined()
    const c = new Outbox(limits)
    c.offer(frame(1, 7))
    c.offer(frame(1, 8))
    expect((c.takeNow() ?? new Uint8Array(0)).buffer).not.toBe(fromPool.buffer)
    expect(Array.from(fromPool)).toEqual([5, 6])
  })
})
