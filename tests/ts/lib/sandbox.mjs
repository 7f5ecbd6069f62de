// The SDK's own `Sandbox`, pointed at the daemon under test, without any Daytona control plane.
//
// tests/test_typescript.py starts a daemon and a loopback toolbox proxy (harness.proxy) and runs
// each `*.test.mjs` file with:
//   DAYTONA_TS_PROXY_URL    the proxy; the SDK calls {proxy}/{sandboxId}/{route}, the proxy strips
//                           the sandbox id, as Daytona's proxy does
//   DAYTONA_TS_SANDBOX_ID   the sandbox id the SDK puts in front of every route
//   DAYTONA_TS_DAEMON_URL   the daemon itself, for raw checks the SDK cannot make
//   DAYTONA_TS_DAEMON_HOME  the daemon's HOME, DAYTONA_TS_DAEMON_WORKDIR its working directory
//   DAYTONA_TS_DISPLAY      the desktop's X display (computer-use file only)
//
// `new Daytona(...)` only builds API clients; `useDeprecatedPolling: true` keeps it from opening
// its Socket.IO event stream (the subscription manager then has no dispatcher and every
// `subscribe()` is a no-op). The Sandbox is built with the same arguments `Daytona.get()` passes,
// from a hand-made sandbox DTO carrying the proxy URL. `apiUrl` is a loopback port nobody
// listens on, so a call that would reach the control plane fails at once instead of going out.
import { Daytona, Sandbox } from '@daytonaio/sdk'
import net from 'node:net'

export function env(name) {
  const value = process.env[name]
  if (!value) {
    throw new Error(`${name} is not set: run this file through tests/test_typescript.py`)
  }
  return value
}

export const proxyUrl = () => env('DAYTONA_TS_PROXY_URL')
export const daemonUrl = () => env('DAYTONA_TS_DAEMON_URL')
export const sandboxId = () => env('DAYTONA_TS_SANDBOX_ID')
export const daemonHome = () => env('DAYTONA_TS_DAEMON_HOME')
export const daemonWorkdir = () => env('DAYTONA_TS_DAEMON_WORKDIR')

async function deadPort() {
  return await new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** A Sandbox of the SDK; `labels` may carry the code-run language (`code-toolbox-language`). */
export async function makeSandbox(labels = {}) {
  const daytona = new Daytona({
    apiKey: 'harness-api-key',
    apiUrl: `http://127.0.0.1:${await deadPort()}/api`,
    target: 'harness',
    useDeprecatedPolling: true,
  })
  const id = sandboxId()
  const dto = {
    id,
    organizationId: 'harness-org',
    name: id,
    user: 'daytona',
    env: {},
    labels,
    public: false,
    networkBlockAll: false,
    kvm: false,
    target: 'harness',
    cpu: 1,
    gpu: 0,
    memory: 1,
    disk: 1,
    state: 'started',
    toolboxProxyUrl: proxyUrl(),
  }
  return new Sandbox(
    dto,
    structuredClone(daytona.clientConfig),
    Daytona.createAxiosInstance(),
    daytona.sandboxApi,
    daytona.getAnalyticsApiUrl,
    daytona.eventSubscriptionManager,
  )
}

/** Raw HTTP to the daemon (no SDK), for what the SDK does not expose. */
export async function raw(method, path, body) {
  const init = { method, headers: {} }
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  const res = await fetch(daemonUrl() + path, init)
  const text = await res.text()
  let json
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, text, json, headers: res.headers }
}

export function unique(prefix = 'TS') {
  return `${prefix}_${Math.random().toString(36).slice(2, 10).toUpperCase()}`
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `predicate` (sync or async) until it holds or `ms` pass; returns its last value. */
export async function waitFor(predicate, ms = 10000, interval = 50) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await predicate()
    if (value || Date.now() > deadline) return value
    await sleep(interval)
  }
}
