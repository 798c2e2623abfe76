/**
 * Throughput of the fan-out relay: syslog-style lines of 300 bytes arrive
 * as UDP datagrams, the daemon's UDP ingress multicasts each into "logs",
 * and 1 or 10 TLS readers (this library's client, client certificates
 * checked) receive every line. Reports datagrams relayed per second: lines
 * sent, divided by the time from the first send until every reader has
 * every line (so with 10 readers the daemon writes 10 times as many
 * frames).
 *
 * UDP has no flow control and the kernel drops what overflows the
 * daemon's socket buffer (208 KiB by default, about 160 such datagrams on
 * loopback), so the sender keeps at most WINDOW lines ahead of the slowest
 * reader; lines the kernel dropped anyway are reported as lost (the run
 * then ends after 2 s without progress).
 *
 * ```sh
 * deno run -A bench/relay.ts                  # daemon in its own process, then in this one
 * deno run -A bench/relay.ts --own-process    # only the daemon in its own process
 * deno run -A bench/relay.ts --quick          # a tenth of the lines
 * ```
 *
 * @module
 */
import { Effect, Exit, Fiber, Logger, LogLevel, Scope, Stream } from "effect"
import { connect, isRegular } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"
import { makeAuthority } from "../tests/_helpers/certs.ts"
import { grouped } from "./_daemons.ts"

const quick = Deno.args.includes("--quick")
const SIZE = 300
const WINDOW = 100
const CASES = [
  { readers: 1, lines: 50_000 },
  { readers: 10, lines: 20_000 },
].map((c) => (quick ? { ...c, lines: c.lines / 10 } : c))

// Throwaway certificates (WebCrypto), written where the daemon process can read them.
const ca = await makeAuthority("relay bench CA")
const server = await ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] })
const clients = await Promise.all(Array.from({ length: 10 }, (_, i) => ca.issue(`reader-${i}`)))
const dir = await Deno.makeTempDir({ prefix: "spreadfx-relay-bench-" })
await Deno.writeTextFile(`${dir}/ca.pem`, ca.cert)
await Deno.writeTextFile(`${dir}/server.pem`, server.cert)
await Deno.writeTextFile(`${dir}/server.key`, server.key)

interface Relay {
  readonly label: string
  readonly tlsPort: number
  readonly udpPort: number
  readonly stop: () => Promise<void>
}

const ownProcess = async (): Promise<Relay> => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_relay_daemon.ts", import.meta.url).pathname, dir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn()
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
  let text = ""
  let m: RegExpExecArray | null = null
  while (m === null) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`the relay daemon exited: ${text}`)
    text += value
    m = /relay tls (\d+) udp (\d+)/.exec(text)
  }
  return {
    label: "daemon in its own process",
    tlsPort: Number(m[1]),
    udpPort: Number(m[2]),
    stop: async () => {
      child.kill("SIGTERM")
      reader.releaseLock()
      await child.stdout.cancel().catch(() => undefined)
      await child.status
    },
  }
}

const inProcess = async (): Promise<Relay> => {
  const scope = Effect.runSync(Scope.make())
  const daemon = await Effect.runPromise(
    Daemon.make({
      port: 0,
      unixSocket: false,
      tls: { port: 0, cert: server.cert, key: server.key, ca: ca.cert },
      udpIngress: [{ port: 0, group: "logs" }],
    }).pipe(Scope.extend(scope), Logger.withMinimumLogLevel(LogLevel.Error)),
  )
  return {
    label: "daemon in this process",
    tlsPort: daemon.tlsPort ?? 0,
    udpPort: daemon.udpIngress[0].port,
    stop: () => Effect.runPromise(Scope.close(scope, Exit.void)),
  }
}

const run = (relay: Relay, readers: number, lines: number) =>
  Effect.scoped(Effect.gen(function* () {
    const conns = yield* Effect.all(
      clients.slice(0, readers).map((c) =>
        connect({
          daemon: `${relay.tlsPort}@127.0.0.1`,
          membership: false,
          tls: { caCerts: [ca.cert], cert: c.cert, key: c.key },
        })
      ),
    )
    for (const c of conns) yield* c.join("logs")
    yield* Effect.sleep(100)
    const counts = conns.map(() => 0)
    // Wakes the sender once every reader has reached `resumeAt` (half the
    // window free again): sends go out in runs, not one per delivery.
    let wake: (() => void) | undefined
    let resumeAt = 0
    const fibers = yield* Effect.forEach(conns, (c, i) =>
      Effect.fork(
        c.messages.pipe(
          Stream.filter(isRegular),
          Stream.runForEach(() =>
            Effect.sync(() => {
              if (++counts[i] >= resumeAt && wake !== undefined && slowest() >= resumeAt) {
                const w = wake
                wake = undefined
                w()
              }
            })
          ),
        ),
      ))
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 })
    yield* Effect.addFinalizer(() => Effect.sync(() => socket.close()))
    const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: relay.udpPort }
    const line = new Uint8Array(SIZE).fill(0x61)
    const slowest = () => Math.min(...counts)
    const started = performance.now()
    let sent = 0
    let lastProgress = performance.now()
    let lastSeen = 0
    while (slowest() < lines) {
      if (sent < lines && sent - slowest() < WINDOW) {
        yield* Effect.promise(() => socket.send(line, to))
        sent++
        continue
      }
      yield* Effect.promise(() =>
        new Promise<void>((r) => {
          resumeAt = sent - WINDOW / 2
          wake = r
          setTimeout(r, 50)
        })
      )
      const now = performance.now()
      if (slowest() > lastSeen) {
        lastSeen = slowest()
        lastProgress = now
      } else if (now - lastProgress > 2000) {
        if (sent < lines) {
          // A datagram was lost: move the window on.
          lastSeen = slowest()
          lastProgress = now
          sent = Math.min(lines, sent + 1)
          yield* Effect.promise(() => socket.send(line, to))
          continue
        }
        break
      }
    }
    const seconds = (performance.now() - started) / 1000
    for (const f of fibers) yield* Fiber.interrupt(f)
    const got = slowest()
    return { seconds, got, lost: lines - got }
  }))

for (const make of Deno.args.includes("--own-process") ? [ownProcess] : [ownProcess, inProcess]) {
  const relay = await make()
  console.log(`relay bench, ${relay.label}: ${SIZE}-byte lines over UDP to TLS readers (window ${WINDOW})`)
  // Warm up the code paths once.
  await Effect.runPromise(run(relay, 1, 2000))
  for (const c of CASES) {
    const r = await Effect.runPromise(run(relay, c.readers, c.lines))
    console.log(
      `  ${String(c.readers).padStart(2)} TLS reader(s): ${grouped(c.lines)} lines in ${r.seconds.toFixed(2)} s: ` +
        `${grouped(c.lines / r.seconds)} datagrams/s relayed` +
        (c.readers > 1 ? ` (${grouped((c.lines * c.readers) / r.seconds)} deliveries/s)` : "") +
        (r.lost > 0 ? `, ${r.lost} lost by the kernel` : ""),
    )
  }
  await relay.stop()
}
await Deno.remove(dir, { recursive: true })
