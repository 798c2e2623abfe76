/**
 * spmonitor status requests: the daemon answers Spread's monitor on UDP at
 * its port with a packet_header and the status struct, as Spread 5.0.1's
 * `Stat_handle_message` does. The last test runs Spread's own `spmonitor`
 * when SPREAD_MONITOR names it (e.g. `SPREAD_MONITOR=/opt/spread/bin/spmonitor`);
 * skipped, visibly, otherwise.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spreadProcId, statusAnswer } from "../../src/daemon/monitor_status.ts"
import { RawClient } from "../_helpers/raw_client.ts"
import { joinNow, quiet, startDaemon, tcp } from "./_fixtures.ts"

const T = 10_000
const STATUS_TYPE = 0x01000000

/** A status request as spmonitor sends it: a bare packet_header, return port in `seq`. */
const request = (returnPort: number, little = true): Uint8Array => {
  const b = new Uint8Array(40)
  const v = new DataView(b.buffer)
  v.setUint32(0, little ? (STATUS_TYPE | 0x80000080) >>> 0 : STATUS_TYPE, little)
  v.setInt32(20, returnPort, little)
  return b
}

/** The fields of an answer the monitor prints. */
const fields = (a: Uint8Array) => {
  const v = new DataView(a.buffer, a.byteOffset, a.byteLength)
  return {
    type: v.getUint32(0, true),
    procId: v.getInt32(8, true),
    dataLen: v.getUint16(32, true),
    state: v.getInt32(44, true),
    gstate: v.getInt32(48, true),
    myId: v.getInt32(40 + 60, true),
    leaderId: v.getInt32(40 + 64, true),
    delivered: v.getInt32(40 + 68, true),
    procs: v.getInt16(40 + 74, true),
    segments: v.getInt16(40 + 76, true),
    sessions: v.getInt16(40 + 86, true),
    groups: v.getInt16(40 + 88, true),
    version: [v.getInt16(40 + 90, true), v.getInt16(40 + 92, true), v.getInt16(40 + 94, true)],
  }
}

describe("Daemon spmonitor status", () => {
  it("spreadProcId is Spread 5's id for a proc named in spread.conf (one-at-a-time hash of the name and its NUL)", () => {
    // Values of Spread 5.0.1's stdhcode_oaat over the name and its NUL, compiled from its source.
    expect(spreadProcId("a") >>> 0).toBe(2489203003)
    expect(spreadProcId("localhost") >>> 0).toBe(482711334)
  })

  it("statusAnswer answers a status request from either byte order, and nothing else", () => {
    const f = { sessions: 3, groups: 2, messages: 41 }
    for (const little of [true, false]) {
      const a = statusAnswer(request(40000, little), 7, 1000, 12, f)
      expect(a?.returnPort).toBe(40000)
      expect(a?.answer.length).toBe(136)
      if (a === undefined) return
      expect(fields(a.answer)).toEqual({
        type: (STATUS_TYPE | 0x80000080) >>> 0,
        procId: 7,
        dataLen: 96,
        state: 1,
        gstate: 1,
        myId: 7,
        leaderId: 7,
        delivered: 41,
        procs: 1,
        segments: 1,
        sessions: 3,
        groups: 2,
        version: [5, 0, 1],
      })
    }
    const notStatus = request(40000)
    new DataView(notStatus.buffer).setUint32(0, 0x80000080 | 0x02000000, true)
    expect(statusAnswer(notStatus, 7, 0, 0, f)).toBeUndefined()
    expect(statusAnswer(new Uint8Array(20), 7, 0, 0, f)).toBeUndefined()
  })

  it.scopedLive(
    "Daemon answers a status request on UDP at its port with its sessions and groups",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const c = yield* RawClient.connect(tcp(d), { name: "one" })
        yield* joinNow(c, "g")
        const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 })
        yield* Effect.addFinalizer(() => Effect.sync(() => socket.close()))
        const mine = (socket.addr as Deno.NetAddr).port
        yield* Effect.promise(() =>
          socket.send(request(mine), { transport: "udp", hostname: "127.0.0.1", port: d.port })
        )
        const [answer] = yield* Effect.promise(() => socket.receive()).pipe(Effect.timeout(3000))
        const f = fields(answer)
        expect([f.myId, f.sessions, f.groups, f.procs, f.state]).toEqual([spreadProcId("localhost"), 1, 1, 1, 1])
      }).pipe(quiet),
    T,
  )

  const monitor = Deno.env.get("SPREAD_MONITOR")
  it.scopedLive.skipIf(monitor === undefined || monitor === "")(
    "Spread's spmonitor shows the daemon's status (SPREAD_MONITOR names spmonitor)",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const dir = yield* Effect.promise(() => Deno.makeTempDir({ prefix: "spreadfx-spmonitor-" }))
        const conf = `${dir}/spread.conf`
        yield* Effect.promise(() =>
          Deno.writeTextFile(conf, `Spread_Segment 127.0.0.255:${d.port} {\n  localhost 127.0.0.1\n}\n`)
        )
        const child = new Deno.Command(monitor ?? "", {
          args: ["-c", conf],
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn()
        const w = child.stdin.getWriter()
        yield* Effect.promise(() => w.write(new TextEncoder().encode("0\nall\n\n")))
        yield* Effect.sleep(2500)
        yield* Effect.promise(() => w.write(new TextEncoder().encode("9\n")))
        yield* Effect.promise(() => w.close())
        const out = yield* Effect.promise(() => child.output())
        const text = new TextDecoder().decode(out.stdout)
        expect(text).toMatch(/Status at localhost V 5\.00\. 1 \(state 1, gstate 1\)/)
        expect(text).toMatch(/Membership {2}: {2}1 {2}procs in 1 segments, leader is localhost/)
        yield* Effect.promise(() => Deno.remove(dir, { recursive: true }))
      }).pipe(quiet),
    T,
  )
})
