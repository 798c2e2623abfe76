/**
 * The connection's one state value: the lifecycle holds the session itself
 * (and the gap buffers while reconnecting); transitions are pure steps.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ConnectionError } from "../../src/client/core/errors.ts"
import { Lifecycle } from "../../src/client/core/state.ts"

const err = (detail: string) => new ConnectionError({ reason: "NetError", privateGroup: "#a#d", detail })

describe("Lifecycle", () => {
  it.effect("Lifecycle.lose ignores a session that is not the open one, and keeps the lost one while reconnecting", () =>
    Effect.gen(function* () {
      const life = new Lifecycle<string, string>("s1")
      const cause = err("lost")
      const gapError = err("lost; reconnecting")
      expect(life.lose("s0", cause, gapError, "gap")).toBe("Ignore")
      expect(life.now).toEqual({ _tag: "Open", session: "s1" })
      expect(life.lose("s1", cause, gapError, "gap")).toBe("Reconnect")
      expect(life.now).toEqual({ _tag: "Reconnecting", session: "s1", gap: "gap", cause, error: gapError })
      expect(life.session).toBe("s1")
      // What users see carries no session.
      expect(yield* life.get).toEqual({ _tag: "Reconnecting", cause, error: gapError })
      expect(life.sticky(err("closing"))).toBe(gapError)
      expect(life.finalError).toBeUndefined()
      expect(life.lose("s1", cause, gapError, "gap")).toBe("Ignore")
      expect(life.resume("s2")).toBe(true)
      expect(life.now).toEqual({ _tag: "Open", session: "s2" })
      expect(life.resume("s3")).toBe(false)
    }))

  it("Lifecycle.lose without a gap error fails for good, and close after that keeps the failure", () => {
    const life = new Lifecycle<string, string>("s1")
    const cause = err("lost")
    expect(life.lose("s1", cause, undefined, undefined)).toBe("Fail")
    expect(life.finalError).toBe(cause)
    const [step, from] = life.close(err("closed"))
    expect(step).toBe("AfterFailure")
    expect(from._tag).toBe("Failed")
    expect(life.now).toEqual({ _tag: "Closed", session: "s1", error: cause })
    expect(life.close(err("again"))[0]).toBe("Already")
  })

  it("Lifecycle.close during a reconnect answers the state it left, gap buffers included", () => {
    const life = new Lifecycle<string, string>("s1")
    life.lose("s1", err("lost"), err("gap"), "gap buffers")
    const closed = err("closed")
    const [step, from] = life.close(closed)
    expect(step).toBe("DuringReconnect")
    expect(from._tag === "Reconnecting" ? from.gap : undefined).toBe("gap buffers")
    expect(life.finalError).toBe(closed)
    expect(life.resume("late")).toBe(false) // a session opened meanwhile is not installed
    expect(life.fail(err("gave up"))).toBe(false)
  })
})
