/**
 * Legitimate clients during a sustained, reconnecting slowloris: an
 * attacker process keeps ATTACKERS connections open that never send a
 * byte of their handshake (each reconnects at once when the daemon closes
 * it), far more than the daemon's handshake places (`--max-handshaking`,
 * 256 by default); meanwhile this process opens a legitimate connection
 * every INTERVAL ms and does a whole handshake (connect message, auth
 * list, NULL, accept), then closes it. Reports how many legitimate
 * handshakes were accepted, refused (REJECT_QUOTA) or failed, the
 * handshake time, and the daemon's resident memory during the attack.
 *
 * The daemon runs in its own process (`src/cli/daemon.ts`), the attacker
 * in another (this file with `--attacker PORT N`).
 *
 * ```sh
 * deno run -A bench/slowloris.ts                       # 1024 attackers, 10 s, a client every 20 ms
 * deno run -A bench/slowloris.ts --attackers 512 --seconds 5
 * ```
 *
 * @module
 */
import { encodeAuthChoice, encodeConnect, isProtocolError, SPREAD_VERSION } from "../src/protocol/mod.ts"
import { ownProcess } from "./_daemons.ts"

const arg = (name: string, fallback: number): number => {
  const i = Deno.args.indexOf(name)
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback
}

// -- the attacker process

const attack = async (port: number, n: number): Promise<void> => {
  let opened = 0
  const one = async (): Promise<void> => {
    for (;;) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port })
        opened++
        // Send nothing; wait until the daemon closes it, then come back.
        const buf = new Uint8Array(16)
        while ((await c.read(buf).catch(() => null)) !== null) {
          // a REJECT_QUOTA byte, then EOF
        }
        c.close()
      } catch {
        await new Promise((r) => setTimeout(r, 5))
      }
    }
  }
  for (let i = 0; i < n; i++) void one()
  setInterval(() => console.log(`opened ${opened}`), 1000)
  await new Promise(() => {})
}

if (Deno.args[0] === "--attacker") {
  await attack(Number(Deno.args[1]), Number(Deno.args[2]))
}

// -- the measuring process

const ATTACKERS = arg("--attackers", 1024)
const SECONDS = arg("--seconds", 10)
const INTERVAL = arg("--interval", 20)
const TIMEOUT = 2000

const auth = encodeAuthChoice(["NULL"])
if (isProtocolError(auth)) throw auth

type Outcome = "accepted" | "quota" | "other"

const readSome = async (c: Deno.Conn, n: number): Promise<Uint8Array | undefined> => {
  const buf = new Uint8Array(256)
  let got = 0
  while (got < n) {
    const k = await c.read(buf.subarray(got))
    if (k === null) return got === 0 ? undefined : buf.subarray(0, got)
    got += k
    if (got === 1 && buf[0] >= 0x80) return buf.subarray(0, 1) // a reject code
  }
  return buf.subarray(0, got)
}

const legit = async (port: number, i: number): Promise<{ outcome: Outcome; ms: number }> => {
  const t0 = performance.now()
  let conn: Deno.Conn | undefined
  const timer = setTimeout(() => conn?.close(), TIMEOUT)
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port })
    const name = `l${i % 100000}`
    await conn.write(encodeConnect({ version: SPREAD_VERSION, membership: false, priority: 0, name }))
    const list = await readSome(conn, 6)
    if (list === undefined) return { outcome: "other", ms: performance.now() - t0 }
    if (list.length === 1) return { outcome: list[0] === 0xfd ? "quota" : "other", ms: performance.now() - t0 }
    await conn.write(auth)
    const pg = `#${name}#localhost`
    const accept = await readSome(conn, 5 + pg.length)
    if (accept === undefined) return { outcome: "other", ms: performance.now() - t0 }
    if (accept.length === 1) return { outcome: accept[0] === 0xfd ? "quota" : "other", ms: performance.now() - t0 }
    return { outcome: "accepted", ms: performance.now() - t0 }
  } catch {
    return { outcome: "other", ms: performance.now() - t0 }
  } finally {
    clearTimeout(timer)
    try {
      conn?.close()
    } catch {
      // closed by the timer
    }
  }
}

const rssKiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))
  return m === null ? NaN : Number(m[1])
}

const daemon = await ownProcess()
const port = Number(daemon.spreadName.split("@")[0])
const pid = daemon.pid ?? 0
const rssBefore = rssKiB(pid)
const attacker = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", new URL(import.meta.url).pathname, "--attacker", String(port), String(ATTACKERS)],
  stdout: "piped",
  stderr: "inherit",
}).spawn()
const attackerOut = attacker.stdout.pipeThrough(new TextDecoderStream()).getReader()
let attackerText = ""
void (async () => {
  for (;;) {
    const { value, done } = await attackerOut.read().catch(() => ({ value: undefined, done: true }))
    if (done) return
    attackerText += value
  }
})()
// Let the attack fill every handshake place first.
await new Promise((r) => setTimeout(r, 1000))

const results: Array<Promise<{ outcome: Outcome; ms: number }>> = []
let rssPeak = 0
const t0 = performance.now()
for (let i = 0; performance.now() - t0 < SECONDS * 1000; i++) {
  results.push(legit(port, i))
  if (i % 25 === 0) rssPeak = Math.max(rssPeak, rssKiB(pid))
  await new Promise((r) => setTimeout(r, INTERVAL))
}
const done = await Promise.all(results)
const opened = [...attackerText.matchAll(/opened (\d+)/g)].map((m) => Number(m[1]))
attacker.kill("SIGKILL")
await attacker.status
await daemon.stop()

const count = (o: Outcome) => done.filter((d) => d.outcome === o).length
const ms = done.filter((d) => d.outcome === "accepted").map((d) => d.ms).sort((a, b) => a - b)
const accepted = count("accepted")
console.log(
  `slowloris: ${ATTACKERS} stalled connections reconnecting (${
    opened.at(-1) ?? 0
  } opened in all), a legitimate handshake every ${INTERVAL} ms for ${SECONDS} s`,
)
console.log(
  `legitimate handshakes: ${accepted} of ${done.length} accepted (${(100 * accepted / done.length).toFixed(1)}%), ${
    count("quota")
  } REJECT_QUOTA, ${count("other")} failed otherwise; accepted in p50 ${
    (ms[Math.floor(ms.length / 2)] ?? NaN).toFixed(1)
  } ms, p99 ${(ms[Math.floor(ms.length * 0.99)] ?? NaN).toFixed(1)} ms`,
)
console.log(
  `daemon resident memory: ${(rssBefore / 1024).toFixed(0)} MiB before, ${
    (rssPeak / 1024).toFixed(0)
  } MiB at most during the attack`,
)
Deno.exit(0)
