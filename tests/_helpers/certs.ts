/**
 * Throwaway X.509 certificates for tests and examples, made with WebCrypto
 * (ECDSA P-256, SHA-256) and a small DER writer: no openssl, no key files
 * committed. Each call makes fresh keys.
 *
 * @module
 */
import { concatBytes } from "../../src/protocol/bytes.ts"

const concat = concatBytes

const length = (n: number): Uint8Array => {
  if (n < 0x80) return Uint8Array.of(n)
  const bytes: Array<number> = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Uint8Array.of(0x80 | bytes.length, ...bytes)
}

const tlv = (tag: number, ...body: ReadonlyArray<Uint8Array>): Uint8Array => {
  const b = concat(body)
  return concat([Uint8Array.of(tag), length(b.length), b])
}

const seq = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => tlv(0x30, ...parts)
const set = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => tlv(0x31, ...parts)
const explicit = (n: number, ...parts: ReadonlyArray<Uint8Array>): Uint8Array => tlv(0xa0 + n, ...parts)
const octets = (b: Uint8Array): Uint8Array => tlv(0x04, b)
const bits = (b: Uint8Array, unused = 0): Uint8Array => tlv(0x03, Uint8Array.of(unused), b)
const utf8 = (s: string): Uint8Array => tlv(0x0c, new TextEncoder().encode(s))
const TRUE = Uint8Array.of(0x01, 0x01, 0xff)

/** A non-negative INTEGER from big-endian magnitude bytes. */
const integer = (magnitude: Uint8Array): Uint8Array => {
  let i = 0
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++
  const m = magnitude.subarray(i)
  return tlv(0x02, (m[0] & 0x80) !== 0 ? concat([Uint8Array.of(0), m]) : m)
}

const oid = (dotted: string): Uint8Array => {
  const ns = dotted.split(".").map(Number)
  const out: Array<number> = [ns[0] * 40 + ns[1]]
  for (const n of ns.slice(2)) {
    const chunk: Array<number> = [n & 0x7f]
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f))
    out.push(...chunk)
  }
  return tlv(0x06, Uint8Array.from(out))
}

const utcTime = (d: Date): Uint8Array => {
  const p = (n: number) => String(n).padStart(2, "0")
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`
  return tlv(0x17, new TextEncoder().encode(s))
}

const name = (commonName: string): Uint8Array => seq(set(seq(oid("2.5.4.3"), utf8(commonName))))

const extension = (id: string, critical: boolean, value: Uint8Array): Uint8Array =>
  critical ? seq(oid(id), TRUE, octets(value)) : seq(oid(id), octets(value))

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"))

const pem = (label: string, der: Uint8Array): string => {
  let bin = ""
  for (const b of der) bin += String.fromCharCode(b)
  const b64 = btoa(bin).replace(/.{64}/g, "$&\n").replace(/\n$/, "")
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}

/**
 * A certificate with its private key, both PEM.
 */
export interface Issued {
  /** The certificate (`-----BEGIN CERTIFICATE-----`). */
  readonly cert: string
  /** The PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`). */
  readonly key: string
}

/**
 * A certificate authority that can issue leaf certificates.
 */
export interface Authority extends Issued {
  /** Issues a certificate for `commonName`, valid for `dns` and `ips` as subject alternative names. */
  readonly issue: (
    commonName: string,
    alt?: { readonly dns?: ReadonlyArray<string>; readonly ips?: ReadonlyArray<string> },
  ) => Promise<Issued>
}

const newKeys = (): Promise<CryptoKeyPair> =>
  crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])

const sign = async (key: CryptoKey, tbs: Uint8Array): Promise<Uint8Array> => {
  const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, new Uint8Array(tbs)))
  // WebCrypto answers r || s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }.
  return seq(integer(raw.subarray(0, 32)), integer(raw.subarray(32)))
}

const certificate = async (
  subject: string,
  issuer: string,
  publicKey: CryptoKey,
  signer: CryptoKey,
  extensions: ReadonlyArray<Uint8Array>,
): Promise<string> => {
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", publicKey))
  const serial = crypto.getRandomValues(new Uint8Array(16))
  serial[0] &= 0x7f
  const now = Date.now()
  const tbs = seq(
    explicit(0, integer(Uint8Array.of(2))),
    integer(serial),
    ECDSA_SHA256,
    name(issuer),
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 24 * 3600_000))),
    name(subject),
    spki,
    explicit(3, seq(...extensions)),
  )
  return pem("CERTIFICATE", seq(tbs, ECDSA_SHA256, bits(await sign(signer, tbs))))
}

const privateKey = async (k: CryptoKey): Promise<string> =>
  pem("PRIVATE KEY", new Uint8Array(await crypto.subtle.exportKey("pkcs8", k)))

const ipBytes = (ip: string): Uint8Array => Uint8Array.from(ip.split(".").map(Number))

/**
 * A fresh certificate authority named `commonName` (valid from an hour ago
 * for a day).
 */
export const makeAuthority = async (commonName: string): Promise<Authority> => {
  const ca = await newKeys()
  const cert = await certificate(commonName, commonName, ca.publicKey, ca.privateKey, [
    extension("2.5.29.19", true, seq(TRUE)), // basicConstraints cA
    extension("2.5.29.15", true, bits(Uint8Array.of(0x06), 1)), // keyUsage keyCertSign, cRLSign
  ])
  return {
    cert,
    key: await privateKey(ca.privateKey),
    issue: async (cn, alt = {}) => {
      const leaf = await newKeys()
      const san = [
        ...(alt.dns ?? []).map((d) => tlv(0x82, new TextEncoder().encode(d))),
        ...(alt.ips ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
      ]
      const exts = [
        extension("2.5.29.19", true, seq()), // basicConstraints: not a CA
        extension("2.5.29.15", true, bits(Uint8Array.of(0x80), 7)), // keyUsage digitalSignature
        // extKeyUsage serverAuth, clientAuth
        extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"), oid("1.3.6.1.5.5.7.3.2"))),
      ]
      if (san.length > 0) exts.push(extension("2.5.29.17", false, seq(...san)))
      return {
        cert: await certificate(cn, commonName, leaf.publicKey, ca.privateKey, exts),
        key: await privateKey(leaf.privateKey),
      }
    },
  }
}
