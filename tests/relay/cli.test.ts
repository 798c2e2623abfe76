/**
 * The relay from the command line: `daemon --tls-port … --udp-ingress …`,
 * and the client tools' `--tls-ca`, `--tls-cert`, `--tls-key`.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { connect, isRegular, text } from "../../mod.ts"
import { parseArgs } from "../../src/cli/daemon.ts"
import { parseUdpIngress } from "../../src/cli/relay_flags.ts"
import { type Certs, makeCerts, udpSender } from "./_fixtures.ts"

const DAEMON = new URL("../../src/cli/daemon.ts", import.meta.url).pathname
const PING = new URL("../../src/cli/ping.ts", import.meta.url).pathname
const PERMS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"]
const T = 20_000

let certs: Certs
let dir: string
beforeAll(async () => {
  certs = await makeCerts()
  dir = await Deno.makeTempDir({ prefix: "spreadfx-relay-cli-" })
  const files: Record<string, string> = {
    "ca.pem": certs.ca.cert,
    "server.pem": certs.server.cert,
    "server.key": certs.server.key,
    "reader.pem": certs.reader1.cert,
    "reader.key": certs.reader1.key,
    "intruder.pem": certs.intruder.cert,
    "intruder.key": certs.intruder.key,
  }
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text)
})
afterAll(async () => {
  await Deno.remove(dir, { recursive: true })
})

interface Started {
  readonly child: Deno.ChildProcess
  readonly tlsPort: number
  readonly udpPort: number
}

/** The daemon command with TLS and UDP ingress; the scope kills it. */
const startDaemon = Effect.acquireRelease(
  Effect.promise(async (): Promise<Started> => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...PERMS,
        DAEMON,
        "--port",
        "0",
        "--no-unix",
        "--tls-port",
        "0",
        "--tls-cert",
        `${dir}/server.pem`,
        "--tls-key",
        `${dir}/server.key`,
        "--tls-ca",
        `${dir}/ca.pem`,
        "--udp-ingress",
        "0:logs",
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn()
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
    let out = ""
    const deadline = Date.now() + 8000
    let tls: RegExpExecArray | null = null
    let udp: RegExpExecArray | null = null
    while ((tls === null || udp === null) && Date.now() < deadline) {
      const { value, done } = await reader.read()
      if (done) break
      out += value
      tls = /^spreadfx daemon TLS sessions on (\d+)@127\.0\.0\.1 \(client certificates required\)$/m.exec(out)
      udp = /^spreadfx daemon UDP 127\.0\.0\.1:(\d+) -> group logs as #udp-\d+#localhost$/m.exec(out)
    }
    void reader.closed.catch(() => undefined)
    void (async () => {
      while (!(await reader.read().catch(() => ({ done: true }))).done) {
        // keep the pipe drained
      }
    })()
    if (tls === null || udp === null) throw new Error(`no relay lines in ${JSON.stringify(out)}`)
    return { child, tlsPort: Number(tls[1]), udpPort: Number(udp[1]) }
  }),
  (s) =>
    Effect.promise(async () => {
      try {
        s.child.kill("SIGKILL")
      } catch {
        // already gone
      }
      await s.child.status
    }),
)

const runTool = (cli: string, args: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", ...PERMS, cli, ...args] }).output()
    return { code: r.code, stdout: new TextDecoder().decode(r.stdout), stderr: new TextDecoder().decode(r.stderr) }
  })

describe("relay flags", () => {
  it("parseUdpIngress reads [HOST:]PORT:GROUP", () => {
    expect(parseUdpIngress("5140:logs")).toEqual({ port: 5140, group: "logs" })
    expect(parseUdpIngress("0.0.0.0:5140:logs")).toEqual({ host: "0.0.0.0", port: 5140, group: "logs" })
    expect(parseUdpIngress("[::1]:5140:logs")).toEqual({ host: "::1", port: 5140, group: "logs" })
    expect(parseUdpIngress("logs")).toBe(`"logs" is not [HOST:]PORT:GROUP`)
    expect(parseUdpIngress("99999:logs")).toContain("not 0..65535")
  })

  it("the daemon's --udp-ingress repeats, and TLS flags go together", () => {
    const ok = parseArgs(["--udp-ingress", "5140:logs", "--udp-ingress=5141:audit"])
    expect(ok._tag === "Run" && ok.config.udpIngress).toEqual([
      { port: 5140, group: "logs" },
      { port: 5141, group: "audit" },
    ])
    const tls = parseArgs(["--tls-port", "4843", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem"])
    expect(tls._tag === "Run" && tls.config.tls).toEqual({
      port: 4843,
      cert: { path: "c.pem" },
      key: { path: "k.pem" },
      ca: { path: "ca.pem" },
    })
    expect(parseArgs(["--tls-port", "4843"])).toEqual({
      _tag: "Invalid",
      message: "--tls-port needs --tls-cert and --tls-key",
    })
    expect(parseArgs(["--tls-ca", "ca.pem"])._tag).toBe("Invalid")
    expect(parseArgs(["--udp-ingress", "logs"])._tag).toBe("Invalid")
  })

  it.scopedLive(
    "daemon --tls-port --tls-ca --udp-ingress relays datagrams to a TLS reader; ping takes --tls-*",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon
        const reader = yield* connect({
          daemon: `${d.tlsPort}@127.0.0.1`,
          tls: { caCerts: [certs.ca.cert], cert: certs.reader1.cert, key: certs.reader1.key },
        })
        yield* reader.join("logs")
        yield* Effect.sleep(100)
        const send = yield* udpSender(d.udpPort)
        yield* Effect.promise(() => send(new TextEncoder().encode("<134>hello from the command line")))
        const got = yield* reader.messages.pipe(
          Stream.filter(isRegular),
          Stream.take(1),
          Stream.runCollect,
          Effect.timeout(5000),
        )
        expect([...got].map(text)).toEqual(["<134>hello from the command line"])
        const tlsArgs = [
          "--tls-ca",
          `${dir}/ca.pem`,
          "--tls-cert",
          `${dir}/reader.pem`,
          "--tls-key",
          `${dir}/reader.key`,
        ]
        const ping = yield* runTool(PING, ["-s", `${d.tlsPort}@127.0.0.1`, "-c", "20", "-w", "5", ...tlsArgs])
        expect(ping.code, ping.stderr).toBe(0)
        expect(ping.stdout).toMatch(/^ping: 20 round trips/m)
        const refused = yield* runTool(PING, [
          "-s",
          `${d.tlsPort}@127.0.0.1`,
          "-c",
          "1",
          "--tls-ca",
          `${dir}/ca.pem`,
          "--tls-cert",
          `${dir}/intruder.pem`,
          "--tls-key",
          `${dir}/intruder.key`,
        ])
        expect(refused.code).not.toBe(0)
        expect(refused.stderr).toContain("TlsCertificateRefused")
        const noKey = yield* runTool(PING, ["-s", `${d.tlsPort}@127.0.0.1`, "--tls-cert", `${dir}/reader.pem`])
        expect(noKey.code).toBe(2)
        expect(noKey.stderr).toContain("--tls-cert and --tls-key go together")
      }),
    T,
  )
})
