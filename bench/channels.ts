/**
 * The cost of typed channels: a small object ({ id, name, ok }, 40 bytes of
 * JSON) published by one connection and received, decoded, by another, in
 * four ways:
 *
 * 1. plain `multicast` of `json(schema).encode(value)`, `subscribe` and
 *    `json(schema).decode` per message (the typed way before channels);
 * 2. a typed channel, `publish` / `subscribe`, tracing off;
 * 3. the same with `tracing: true` (a publish span, a delivery span with a
 *    link, a traceparent in every envelope) under Effect's own tracer,
 *    which records spans and exports nothing (an exporter's cost is its
 *    own);
 * 4. plain `multicast` / `subscribe` of the JSON bytes, not decoded, and
 *    the same inside a span: the plain path never looks at tracing (no
 *    envelope, no span per message), so the two figures must match.
 *
 * Each case sends N messages one `publish` (or `multicast`) at a time
 * (Agreed, the flow window paces the sender) and is timed from the first
 * send to the last value received; three rounds, taken round-robin over
 * the cases, the best of each is reported, with messages per second. A second part times the CPU work alone per
 * message (no daemon): encode + envelope + decode for a channel, with and
 * without trace context, against `json(schema)` encode + decode.
 *
 * ```sh
 * deno run -A bench/channels.ts            # 20 000 messages per round
 * deno run -A bench/channels.ts --quick    # 2 000
 * ```
 *
 * @module
 */
import { Effect, Fiber, Logger, LogLevel, Schema, Stream } from "effect"
import { connect, type Connection, defineChannel, isRegular, json, openChannel, parseEnvelope } from "../mod.ts"
import { encodeHeaders, hasChannelTag, readHeaders, writeEnvelope } from "../src/client/features/envelope.ts"
import * as Daemon from "../src/daemon/mod.ts"

const quick = Deno.args.includes("--quick")
const N = quick ? 2_000 : 20_000
const ROUNDS = 3
const NO_REPLY_TO = new Uint8Array(0)

const Item = Schema.Struct({ id: Schema.Number, name: Schema.String, ok: Schema.Boolean })
const items = json(Item)
const Items = defineChannel({ name: "bench.item", group: "bench", schema: Item })
const value = (i: number) => ({ id: i, name: "small object", ok: true })

const awaitJoined = (conn: Connection) =>
  Effect.gen(function* () {
    while ((yield* conn.views).size === 0) yield* Effect.sleep("1 millis")
  })

type Case = (pub: Connection, sub: Connection) => Effect.Effect<void, unknown>

const plainJson: Case = (pub, sub) =>
  Effect.gen(function* () {
    const got = yield* Effect.fork(
      sub.subscribe("bench").pipe(
        Stream.filter(isRegular),
        Stream.mapEffect(items.decode),
        Stream.take(N),
        Stream.runDrain,
      ),
    )
    yield* awaitJoined(sub)
    for (let i = 0; i < N; i++) yield* pub.multicast(yield* items.message("bench", value(i)))
    yield* Fiber.join(got)
  })

const channel = (tracing: boolean): Case => (pub, sub) =>
  Effect.gen(function* () {
    const got = yield* Effect.fork(
      openChannel(sub, Items, { tracing }).subscribe().pipe(Stream.take(N), Stream.runDrain),
    )
    yield* awaitJoined(sub)
    const items = openChannel(pub, Items, { tracing })
    for (let i = 0; i < N; i++) yield* items.publish(value(i))
    yield* Fiber.join(got)
  })

const plainBytes: Case = (pub, sub) =>
  Effect.gen(function* () {
    const got = yield* Effect.fork(
      sub.subscribe("bench").pipe(Stream.filter(isRegular), Stream.take(N), Stream.runDrain),
    )
    yield* awaitJoined(sub)
    const data = new TextEncoder().encode(JSON.stringify(value(0)))
    for (let i = 0; i < N; i++) yield* pub.multicast({ groups: "bench", data })
    yield* Fiber.join(got)
  })

const timed = (spreadName: string, run: Case) =>
  Effect.scoped(Effect.gen(function* () {
    const pub = yield* connect({ daemon: spreadName, name: "pub", membership: false })
    const sub = yield* connect({ daemon: spreadName, name: "sub" })
    const t0 = performance.now()
    yield* run(pub, sub)
    return performance.now() - t0
  }))

const cpu = (label: string, f: (i: number) => void) => {
  const n = N * 5
  for (let i = 0; i < 1000; i++) f(i) // warm up
  const t0 = performance.now()
  for (let i = 0; i < n; i++) f(i)
  const us = ((performance.now() - t0) * 1000) / n
  console.log(`  ${label.padEnd(52)} ${us.toFixed(2).padStart(7)} µs per message`)
}

const main = Effect.scoped(Effect.gen(function* () {
  const daemon = yield* Daemon.make({ port: 0, unixSocket: false })
  console.log(`channels bench: ${N} messages per round, best of ${ROUNDS}, embedded daemon in this process`)
  const cases: ReadonlyArray<readonly [string, Case]> = [
    ["plain multicast + json(schema) decode", plainJson],
    ["typed channel, tracing off", channel(false)],
    ["typed channel, tracing on", channel(true)],
    ["plain multicast (bytes)", plainBytes],
    ["plain multicast (bytes), inside a span", (pub, sub) => Effect.withSpan(plainBytes(pub, sub), "bench.plain")],
  ]
  // Rounds go round-robin over the cases, so warm-up and the machine's
  // other load fall on every case alike.
  const best = cases.map(() => Number.POSITIVE_INFINITY)
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, [, run]] of cases.entries()) best[i] = Math.min(best[i], yield* timed(daemon.spreadName, run))
  }
  for (const [i, [label]] of cases.entries()) {
    console.log(`  ${label.padEnd(52)} ${Math.round(N / (best[i] / 1000)).toString().padStart(7)} msg/s`)
  }

  console.log("CPU per message, no daemon (encode, envelope, decode):")
  const encode = Schema.encodeSync(Schema.parseJson(Item))
  const decode = Schema.decodeUnknownSync(Schema.parseJson(Item))
  const enc = new TextEncoder()
  const dec = new TextDecoder()
  cpu("json(schema) encode + decode (sync)", (i) => {
    decode(dec.decode(enc.encode(encode(value(i)))))
  })
  // What publish and subscribe do per message: the header fields made once
  // (or per message, with a traceparent), one envelope written, parsed,
  // its channel tag compared in place.
  const tag = enc.encode("bench.item")
  const roundTrip = (headers: { channel: string; traceparent?: string }) => {
    const fixed = encodeHeaders(headers)
    return (i: number) => {
      const extension = headers.traceparent === undefined ? fixed : encodeHeaders(headers)
      if (extension === undefined) return
      const bytes = writeEnvelope("Message", 0, 0, NO_REPLY_TO, extension, enc.encode(encode(value(i))))
      const env = parseEnvelope(bytes)
      if (env === undefined || !hasChannelTag(bytes, env.replyTo.length, env.headerLength, tag)) return
      if (headers.traceparent !== undefined) readHeaders(bytes, env.replyTo.length, env.headerLength)
      decode(dec.decode(bytes.subarray(env.headerLength)))
    }
  }
  cpu("channel envelope + encode + decode", roundTrip({ channel: "bench.item" }))
  cpu(
    "channel envelope with traceparent + encode + decode",
    roundTrip({ channel: "bench.item", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }),
  )
}))

Effect.runPromise(main.pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))))
