/**
 * The relay's flags: TLS for the client tools (`user`, `flooder`, `ping`),
 * and TLS sessions and UDP ingress for the `daemon` command. Parsed by the
 * tools' one flag parser (`args.ts`).
 *
 * @module
 */
import type { TlsOptions } from "../client/session/tls.ts"
import type { DaemonConfig, TlsConfig, UdpIngressConfig } from "../daemon/mod.ts"
import { type FlagSpec, int, list, type Parsed, str } from "./args.ts"

/**
 * `--tls-ca`, `--tls-cert`, `--tls-key` and `--tls-name` of the client tools.
 *
 * @since 0.1.0
 * @category cli
 */
export const TLS_CLIENT_FLAGS: ReadonlyArray<FlagSpec> = [
  {
    names: ["--tls-ca"],
    kind: "string",
    key: "tlsCa",
    value: "file",
    help: "connect over TLS, trusting the authority in this PEM file for the daemon's certificate",
  },
  {
    names: ["--tls-cert"],
    kind: "string",
    key: "tlsCert",
    value: "file",
    help: "connect over TLS with this client certificate (PEM; with --tls-key)",
  },
  { names: ["--tls-key"], kind: "string", key: "tlsKey", value: "file", help: "the client certificate's key (PEM)" },
  {
    names: ["--tls-name"],
    kind: "string",
    key: "tlsName",
    value: "name",
    help: "the name the daemon's certificate must carry (default: the host dialled)",
  },
]

const readPem = (flag: string, path: string): string | { readonly problem: string } => {
  try {
    const text = Deno.readTextFileSync(path)
    return text.includes("-----BEGIN ") ? text : { problem: `${flag} "${path}" holds no PEM text` }
  } catch (e) {
    return { problem: `${flag} cannot read "${path}": ${e instanceof Error ? e.message : String(e)}` }
  }
}

/**
 * The `tls` option of `connect` from the client tools' flags: `undefined`
 * when no TLS flag was given, or the problem (a file that cannot be read, a
 * certificate without its key).
 *
 * @since 0.1.0
 * @category cli
 */
export const tlsClientOptions = (
  p: Parsed,
): { readonly tls: TlsOptions | undefined } | { readonly problem: string } => {
  const ca = str(p, "tlsCa", "")
  const cert = str(p, "tlsCert", "")
  const key = str(p, "tlsKey", "")
  const name = str(p, "tlsName", "")
  if (ca === "" && cert === "" && key === "" && name === "") return { tls: undefined }
  if ((cert === "") !== (key === "")) return { problem: "--tls-cert and --tls-key go together" }
  const out: { caCerts?: Array<string>; cert?: string; key?: string; serverName?: string } = {}
  if (ca !== "") {
    const pem = readPem("--tls-ca", ca)
    if (typeof pem !== "string") return pem
    out.caCerts = [pem]
  }
  if (cert !== "") {
    const c = readPem("--tls-cert", cert)
    if (typeof c !== "string") return c
    const k = readPem("--tls-key", key)
    if (typeof k !== "string") return k
    out.cert = c
    out.key = k
  }
  if (name !== "") out.serverName = name
  return { tls: out }
}

/**
 * Parses `[HOST:]PORT:GROUP` (the `--udp-ingress` value); the host defaults
 * to loopback.
 *
 * @since 0.1.0
 * @category cli
 */
export const parseUdpIngress = (value: string): UdpIngressConfig | string => {
  const parts = value.split(":")
  if (parts.length < 2) return `"${value}" is not [HOST:]PORT:GROUP`
  const group = parts[parts.length - 1]
  const portText = parts[parts.length - 2]
  const host = parts.slice(0, -2).join(":").replace(/^\[(.*)\]$/, "$1")
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port > 65535) return `"${value}": the port "${portText}" is not 0..65535`
  if (group.length === 0) return `"${value}" names no group`
  return host.length === 0 ? { port, group } : { host, port, group }
}

/**
 * The daemon's relay flags: TLS sessions and UDP ingress.
 *
 * @since 0.1.0
 * @category cli
 */
export const RELAY_DAEMON_FLAGS: ReadonlyArray<FlagSpec> = [
  {
    names: ["--tls-port"],
    kind: "int",
    key: "tlsPort",
    max: 65535,
    value: "n",
    help: "TLS sessions on this TCP port (0 picks a free one); needs --tls-cert and --tls-key",
  },
  { names: ["--tls-cert"], kind: "string", key: "tlsCert", value: "file", help: "the daemon's certificate (PEM)" },
  { names: ["--tls-key"], kind: "string", key: "tlsKey", value: "file", help: "the daemon's private key (PEM)" },
  {
    names: ["--tls-ca"],
    kind: "string",
    key: "tlsCa",
    value: "file",
    help: "require TLS clients to present a certificate issued by this authority (PEM)",
  },
  {
    names: ["--tls-allow"],
    kind: "list",
    key: "tlsAllow",
    value: "subject",
    help: "with --tls-ca, let in only this client certificate subject (repeatable)",
  },
  {
    names: ["--udp-ingress"],
    kind: "list",
    key: "udpIngress",
    value: "[host:]port:group",
    help: "multicast each UDP datagram on PORT into GROUP (repeatable; host 127.0.0.1 by default)",
    check: (v) => {
      const r = parseUdpIngress(v)
      return typeof r === "string" ? r : undefined
    },
  },
]

/**
 * The `tls` and `udpIngress` fields of the daemon's configuration from its
 * flags, or the problem. Certificate files are read by the daemon as it
 * starts (an unreadable one is a configuration error, exit 2).
 *
 * @since 0.1.0
 * @category cli
 */
export const relayConfigOf = (p: Parsed): Pick<DaemonConfig, "tls" | "udpIngress"> | string => {
  const port = int(p, "tlsPort", -1)
  const cert = str(p, "tlsCert", "")
  const key = str(p, "tlsKey", "")
  const ca = str(p, "tlsCa", "")
  const allow = list(p, "tlsAllow")
  let tls: TlsConfig | undefined
  if (port >= 0) {
    if (cert === "" || key === "") return "--tls-port needs --tls-cert and --tls-key"
    if (allow.length > 0 && ca === "") return "--tls-allow needs --tls-ca"
    tls = {
      port,
      cert: { path: cert },
      key: { path: key },
      ...(ca === "" ? {} : { ca: { path: ca } }),
      ...(allow.length === 0 ? {} : { allowSubjects: allow }),
    }
  } else if (cert !== "" || key !== "" || ca !== "" || allow.length > 0) {
    return "--tls-cert, --tls-key, --tls-ca and --tls-allow need --tls-port"
  }
  const udpIngress: Array<UdpIngressConfig> = []
  for (const v of list(p, "udpIngress")) {
    const r = parseUdpIngress(v)
    if (typeof r === "string") return `--udp-ingress ${r}`
    udpIngress.push(r)
  }
  return {
    ...(tls === undefined ? {} : { tls }),
    ...(udpIngress.length === 0 ? {} : { udpIngress }),
  }
}
