/**
 * Spread's own `spflooder -n 2` against the daemon: two flooders join one
 * group, each waits for the other, multicasts its messages and reads the
 * other's, then leaves. It passes only if the daemon delivers every message
 * of each to the other. Runs when SPREAD_FLOODER names Spread's spflooder
 * (e.g. `SPREAD_FLOODER=/opt/spread/bin/spflooder`); skipped, visibly,
 * otherwise. The daemon runs in its own process, with the Unix socket
 * `/tmp/<port>` the C library uses for `-s <port>`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startDaemonProcess } from "../_helpers/daemon_process.ts"

const FLOODER = Deno.env.get("SPREAD_FLOODER")
const T = 120_000

const flood = (port: number, user: string, messages: number, bytes: number) =>
  Effect.promise(() =>
    new Deno.Command(FLOODER ?? "", {
      args: ["-u", user, "-s", String(port), "-n", "2", "-m", String(messages), "-b", String(bytes)],
      stdout: "piped",
      stderr: "piped",
    }).output()
  ).pipe(Effect.map((o) => ({ code: o.code, out: new TextDecoder().decode(o.stdout) })))

describe("Daemon and Spread's spflooder", () => {
  for (const [messages, bytes] of [[10_000, 1000], [1000, 100_000]]) {
    it.scopedLive.skipIf(FLOODER === undefined || FLOODER === "")(
      `spflooder -n 2: two flooders of ${messages} × ${bytes} B each finish (SPREAD_FLOODER names spflooder)`,
      () =>
        Effect.gen(function* () {
          const port = 20_000 + Math.floor(Math.random() * 20_000)
          const d = yield* startDaemonProcess({ port, unixSocket: true })
          const p = d.address._tag === "Tcp" ? d.address.port : port
          const [a, b] = yield* Effect.all([flood(p, "fa", messages, bytes), flood(p, "fb", messages, bytes)], {
            concurrency: 2,
          })
          for (const r of [a, b]) {
            expect(r.code).toBe(0)
            expect(r.out).toContain(`completed multicast of ${messages} messages, ${bytes} bytes each`)
          }
          // The Unix socket file is left by the killed process: remove it.
          yield* Effect.sync(() => {
            try {
              Deno.removeSync(`/tmp/${p}`)
            } catch {
              // gone already
            }
          })
        }),
      T,
    )
  }
})
