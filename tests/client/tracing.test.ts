import { describe, expect, it } from "@effect/vitest"
import { type Context, Effect, type Exit, Fiber, Option, Stream, Tracer } from "effect"
import { openChannel, openRequestChannel, spanOfTraceparent, traceparentOf } from "../../mod.ts"
import { daemonAndClients } from "../_helpers/clients.ts"
import { awaitMembers, Chat, PlaceOrder, placeOrder } from "./channels_fixtures.ts"

const hex = (n: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(n / 2)), (b) => b.toString(16).padStart(2, "0")).join("")

/** A span the in-memory tracer records: name, ids, parent, links, attributes, events. */
class RecordedSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId = hex(16)
  readonly traceId: string
  readonly sampled = true
  status: Tracer.SpanStatus
  readonly attributes = new Map<string, unknown>()
  readonly links: Array<Tracer.SpanLink>
  readonly events: Array<{ readonly name: string; readonly attributes: Record<string, unknown> | undefined }> = []
  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind,
  ) {
    this.traceId = Option.isSome(parent) ? parent.value.traceId : hex(32)
    this.links = [...links]
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>) {
    if (this.status._tag === "Started") this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute(key: string, value: unknown) {
    this.attributes.set(key, value)
  }
  event(name: string, _startTime: bigint, attributes?: Record<string, unknown>) {
    this.events.push({ name, attributes })
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>) {
    this.links.push(...links)
  }
}

/** An in-memory Effect tracer and the spans it made. */
const memoryTracer = () => {
  const spans: Array<RecordedSpan> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const s = new RecordedSpan(name, parent, context, links, startTime, kind)
      spans.push(s)
      return s
    },
    context: (f) => f(),
  })
  const named = (name: string) => spans.filter((s) => s.name === name)
  return { spans, tracer, named }
}

const parentIdOf = (s: Tracer.Span) => Option.getOrUndefined(Option.map(s.parent, (p) => p.spanId))

describe("traceparent", () => {
  it("traceparentOf and spanOfTraceparent are inverse; invalid traceparents are refused", () => {
    const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    const span = spanOfTraceparent(tp)
    expect(span?.traceId).toBe("0af7651916cd43dd8448eb211c80319c")
    expect(span?.spanId).toBe("b7ad6b7169203331")
    expect(span?.sampled).toBe(true)
    expect(span === undefined ? undefined : traceparentOf(span)).toBe(tp)
    expect(spanOfTraceparent("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")).toBeUndefined()
    expect(spanOfTraceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01")).toBeUndefined()
    expect(spanOfTraceparent("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01")).toBeUndefined()
    expect(spanOfTraceparent("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01")).toBeUndefined()
    expect(spanOfTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")?.sampled).toBe(false)
  })
})

describe("channel tracing", () => {
  it.scopedLive("one trace from request through serve (and the handler's own span) and back", () => {
    const t = memoryTracer()
    return Effect.gen(function* () {
      const { clients: [client, server] } = yield* daemonAndClients("client", "server")
      yield* Effect.forkScoped(
        openRequestChannel(server, PlaceOrder, { tracing: true }).serve((o) =>
          placeOrder(o).pipe(Effect.withSpan("inventory.check"))
        ),
      )
      yield* awaitMembers(server, "orders", 1)
      const orders = openRequestChannel(client, PlaceOrder, { tracing: true })
      const reply = yield* orders.request({ item: "tea", qty: 1 }).pipe(Effect.withSpan("checkout"))
      expect(reply).toEqual({ orderId: 42, total: 3 })

      const [checkout] = t.named("checkout")
      const [request] = t.named("spreadfx.channel.request")
      const [serve] = t.named("spreadfx.channel.serve")
      const [check] = t.named("inventory.check")
      // request is a child of the caller's span, serve a child of request
      // (across two connections, through the envelope), the handler's span a
      // child of serve: one trace.
      expect(parentIdOf(request)).toBe(checkout.spanId)
      expect(request.kind).toBe("client")
      expect(serve.kind).toBe("server")
      expect(parentIdOf(serve)).toBe(request.spanId)
      expect(parentIdOf(check)).toBe(serve.spanId)
      for (const s of [request, serve, check]) expect(s.traceId).toBe(checkout.traceId)
      // And back: the reply carries serve's traceparent; the request links to it.
      expect(request.links.map((l) => l.span.spanId)).toEqual([serve.spanId])
      expect(request.attributes.get("spread.responder")).toBe(server.privateGroup)
      expect(serve.attributes.get("spread.group")).toBe("orders")
      expect(serve.attributes.get("spread.service")).toBe("Agreed")
      expect(serve.attributes.get("spread.sender")).toBe(client.privateGroup)
      expect(serve.status._tag).toBe("Ended")
    }).pipe(Effect.withTracer(t.tracer))
  }, 15_000)

  it.scopedLive("without tracing, no trace context goes on the wire and no channel span is made", () => {
    const t = memoryTracer()
    return Effect.gen(function* () {
      const { clients: [client, server] } = yield* daemonAndClients("client", "server")
      const seen: Array<string | undefined> = []
      yield* Effect.forkScoped(
        openRequestChannel(server, PlaceOrder, { tracing: true }).serve((o, info) =>
          Effect.zipRight(Effect.sync(() => seen.push(info.traceparent)), placeOrder(o))
        ),
      )
      yield* awaitMembers(server, "orders", 1)
      yield* openRequestChannel(client, PlaceOrder).request({ item: "tea", qty: 1 }).pipe(Effect.withSpan("checkout"))
      expect(seen).toEqual([undefined])
      expect(t.named("spreadfx.channel.request")).toEqual([])
      // The server side traced on its own: a root span, no parent to continue.
      const [serve] = t.named("spreadfx.channel.serve")
      expect(serve.traceId).not.toBe(t.named("checkout")[0].traceId)
    }).pipe(Effect.withTracer(t.tracer))
  }, 15_000)

  it.scopedLive("one publish, two subscribers in different connections: each delivery links to the publish", () => {
    const t = memoryTracer()
    return Effect.gen(function* () {
      const { clients: [alice, bob, carol] } = yield* daemonAndClients("alice", "bob", "carol")
      const subscriber = (conn: typeof bob) =>
        Effect.forkScoped(
          openChannel(conn, Chat, { tracing: true }).deliveries().pipe(Stream.take(1), Stream.runCollect),
        )
      const atBob = yield* subscriber(bob)
      const atCarol = yield* subscriber(carol)
      yield* awaitMembers(carol, "room", 2)
      yield* awaitMembers(bob, "room", 2)
      yield* openChannel(alice, Chat, { tracing: true })
        .publish({ from: "alice", text: "hi", at: new Date(0) })
        .pipe(Effect.withSpan("compose"))
      const [toBob] = yield* Fiber.join(atBob)
      const [toCarol] = yield* Fiber.join(atCarol)
      const [publish] = t.named("spreadfx.channel.publish")
      expect(publish.kind).toBe("producer")
      expect(parentIdOf(publish)).toBe(t.named("compose")[0].spanId)
      const deliveries = t.named("spreadfx.channel.deliver")
      expect(deliveries).toHaveLength(2)
      for (const d of deliveries) {
        expect(d.kind).toBe("consumer")
        // A link, not a child: each delivery starts its own trace.
        expect(Option.isNone(d.parent)).toBe(true)
        expect(d.traceId).not.toBe(publish.traceId)
        expect(d.links.map((l) => [l.span.traceId, l.span.spanId])).toEqual([[publish.traceId, publish.spanId]])
        expect(d.attributes.get("spread.group")).toBe("room")
        expect(d.attributes.get("spread.channel")).toBe("chat.line")
        expect(d.attributes.get("spread.sender")).toBe(alice.privateGroup)
        expect(d.attributes.get("spread.service")).toBe("Agreed")
        expect(d.attributes.get("spread.view.seq")).toBe(1)
        expect(typeof d.attributes.get("spread.view.id")).toBe("string")
      }
      // Both members are in the same view, so both place the message alike.
      expect(deliveries[0].attributes.get("spread.view.id")).toBe(deliveries[1].attributes.get("spread.view.id"))
      // The delivery hands its span to the user's processing.
      expect(Option.map(toBob.span, (s) => s.spanId)).not.toEqual(Option.map(toCarol.span, (s) => s.spanId))
      expect(toBob.traceparent).toBe(`00-${publish.traceId}-${publish.spanId}-01`)
    }).pipe(Effect.withTracer(t.tracer))
  }, 15_000)

  it.scopedLive("membership changes are events on the subscription's long-lived span", () => {
    const t = memoryTracer()
    return Effect.gen(function* () {
      const { clients: [bob, carol] } = yield* daemonAndClients("bob", "carol")
      const running = yield* Effect.forkScoped(
        Stream.runDrain(openChannel(bob, Chat, { tracing: true }).subscribe()),
      )
      yield* awaitMembers(bob, "room", 1)
      yield* carol.join("room")
      yield* awaitMembers(bob, "room", 2)
      yield* carol.leave("room")
      const [life] = t.named("spreadfx.channel.subscribe")
      while (life.events.length < 3) yield* Effect.sleep("5 millis")
      expect(
        life.events.map((e) => [e.name, e.attributes?.["spread.view.cause"], e.attributes?.["spread.view.members"]]),
      )
        .toEqual([["spread.membership", "Join", 1], ["spread.membership", "Join", 2], [
          "spread.membership",
          "Leave",
          1,
        ]])
      expect(life.events[1].attributes?.["spread.view.changed"]).toBe(carol.privateGroup)
      expect(life.status._tag).toBe("Started")
      yield* Fiber.interrupt(running)
      expect(life.status._tag).toBe("Ended")
    }).pipe(Effect.withTracer(t.tracer))
  }, 15_000)
})
