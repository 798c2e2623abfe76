/**
 * A UDP receive socket the daemon creates and sizes itself, through Deno's
 * FFI and the C library (Linux only): `socket`, `setsockopt(SO_RCVBUF)`,
 * `bind`, and `recv`.
 *
 * Why: Deno's own UDP socket (`Deno.listenDatagram`) cannot set its
 * receive buffer, and `node:dgram`'s `recvBufferSize` reports the new size
 * while the kernel socket keeps its default (checked with `ss -uam` on
 * Deno 2.9.6). At the default (`net.core.rmem_default`, 208 KiB: about 160
 * datagrams of 300 bytes on loopback) a burst of 500 lost two thirds of
 * itself in the kernel, even with an idle event loop waiting on the socket.
 *
 * How it receives: one `recv` runs on a thread of Deno's blocking pool
 * (an FFI call marked `nonblocking`) and waits for the next datagram; when
 * it returns, the event loop empties the socket with `recv(MSG_DONTWAIT)`,
 * copying each datagram into a queue (a microsecond or two each), and
 * relays the queue, emptying the socket again every {@link DRAIN_EVERY}
 * datagrams relayed, up to {@link BATCH} per turn of the event loop. So the
 * kernel buffer only has to hold what arrives while a few datagrams are
 * relayed, and a burst waits in the queue, which holds up to the configured
 * receive buffer's size in bytes (past that the socket is left to fill).
 * The kernel buffer is asked for as large as configured; the kernel caps
 * the request at `net.core.rmem_max` (and reports double the capped value,
 * its bookkeeping overhead included), which is what the ingress then
 * reports as `recvBufferBytes`. At the default cap (208 KiB, about 330
 * datagrams of 300 bytes on loopback) the queue is what lets a burst of 500
 * sent in 3 ms through.
 *
 * The kernel's drop counter for the socket comes from
 * `getsockopt(SO_MEMINFO)` (no file to read, so no `--allow-read` or
 * `--allow-all` is needed).
 *
 * Closing: `shutdown` wakes the waiting `recv` (it returns 0 on a shut
 * socket), and the descriptor is closed once it has returned.
 *
 * Needs `--allow-ffi`; {@link ffiUnavailable} says why it cannot be used
 * (another OS, no permission) so the ingress falls back to
 * `Deno.listenDatagram` with a warning.
 *
 * @module
 */

const AF_INET = 2
const SOCK_DGRAM = 2
const SOL_SOCKET = 1
const SO_RCVBUF = 8
const SO_MEMINFO = 55
const SK_MEMINFO_DROPS = 8
const MSG_DONTWAIT = 0x40
const SHUT_RDWR = 2
const EAGAIN = 11

/** Most datagrams relayed in one turn of the event loop before waiting again. */
const BATCH = 1024

/** Datagrams relayed between two drains of the socket (see `run`). */
const DRAIN_EVERY = 16

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recvWait: { name: "recv", parameters: ["i32", "buffer", "usize", "i32"], result: "isize", nonblocking: true },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"]

// One handle on the C library per process, opened on first use, never closed
// (a receive may still be waiting on a pool thread when an ingress closes).
let libc: Libc | undefined

const open = (): Libc => libc ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols

const errno = (c: Libc): number => {
  const p = c.__errno_location()
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32()
}

const describe = (c: Libc, code: number): string => {
  const p = c.strerror(code)
  return p === null ? `errno ${code}` : `${Deno.UnsafePointerView.getCString(p)} (errno ${code})`
}

/**
 * Why the FFI socket cannot be used here, or `undefined` when it can:
 * Linux only (the constants and address layout are Linux's), an IPv4
 * address, `--allow-ffi` granted (asked without a prompt), and glibc's
 * `libc.so.6` loadable (it is loaded here, once per process).
 *
 * @since 0.1.0
 * @category models
 */
export const ffiUnavailable = (host: string): string | undefined => {
  if (Deno.build.os !== "linux") return `sized UDP sockets need Linux (this is ${Deno.build.os})`
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(host)) return `sized UDP sockets take an IPv4 address (not "${host}")`
  if (typeof Deno.dlopen !== "function") return "Deno.dlopen is unavailable"
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return "--allow-ffi is not granted"
  } catch {
    return "--allow-ffi is not granted"
  }
  try {
    open()
  } catch (e) {
    return `cannot load libc.so.6: ${e instanceof Error ? e.message : String(e)}`
  }
  return undefined
}

/**
 * A bound UDP socket with a receive buffer the daemon sized.
 *
 * @since 0.1.0
 * @category models
 */
export interface SizedUdpSocket {
  /** The bound port. */
  readonly port: number
  /** The receive buffer as the kernel reports it (`getsockopt(SO_RCVBUF)`). */
  readonly recvBufferBytes: number
  /** Datagrams the kernel dropped because the buffer was full (`SO_MEMINFO`). */
  readonly kernelDrops: () => number | undefined
  /**
   * Receives until closed: `onDatagram` gets each datagram (a view valid
   * only during the call), `onBatch` runs after each batch, `onError` for a
   * failed receive (the loop pauses 10 ms and goes on). Resolves once closed.
   */
  readonly run: (
    onDatagram: (data: Uint8Array) => void,
    onBatch: () => void,
    onError: (message: string) => void,
  ) => Promise<void>
  /** Stops receiving and closes the socket once the waiting receive returned (idempotent). */
  readonly close: () => void
}

/**
 * Opens, sizes and binds a UDP socket on `host:port` (IPv4; port 0 picks
 * one), asking for a receive buffer of `recvBufferBytes`. Answers the
 * socket, or the reason it could not (for the caller's error).
 *
 * @since 0.1.0
 * @category constructors
 */
export const openSizedUdp = (host: string, port: number, recvBufferBytes: number): SizedUdpSocket | string => {
  // What the ingress may hold taken off the socket and not yet relayed: as
  // much again as it asked the kernel for, so a kernel that grants less
  // (`net.core.rmem_max`) is made up for here.
  const holdBytes = recvBufferBytes
  const c = open()
  const fd = c.socket(AF_INET, SOCK_DGRAM, 0)
  if (fd < 0) return `socket(): ${describe(c, errno(c))}`
  const fail = (what: string): string => {
    const e = describe(c, errno(c))
    c.close(fd)
    return `${what}: ${e}`
  }
  const want = new Int32Array([Math.min(recvBufferBytes, 0x3fffffff)])
  if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, new Uint8Array(want.buffer), 4) !== 0) {
    return fail(`setsockopt(SO_RCVBUF, ${recvBufferBytes})`)
  }
  const got = new Int32Array(1)
  const gotLen = new Uint32Array([4])
  c.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, new Uint8Array(got.buffer), new Uint8Array(gotLen.buffer))
  const addr = new Uint8Array(16)
  const view = new DataView(addr.buffer)
  view.setUint16(0, AF_INET, true)
  view.setUint16(2, port, false)
  addr.set(host.split(".").map(Number), 4)
  if (c.bind(fd, addr, 16) !== 0) return fail(`bind(${host}:${port})`)
  const bound = new Uint8Array(16)
  const boundLen = new Uint32Array([16])
  if (c.getsockname(fd, bound, new Uint8Array(boundLen.buffer)) !== 0) return fail("getsockname()")
  const boundPort = new DataView(bound.buffer).getUint16(2, false)

  let closing = false
  let closed = false
  let running: Promise<void> | undefined
  const meminfo = new Uint32Array(16)
  const meminfoLen = new Uint32Array(1)
  const finish = (): void => {
    if (closed) return
    closed = true
    c.close(fd)
  }
  const buffer = new Uint8Array(65536)
  const size = BigInt(buffer.length)

  return {
    port: boundPort,
    recvBufferBytes: got[0],
    kernelDrops: () => {
      if (closed) return undefined
      meminfoLen[0] = meminfo.byteLength
      const r = c.getsockopt(
        fd,
        SOL_SOCKET,
        SO_MEMINFO,
        new Uint8Array(meminfo.buffer),
        new Uint8Array(meminfoLen.buffer),
      )
      return r === 0 && meminfoLen[0] > SK_MEMINFO_DROPS * 4 ? meminfo[SK_MEMINFO_DROPS] : undefined
    },
    run: (onDatagram, onBatch, onError) =>
      running ??= (async () => {
        // Datagrams taken off the socket and not relayed yet, in order,
        // and their bytes (bounded by `holdBytes`).
        const pending: Array<Uint8Array> = []
        let pendingBytes = 0
        // Empties the socket into `pending`: a recv and a copy each, a
        // microsecond or two, where relaying one costs ten times that.
        const drain = (): void => {
          while (!closing && pendingBytes < holdBytes) {
            const m = Number(c.recv(fd, buffer, size, MSG_DONTWAIT))
            if (m < 0) {
              const e = errno(c)
              if (e !== EAGAIN) onError(describe(c, e))
              return
            }
            pending.push(buffer.slice(0, m))
            pendingBytes += m
          }
        }
        try {
          while (!closing) {
            if (pending.length === 0) {
              const n = Number(await c.recvWait(fd, buffer, size, 0))
              if (closing) break
              if (n < 0) {
                onError(describe(c, errno(c)))
                await new Promise((r) => setTimeout(r, 10))
                continue
              }
              pending.push(buffer.slice(0, n))
              pendingBytes += n
            }
            drain()
            // Relays up to BATCH, emptying the socket again every
            // DRAIN_EVERY: the kernel buffer only has to hold what arrives
            // while a few datagrams are relayed.
            const turn = Math.min(pending.length, BATCH)
            for (let i = 0; i < turn && !closing; i++) {
              const d = pending[i]
              pendingBytes -= d.length
              onDatagram(d)
              if ((i + 1) % DRAIN_EVERY === 0) drain()
            }
            pending.splice(0, turn)
            onBatch()
            // More than a turn's worth waits: let the event loop run the
            // sessions (writing what was relayed) before the next turn.
            if (pending.length > 0) {
              drain()
              await new Promise((r) => setTimeout(r, 0))
            }
          }
        } finally {
          finish()
        }
      })(),
    close: () => {
      if (closing) return
      closing = true
      // Wakes the waiting recv (it returns 0 on a shut socket); the loop
      // closes the descriptor. Without a loop, close it now.
      c.shutdown(fd, SHUT_RDWR)
      if (running === undefined) finish()
    },
  }
}
