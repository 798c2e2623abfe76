/**
 * UDP ingress bursts from another process: the daemon (`src/cli/daemon.ts
 * --udp-ingress 0:logs`) runs in its own process, a reader (this library's
 * client) joins "logs", and this process sends BURST datagrams of 300
 * bytes back to back to the ingress, as fast as it can (`sendto` in a loop
 * through the C library, as a C sender would). Reports how many
 * the reader got, how long the burst took to send, and what the daemon's
 * stats line says the kernel dropped and the socket's receive buffer is.
 *
 * Run twice by default: with `--allow-ffi` (the documented daemon command:
 * the ingress sizes its own socket) and without it (Deno's UDP socket, the
 * system's default receive buffer).
 *
 * ```sh
 * deno run -A bench/udp_burst.ts                       # bursts of 500 and 5,000, with and without --allow-ffi
 * deno run -A bench/udp_burst.ts --burst 500 --ffi-only
 * deno run -A bench/udp_burst.ts --recv-buffer 212992  # ask for what a default net.core.rmem_max allows
 * deno run -A bench/udp_burst.ts --deno-sender          # send with Deno's UDP socket (slower) instead of sendto
 * ```
 *
 * @module
 */
import { Effect, Stream } from "effect"
import { connect, isRegular } from "../mod.ts"
import { daemonCommand } from "./_daemons.ts"

const arg = (name: string): string | undefined => {
  const i = Deno.args.indexOf(name)
  return i >= 0 ? Deno.args[i + 1] : undefined
}
const bursts = arg("--burst") !== undefined ? [Number(arg("--burst"))] : [500, 5000]
const recvBuffer = arg("--recv-buffer")
const SIZE = 300
/** `--deno-sender`: send with `Deno.listenDatagram`'s `send` (some 10–20 ms for 500) instead of `sendto`. */
const denoSender = Deno.args.includes("--deno-sender")

// A sender socket of the C library's, so the burst is as fast as a C program's.
const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
}).symbols
const fastSend = (lines: ReadonlyArray<Uint8Array>, port: number): void => {
  const fd = libc.socket(2, 2, 0) // AF_INET, SOCK_DGRAM
  const addr = new Uint8Array(16)
  new DataView(addr.buffer).setUint16(0, 2, true)
  new DataView(addr.buffer).setUint16(2, port, false)
  addr.set([127, 0, 0, 1], 4)
  for (const l of lines) libc.sendto(fd, l, BigInt(l.length), 0, addr, 16)
  libc.close(fd)
}

const startDaemon = async (ffi: boolean) => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...daemonCommand(ffi),
      "--port",
      "0",
      "--no-unix",
      "--udp-ingress",
      "0:logs",
      "--metrics-port",
      "0",
      "--stats-interval",
      "1",
      ...(recvBuffer === undefined ? [] : ["--udp-recv-buffer", recvBuffer]),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn()
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
  let text = ""
  while (!/metrics on (\S+)/.test(text) || !/UDP \S+:(\d+)/.test(text)) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`the daemon exited: ${text}`)
    text += value
  }
  const port = Number(/listening on (\d+)@/.exec(text)?.[1])
  const udp = Number(/UDP \S+:(\d+)/.exec(text)?.[1])
  const metrics = /metrics on (\S+)/.exec(text)?.[1] ?? ""
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader()
  let log = ""
  const drain = async (r: ReadableStreamDefaultReader<string>) => {
    for (;;) {
      const { value, done } = await r.read().catch(() => ({ value: undefined, done: true }))
      if (done) return
      log += value
    }
  }
  void drain(stderr)
  void drain(reader)
  return {
    port,
    udp,
    metrics,
    log: () => log + text,
    stop: async () => {
      child.kill("SIGTERM")
      await child.status
    },
  }
}

// The last stats line's count of what the kernel dropped.
const kernelDropped = (log: string): string => {
  const all = [...log.matchAll(/udp_\d+_dropped_kernel=(\S+)/g)]
  return all.at(-1)?.[1].replace(/"$/, "") ?? "no stats line"
}
const recvBufferOf = (log: string): string =>
  [...log.matchAll(/udp_\d+_recv_buffer=(\d+)/g)].at(-1)?.[1] ?? "the system default"

const runOne = async (ffi: boolean, burst: number) => {
  const d = await startDaemon(ffi)
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 })
  const target: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: d.udp }
  const got = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const c = yield* connect({ daemon: `${d.port}@127.0.0.1`, inboundCapacity: 8192 })
    yield* c.join("logs")
    yield* Effect.sleep(200)
    let n = 0
    const counting = yield* Effect.fork(
      c.messages.pipe(Stream.filter(isRegular), Stream.runForEach(() => Effect.sync(() => n++))),
    )
    const lines = Array.from({ length: burst }, (_, i) => {
      const line = new Uint8Array(SIZE).fill(0x6c)
      new DataView(line.buffer).setUint32(0, i)
      return line
    })
    const t0 = performance.now()
    if (denoSender) {
      // Every send started at once: the burst leaves as fast as Deno sends.
      yield* Effect.promise(() => Promise.all(lines.map((l) => socket.send(l, target))))
    } else {
      // `sendto` in a loop through the C library: the burst leaves as fast
      // as a C sender's (some 3 ms for 500), the case the ingress must survive.
      fastSend(lines, d.udp)
    }
    const sendMs = performance.now() - t0
    // Until nothing more comes for 500 ms.
    let last = -1
    while (last !== n) {
      last = n
      yield* Effect.sleep(500)
    }
    void counting
    return { n, sendMs }
  })))
  // A stats line comes once a second.
  await new Promise((r) => setTimeout(r, 1200))
  const dropped = kernelDropped(d.log())
  const buffer = recvBufferOf(d.log())
  socket.close()
  const fallback = /uses Deno's UDP socket/.test(d.log())
  await d.stop()
  console.log(
    `${ffi ? "--allow-ffi   " : "no --allow-ffi"} burst ${burst} × ${SIZE} B sent in ${
      got.sendMs.toFixed(1)
    } ms: ${got.n} delivered, ${
      burst - got.n
    } lost; the daemon's stats line: kernel drops ${dropped}, receive buffer ${buffer}${
      fallback ? " (Deno's UDP socket, with a warning)" : ""
    }`,
  )
}

const rmemMax = (() => {
  try {
    return Deno.readTextFileSync("/proc/sys/net/core/rmem_max").trim()
  } catch {
    return "unknown"
  }
})()
console.log(`net.core.rmem_max ${rmemMax}${recvBuffer === undefined ? "" : `, --udp-recv-buffer ${recvBuffer}`}`)
for (const burst of bursts) {
  await runOne(true, burst)
  if (!Deno.args.includes("--ffi-only")) await runOne(false, burst)
}
Deno.exit(0)
