// The WebSocket close handshake as the TypeScript SDK's `ws` client meets it.
//
// The SDK closes its sockets itself: `runCode` right after the `completed` frame, a PTY handle on
// `disconnect()`, log streaming when its caller stops. `ws.close()` sends a close frame without a
// status code; RFC 6455 §5.5.1 says the other side answers with a close frame (echoing the code;
// none here), and only then drops the connection. Two things went wrong here:
//  * an endpoint that drops the TCP connection without answering: the client sees 1006
//    (abnormal closure) instead of a clean close;
//  * a proxy that answers with the status code 0 (what aiohttp reports for "no status"): `ws`
//    raises "Invalid WebSocket frame: invalid status code 0" as an uncaught exception, after the
//    SDK has stopped listening, which crashes whatever runs next.
// Every route is checked on the daemon directly and through the toolbox proxy the SDK goes by.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { daemonUrl, proxyUrl, sandboxId, unique, raw } from './lib/sandbox.mjs'

const bases = () => [
  ['daemon', daemonUrl()],
  ['proxy', `${proxyUrl()}/${sandboxId()}`],
]

/** Opens `path`, sends `first` (if any), closes from the client after `ms` without a status code. */
function closeFirst(base, path, { first, protocols = [], ms = 300 } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(base.replace(/^http/, 'ws') + path, protocols)
    const errors = []
    let closedByUs = false
    const timer = setTimeout(() => ws.terminate(), 10000)
    ws.on('open', () => {
      if (first) ws.send(first)
      setTimeout(() => {
        closedByUs = true
        ws.close()
      }, ms)
    })
    ws.on('error', (e) => errors.push(e.message))
    ws.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, errors, closedByUs })
    })
  })
}

function assertCleanClose(where, r) {
  assert.deepEqual(r.errors, [], `${where}: ${JSON.stringify(r)}`)
  assert.ok(r.closedByUs, `${where}: the server closed first, nothing was checked`)
  // 1005: the answer echoed "no status"; 1000 is accepted too.
  assert.ok([1000, 1005].includes(r.code), `${where}: the client saw close code ${r.code} (1006 = no close frame came back)`)
}

test('interpreter execute: a client close mid-run is answered', async () => {
  for (const [name, base] of bases()) {
    const r = await closeFirst(base, '/process/interpreter/execute', { first: JSON.stringify({ code: 'import time\ntime.sleep(2)' }) })
    assertCleanClose(`interpreter via ${name}`, r)
  }
})

test('session log streaming: a client close is answered', async () => {
  const id = unique('wsclose')
  assert.equal((await raw('POST', '/process/session', { sessionId: id })).status, 201)
  const cmd = (await raw('POST', `/process/session/${id}/exec`, { command: 'sleep 3', runAsync: true })).json
  for (const [name, base] of bases()) {
    const r = await closeFirst(base, `/process/session/${id}/command/${cmd.cmdId}/logs?follow=true`)
    assertCleanClose(`logs via ${name}`, r)
  }
  await raw('DELETE', `/process/session/${id}`)
})

test('PTY connect: a client close is answered', async () => {
  const id = unique('wsclose')
  assert.equal((await raw('POST', '/process/pty', { id })).status, 201)
  for (const [name, base] of bases()) {
    const r = await closeFirst(base, `/process/pty/${id}/connect`, { protocols: ['X-Daytona-Pty-Exit-Control'] })
    assertCleanClose(`pty via ${name}`, r)
  }
  await raw('DELETE', `/process/pty/${id}`)
})
