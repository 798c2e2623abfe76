/**
 * UDP ingress: each datagram becomes one message in a group, in arrival
 * order, from the daemon-owned private name, for every kind of reader —
 * and a TLS reader that stalls is cut off alone (or catches up in order)
 * while the others get everything.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricLabel, Stream } from "effect"
import { connect, type Connection, isMembership, isRegular, text } from "../../mod.ts"
import { UdpIngressMetrics } from "../../src/daemon/mod.ts"
import { decodeServerMessage, isProtocolError } from "../../src/protocol/mod.ts"
import { RawClient } from "../_helpers/raw_client.ts"
import { startDaemonProcess } from "../_helpers/daemon_process.ts"
import {
  captureLogs,
  type Certs,
  drain,
  eventually,
  LogLevel,
  type LogLine,
  logLine,
  makeCerts,
  quiet,
  sleep,
  stalledMember,
  startRelay,
  tlsAddress,
  udpSender,
} from "./_fixtures.ts"

let certs: Certs
beforeAll(async () => {
  certs = await makeCerts()
})

const T = 20_000

const encoder = new TextEncoder()

/** The data of the next `n` regular messages, with their senders. */
const take = (c: Connection, n: number) =>
  c.messages.pipe(
    Stream.filter(isRegular),
    Stream.take(n),
    Stream.map((m) => ({ sender: m.sender, data: text(m), groups: m.groups })),
    Stream.runCollect,
    Effect.map((chunk) => [...chunk]),
    Effect.timeout(10_000),
  )

describe("UDP ingress", () => {
  it.scopedLive(
    "Datagrams reach plain TCP, Unix, TLS and raw-protocol readers in arrival order, from #udp-<port>#<daemon>",
    () =>
      quiet(Effect.gen(function* () {
        const daemon = yield* startRelay(certs, {
          unixSocket: `/tmp/spreadfx-relay-${crypto.randomUUID().slice(0, 8)}`,
          udpIngress: [{ port: 0, group: "logs" }],
        })
        const ingress = daemon.udpIngress[0]
        expect(ingress.privateGroup).toBe(`#udp-${ingress.port}#localhost`)
        const readers = yield* Effect.all([
          connect({ daemon: daemon.spreadName, name: "tcp" }),
          connect({ daemon: daemon.unixPath ?? "", name: "unix" }),
          connect({
            daemon: tlsAddress(daemon),
            name: "tls",
            tls: { caCerts: [certs.ca.cert], cert: certs.reader1.cert, key: certs.reader1.key },
          }),
        ])
        for (const r of readers) yield* r.join("logs")
        // A client speaking the wire protocol byte by byte, as a C client does.
        const raw = yield* RawClient.connect({ _tag: "Tcp", hostname: "127.0.0.1", port: daemon.port }, {
          name: "raw",
          membership: false,
        })
        yield* raw.join("logs")
        expect(yield* eventually(() => daemon.members("logs").length === 4)).toBe(true)
        const send = yield* udpSender(ingress.port)
        const lines = Array.from({ length: 50 }, (_, i) => logLine(i))
        for (const l of lines) yield* Effect.promise(() => send(encoder.encode(l)))
        const got = yield* Effect.all(readers.map((r) => take(r, lines.length)), { concurrency: "unbounded" })
        for (const g of got) {
          expect(g.map((m) => m.data)).toEqual(lines)
          expect(new Set(g.map((m) => m.sender))).toEqual(new Set([ingress.privateGroup]))
          expect(g[0].groups).toEqual(["logs"])
        }
        const rawGot: Array<string> = []
        while (rawGot.length < lines.length) {
          const m = decodeServerMessage(yield* raw.frame(5000))
          if (!isProtocolError(m) && m._tag === "Regular") {
            expect(m.sender).toBe(ingress.privateGroup)
            expect(m.service).toBe("Fifo")
            rawGot.push(new TextDecoder().decode(m.data))
          }
        }
        expect(rawGot).toEqual(lines)
        expect(ingress.stats()).toMatchObject({ received: 50, delivered: 50, droppedOversize: 0, droppedEmpty: 0 })
      })),
    T,
  )

  it.scopedLive(
    "Oversize and empty datagrams are dropped and counted; the lines around them still arrive in order",
    () =>
      quiet(Effect.gen(function* () {
        const daemon = yield* startRelay(certs, {
          udpIngress: [{ port: 0, group: "audit", maxBytes: 1000, service: "Agreed", messType: 7 }],
        })
        const ingress = daemon.udpIngress[0]
        const reader = yield* connect({ daemon: daemon.spreadName, name: "auditor" })
        yield* reader.join("audit")
        expect(yield* eventually(() => daemon.members("audit").length === 1)).toBe(true)
        const send = yield* udpSender(ingress.port)
        const before = yield* Metric.value(
          Metric.taggedWithLabels(UdpIngressMetrics.dropped, [
            MetricLabel.make("group", "audit"),
            MetricLabel.make("reason", "oversize"),
          ]),
        )
        yield* Effect.promise(() => send(encoder.encode("first")))
        yield* Effect.promise(() => send(new Uint8Array(1001).fill(0x78)))
        yield* Effect.promise(() => send(new Uint8Array(0)))
        yield* Effect.promise(() => send(new Uint8Array(1000).fill(0x79)))
        yield* Effect.promise(() => send(encoder.encode("last")))
        const got = yield* take(reader, 3)
        expect(got.map((m) => m.data)).toEqual(["first", "y".repeat(1000), "last"])
        const received = yield* reader.messages.pipe(Stream.filter(isRegular), Stream.take(0), Stream.runCollect)
        void received
        expect(yield* eventually(() => ingress.stats().received === 5)).toBe(true)
        expect(ingress.stats()).toMatchObject({ received: 5, delivered: 3, droppedOversize: 1, droppedEmpty: 1 })
        const after = yield* Metric.value(
          Metric.taggedWithLabels(UdpIngressMetrics.dropped, [
            MetricLabel.make("group", "audit"),
            MetricLabel.make("reason", "oversize"),
          ]),
        )
        expect(after.count - before.count).toBe(1)
      })),
    T,
  )

  it.scopedLive(
    "Without --allow-ffi the ingress falls back to Deno's UDP socket and says so in a warning",
    () =>
      Effect.gen(function* () {
        // daemon_main runs with --allow-net --allow-read --allow-write --allow-env: no FFI.
        const d = yield* startDaemonProcess({ udpIngress: [{ port: 0, group: "logs" }] })
        expect(
          yield* eventually(() =>
            /UDP ingress .* uses Deno's UDP socket \(--allow-ffi is not granted\)/.test(d.output())
          ),
        ).toBe(true)
        expect(d.output()).toMatch(/level=WARN/)
      }),
    T,
  )

  it.scopedLive.skipIf(Deno.build.os !== "linux")(
    "A burst beyond the socket's buffer: what the kernel drops is counted (from the socket, no /proc read), the rest arrives in order",
    () =>
      quiet(Effect.gen(function* () {
        const N = 600
        // The smallest buffer the kernel grants (a few KiB), so the burst overflows it.
        const daemon = yield* startRelay(certs, { udpIngress: [{ port: 0, group: "logs", recvBufferBytes: 1 }] })
        const ingress = daemon.udpIngress[0]
        expect(ingress.socket).toBe("sized")
        expect(ingress.stats().recvBufferBytes).toBeLessThan(16 * 1024)
        const reader = yield* connect({ daemon: daemon.spreadName, name: "reader" })
        yield* reader.join("logs")
        expect(yield* eventually(() => daemon.members("logs").length === 1)).toBe(true)
        const send = yield* udpSender(ingress.port)
        // 600 KB back to back from this process: the daemon (same thread)
        // reads nothing meanwhile, so the kernel drops what overflows.
        const line = new Uint8Array(1000)
        for (let i = 0; i < N; i++) {
          new DataView(line.buffer).setUint32(0, i)
          yield* Effect.promise(() => send(line))
        }
        const accounted = () => ingress.stats().received + (ingress.stats().droppedByKernel ?? 0)
        expect(yield* eventually(() => accounted() === N)).toBe(true)
        const s = ingress.stats()
        expect(s.droppedByKernel ?? 0).toBeGreaterThan(0)
        const got = yield* reader.messages.pipe(
          Stream.filter(isRegular),
          Stream.take(s.delivered),
          Stream.map((m) => new DataView(m.data.buffer, m.data.byteOffset).getUint32(0)),
          Stream.runCollect,
          Effect.timeout(5000),
        )
        const seq = [...got]
        expect(seq.length).toBe(s.delivered)
        expect(seq.every((v, i) => i === 0 || v > seq[i - 1])).toBe(true)
      })),
    T,
  )

  it.scopedLive(
    "The ingress's private name is taken: a client asking for it is refused, and sends to it are dropped",
    () =>
      quiet(Effect.gen(function* () {
        const daemon = yield* startRelay(certs, { udpIngress: [{ port: 0, group: "logs", name: "syslog" }] })
        expect(daemon.udpIngress[0].privateGroup).toBe("#syslog#localhost")
        const clash = yield* Effect.exit(connect({ daemon: daemon.spreadName, name: "syslog" }))
        expect(clash._tag === "Failure" && clash.cause._tag === "Fail" && clash.cause.error.reason).toBe(
          "RejectNotUnique",
        )
        const c = yield* connect({ daemon: daemon.spreadName, name: "poker" })
        yield* c.multicast({ groups: "#syslog#localhost", data: "hello?" })
        yield* sleep(50)
        expect(daemon.stats().cutOff).toBe(0)
      })),
    T,
  )

  it.scopedLive(
    "500 datagrams of ~300 bytes in a burst reach a TLS reader in order while a second TLS member never reads",
    () =>
      quiet(Effect.gen(function* () {
        const N = 500
        const daemon = yield* startRelay(certs, { udpIngress: [{ port: 0, group: "logs" }] })
        const ingress = daemon.udpIngress[0]
        const tls = { caCerts: [certs.ca.cert], cert: certs.reader1.cert, key: certs.reader1.key }
        const reader = yield* connect({ daemon: tlsAddress(daemon), name: "reader", tls })
        yield* reader.join("logs")
        const stalled = yield* stalledMember(daemon.tlsPort ?? 0, certs.reader2, certs.ca.cert, "stalled", "logs")
        expect(yield* eventually(() => daemon.members("logs").length === 2)).toBe(true)
        const send = yield* udpSender(ingress.port)
        const lines = Array.from({ length: N }, (_, i) => logLine(i))
        const reading = yield* Effect.fork(take(reader, N))
        yield* burst(send, lines.map((l) => encoder.encode(l)), () => ingress.stats().received)
        const got = yield* reading
        expect(got.map((m) => m.data)).toEqual(lines)
        expect(ingress.stats().delivered).toBe(N)
        // The member that never read: within the limits (1000 frames with its
        // socket stuck, 64 MiB), so it was not cut off, and once it reads it
        // gets every line, in order.
        expect(daemon.stats().cutOff).toBe(0)
        const late = yield* drain(stalled, N)
        expect(late.data.map((d) => new TextDecoder().decode(d))).toEqual(lines)
      })),
    T,
  )

  it.scopedLive(
    "A TLS member stuck past the limits is cut off alone; the other TLS reader gets every datagram in order",
    () =>
      Effect.gen(function* () {
        const N = 300
        const lines: Array<LogLine> = []
        const daemon = yield* startRelay(certs, {
          udpIngress: [{ port: 0, group: "logs" }],
          // Big datagrams so the stuck member's socket buffers fill and frames
          // wait in its outbox; cut off at 100 of them with the socket stuck.
          maxSessionMessages: 100,
        }).pipe(Effect.provide(captureLogs(lines)))
        const ingress = daemon.udpIngress[0]
        const tls = { caCerts: [certs.ca.cert], cert: certs.reader1.cert, key: certs.reader1.key }
        const reader = yield* connect({ daemon: tlsAddress(daemon), name: "reader", tls })
        yield* reader.join("logs")
        const stalled = yield* stalledMember(daemon.tlsPort ?? 0, certs.reader2, certs.ca.cert, "stalled", "logs")
        expect(yield* eventually(() => daemon.members("logs").length === 2)).toBe(true)
        const send = yield* udpSender(ingress.port)
        const datagrams = Array.from({ length: N }, (_, i) => {
          const d = new Uint8Array(30_000).fill(i & 0xff)
          new DataView(d.buffer).setUint32(0, i)
          return d
        })
        let last = false
        let gone = false
        const reading = yield* Effect.fork(
          reader.messages.pipe(
            Stream.filter((m) => isRegular(m) || isMembership(m)),
            // Until the last datagram and the stuck member's disconnect
            // (sequenced whenever its outbox overflowed) have both arrived.
            Stream.takeUntil((m) => {
              if (isRegular(m) && new DataView(m.data.buffer, m.data.byteOffset).getUint32(0) === N - 1) last = true
              if (isMembership(m) && m.cause === "Disconnect" && m.changed === "#stalled#localhost") gone = true
              return last && gone
            }),
            Stream.runCollect,
            Effect.timeout(15_000),
          ),
        )
        // The limit is applied when a frame is queued for a socket that has
        // been stuck for 100 ms: the last datagram comes after such a pause.
        yield* burst(send, datagrams.slice(0, N - 1), () => ingress.stats().received, 5)
        yield* sleep(150)
        yield* burst(send, datagrams.slice(N - 1), () => ingress.stats().received - (N - 1))
        const got = [...(yield* reading)]
        const seq = got.filter(isRegular).map((m) => new DataView(m.data.buffer, m.data.byteOffset).getUint32(0))
        expect(seq).toEqual(datagrams.map((_, i) => i))
        // The reader saw the stuck member leave by disconnect, and nobody else was cut off.
        expect(got.some((m) => isMembership(m) && m.cause === "Disconnect" && m.changed === "#stalled#localhost")).toBe(
          true,
        )
        expect(daemon.stats().cutOff).toBe(1)
        expect(daemon.members("logs")).toEqual(["#reader#localhost"])
        expect(lines.some((l) => l.level === LogLevel.Warning && l.message.includes("#stalled#localhost cut off")))
          .toBe(
            true,
          )
        // What the stuck member did get is an unbroken prefix, in order, then the end.
        const late = yield* drain(stalled, N)
        expect(late.eof).toBe(true)
        expect(late.data.length).toBeLessThan(N)
        expect(late.data.map((d) => new DataView(d.buffer, d.byteOffset).getUint32(0))).toEqual(
          late.data.map((_, i) => i),
        )
      }),
    T,
  )
})

/**
 * Sends `datagrams` back to back in bursts of `size`, waiting after each
 * burst until the ingress has taken it in: UDP has no flow control, and a
 * burst larger than the socket's receive buffer (Linux's default 208 KiB,
 * about 160 loopback datagrams) is partly dropped by the kernel before the
 * daemon sees it. 100 lines of 300 bytes fit.
 */
const burst = (
  send: (d: Uint8Array) => Promise<void>,
  datagrams: ReadonlyArray<Uint8Array>,
  received: () => number,
  size = 100,
) =>
  Effect.gen(function* () {
    for (let i = 0; i < datagrams.length; i++) {
      yield* Effect.promise(() => send(datagrams[i]))
      if (i % size === size - 1 || i === datagrams.length - 1) {
        expect(yield* eventually(() => received() > i, 5000)).toBe(true)
      }
    }
  })
