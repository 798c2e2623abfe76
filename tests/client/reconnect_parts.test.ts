/**
 * The parts reconnecting adds to the send path: the new session's joins put
 * ahead of what senders queued during the gap, and a new private name
 * written into those queued frames.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ConnectionError } from "../../src/client/core/errors.ts"
import { groupEntry } from "../../src/protocol/encode.ts"
import { noWindow } from "../../src/client/options.ts"
import { Outbound } from "../../src/client/admission/outbound.ts"
import { Sender } from "../../src/client/admission/send.ts"
import type { Target } from "../../src/client/admission/admission.ts"
import { ViewTracker } from "../../src/client/core/views.ts"
import { FlowControl } from "../../src/client/admission/window.ts"
import { Frame, FrameDecoder, ServiceBits } from "../../src/protocol/mod.ts"

const OLD = "#old#localhost"
const NEW = "#fresh#localhost"

const framesOf = (bytes: Uint8Array): Array<Frame> => {
  const d = new FrameDecoder("toDaemon")
  d.push(bytes)
  const out: Array<Frame> = []
  for (let f = d.next(); f instanceof Frame; f = d.next()) out.push(f)
  return out
}

describe("Outbound and Sender across a reconnect", () => {
  it.effect("Outbound.prepend puts the joins first and renameSender names the new session in every queued frame", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      const closed = new ConnectionError({ reason: "Closed", privateGroup: OLD, detail: "test" })
      const flow = new FlowControl(noWindow)
      let to: Target = { out, flow, privateGroup: OLD, nameField: groupEntry(OLD) }
      const sender = new Sender(() => to, new ViewTracker(), true, Effect.fail(closed))
      // Queued during the gap, under the old name.
      yield* sender.multicast({ groups: "g", data: "one" })
      yield* sender.command("Join", "h")
      yield* sender.multicast({ groups: ["g", "h"], data: "two, a little longer" })
      // The new session takes over the gap buffers under its own name.
      to = { out, flow, privateGroup: NEW, nameField: groupEntry(NEW) }
      out.renameSender(groupEntry(NEW))
      out.prepend(sender.joinFrames(groupEntry(NEW), ["a", "b"]), 2)
      expect(out.frames).toBe(5)
      const bytes = yield* out.take
      const frames = framesOf(bytes ?? new Uint8Array(0))
      expect(frames.map((f) => f.sender)).toEqual([NEW, NEW, NEW, NEW, NEW])
      expect(frames.map((f) => f.groups)).toEqual([["a"], ["b"], ["g"], ["h"], ["g", "h"]])
      expect(frames.map((f) => (f.type & ServiceBits.JOIN_MESS) !== 0)).toEqual([true, true, false, true, false])
      expect(new TextDecoder().decode(frames[4].data)).toBe("two, a little longer")
    }))
})
