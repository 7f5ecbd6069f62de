// sandbox.codeInterpreter through the TypeScript SDK: the default context and created ones
// (state kept, cwd, isolation, list, delete), streaming callbacks, errors, envs, and the timeout.
//
// The TypeScript SDK reads the execution WebSocket differently from the Python one: it resolves
// `runCode` as soon as a `control` frame says `completed` or `interrupted`, and only maps the
// close code 4008 to DaytonaTimeoutError when no such frame came first. A timed-out execution
// must therefore end with close code 4008 and without a control frame announcing a normal end,
// or the TypeScript caller sees a success.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { DaytonaTimeoutError } from '@daytonaio/sdk'
import WebSocket from 'ws'
import { makeSandbox, daemonWorkdir, daemonUrl } from './lib/sandbox.mjs'

let sandbox
const ci = () => sandbox.codeInterpreter

before(async () => {
  sandbox = await makeSandbox()
})

test('runCode in the default context keeps state between runs', async () => {
  const first = await ci().runCode('ts_counter = 40\nprint("set")')
  assert.equal(first.stdout, 'set\n')
  assert.equal(first.stderr, '')
  assert.equal(first.error, undefined)
  const second = await ci().runCode('ts_counter += 2\nprint(ts_counter)')
  assert.equal(second.stdout, '42\n')
})

test('streaming callbacks get stdout, stderr and the error as they come', async () => {
  const events = []
  const result = await ci().runCode(
    [
      'import sys, time',
      'print("out-1", flush=True)',
      'time.sleep(0.3)',
      'print("err-1", file=sys.stderr, flush=True)',
      'time.sleep(0.3)',
      'print("out-2")',
      'raise KeyError("missing-key")',
    ].join('\n'),
    {
      onStdout: (m) => events.push(['stdout', m.output, Date.now()]),
      onStderr: (m) => events.push(['stderr', m.output, Date.now()]),
      onError: (e) => events.push(['error', e, Date.now()]),
    },
  )
  assert.deepEqual(
    events.map(([kind, v]) => [kind, kind === 'error' ? v.name : v]),
    [
      ['stdout', 'out-1\n'],
      ['stderr', 'err-1\n'],
      ['stdout', 'out-2\n'],
      ['error', 'KeyError'],
    ],
  )
  // Streamed, not delivered at the end: the first chunk came well before the last.
  assert.ok(events[2][2] - events[0][2] >= 400, `chunks were not streamed: ${JSON.stringify(events)}`)
  assert.equal(result.stdout, 'out-1\nout-2\n')
  assert.equal(result.stderr, 'err-1\n')
  assert.equal(result.error.name, 'KeyError')
  assert.equal(result.error.value, "'missing-key'")
  assert.match(result.error.traceback, /Traceback \(most recent call last\):/)
  assert.match(result.error.traceback, /KeyError: 'missing-key'/)
})

test('envs apply to one run only', async () => {
  const r = await ci().runCode('import os\nprint(os.environ.get("CI_TS_VAR"))', { envs: { CI_TS_VAR: 'scoped' } })
  assert.equal(r.stdout, 'scoped\n')
  const after = await ci().runCode('import os\nprint(os.environ.get("CI_TS_VAR"))')
  assert.equal(after.stdout, 'None\n')
})

test('contexts: created with a cwd, isolated, listed and deleted', async () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(daemonWorkdir(), 'ctx-')))
  const ctx = await ci().createContext(dir)
  try {
    assert.ok(ctx.id)
    assert.equal(ctx.cwd, dir)
    assert.equal(ctx.language, 'python')
    const r = await ci().runCode('import os\nctx_value = "only here"\nprint(os.getcwd())', { context: ctx })
    assert.equal(r.stdout, `${dir}\n`)
    assert.equal((await ci().runCode('print(ctx_value)', { context: ctx })).stdout, 'only here\n')
    // The default context does not see it.
    const other = await ci().runCode('print(ctx_value)')
    assert.equal(other.error?.name, 'NameError')
    const listed = await ci().listContexts()
    assert.ok(
      listed.some((c) => c.id === ctx.id && c.cwd === dir),
      JSON.stringify(listed),
    )
  } finally {
    await ci().deleteContext(ctx)
  }
  assert.ok(!(await ci().listContexts()).some((c) => c.id === ctx.id))
  // A run in a deleted context is refused (close 1008 `context not found`).
  await assert.rejects(ci().runCode('print(1)', { context: ctx }), /context not found/)
})

test('empty code is refused by the SDK before any request', async () => {
  await assert.rejects(ci().runCode('   '), /Code is required/)
})

test('a run that exceeds its timeout fails with DaytonaTimeoutError', async () => {
  const t0 = Date.now()
  await assert.rejects(
    ci().runCode('import time\nprint("started", flush=True)\ntime.sleep(30)\nprint("not reached")', { timeout: 1 }),
    (e) => {
      assert.ok(e instanceof DaytonaTimeoutError, `expected DaytonaTimeoutError, got ${e?.constructor?.name}: ${e?.message}`)
      return true
    },
  )
  assert.ok(Date.now() - t0 < 10000, 'the timeout was not applied')
  // The context is usable afterwards.
  const r = await ci().runCode('print("after timeout")')
  assert.equal(r.stdout, 'after timeout\n')
})

/** Runs `code` on a raw WebSocket (the `ws` package, as the SDK's) and collects what comes back. */
function rawExecute(base, payload) {
  return new Promise((resolve) => {
    const ws = new WebSocket(base.replace(/^http/, 'ws') + '/process/interpreter/execute')
    const frames = []
    const errors = []
    const timer = setTimeout(() => ws.terminate(), 10000)
    ws.on('open', () => ws.send(JSON.stringify(payload)))
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())))
    ws.on('error', (e) => errors.push(e.message))
    ws.on('close', (code, reason) => {
      clearTimeout(timer)
      resolve({ frames, errors, code, reason: reason.toString() })
    })
  })
}

test('what the daemon sends on a timeout: output, no end-of-run control frame, close 4008', async () => {
  // The same request as the SDK's, to show what the SDK gets to read.
  const r = await rawExecute(daemonUrl(), { code: 'import time\nprint("t0", flush=True)\ntime.sleep(30)', timeout: 1 })
  assert.equal(r.code, 4008, JSON.stringify(r))
  assert.deepEqual(r.frames[0], { type: 'stdout', text: 't0\n', name: '', value: '', traceback: '' })
  const ends = r.frames.filter((f) => f.type === 'control' && (f.text === 'completed' || f.text === 'interrupted'))
  assert.deepEqual(ends, [], `a timed-out run announced a normal end: ${JSON.stringify(r.frames)}`)
})
