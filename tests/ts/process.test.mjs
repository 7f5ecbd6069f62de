// process.executeCommand, process.codeRun (incl. matplotlib charts) and sessions (sync, async,
// log streaming through the SDK's WebSocket demultiplexer, input) through the TypeScript SDK.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { makeSandbox, daemonWorkdir, unique, waitFor } from './lib/sandbox.mjs'

let sandbox
let python
let javascript

before(async () => {
  sandbox = await makeSandbox()
  python = await makeSandbox({ 'code-toolbox-language': 'python' })
  javascript = await makeSandbox({ 'code-toolbox-language': 'javascript' })
})

test('executeCommand returns stdout and the exit code', async () => {
  const ok = await sandbox.process.executeCommand('echo hello; echo err >&2')
  assert.equal(ok.exitCode, 0)
  // stdout and stderr come back together, in order.
  assert.equal(ok.result, 'hello\nerr\n')
  assert.equal(ok.artifacts.stdout, ok.result)

  const failed = await sandbox.process.executeCommand('sh -c "exit 7"')
  assert.equal(failed.exitCode, 7)
})

test('executeCommand honours cwd and env', async () => {
  const dir = fs.mkdtempSync(path.join(daemonWorkdir(), 'cwd-'))
  const r = await sandbox.process.executeCommand('pwd; printf %s "$TS_VAR"', dir, { TS_VAR: 'value with spaces' })
  assert.equal(r.exitCode, 0)
  assert.equal(r.result, `${fs.realpathSync(dir)}\nvalue with spaces`)
})

test('executeCommand with a timeout ends the command and says so', async () => {
  const t0 = Date.now()
  let outcome
  try {
    outcome = await sandbox.process.executeCommand('sleep 30', undefined, undefined, 1)
  } catch (e) {
    outcome = e
  }
  assert.ok(Date.now() - t0 < 15000, 'the timeout was not applied')
  // The daemon answers a timed-out command with an error (408/timeout), not a success.
  assert.ok(outcome instanceof Error, `expected an error, got ${JSON.stringify(outcome)}`)
  assert.match(outcome.message, /timeout|timed out/i)
})

test('codeRun runs python with argv and env', async () => {
  const r = await python.process.codeRun('import os, sys\nprint(sys.argv[1:], os.environ["CR_VAR"])', {
    argv: ['a', 'b c'],
    env: { CR_VAR: 'from-env' },
  })
  assert.equal(r.exitCode, 0)
  assert.equal(r.result.trim(), "['a', 'b c'] from-env")
})

test('codeRun reports a failing program with its exit code and traceback', async () => {
  const r = await python.process.codeRun('import sys\nprint("before")\nsys.exit(3)')
  assert.equal(r.exitCode, 3)
  assert.match(r.result, /before/)
  const boom = await python.process.codeRun('raise ValueError("boom-ts")')
  assert.notEqual(boom.exitCode, 0)
  assert.match(boom.result, /ValueError: boom-ts/)
})

test('codeRun runs javascript', async () => {
  const r = await javascript.process.codeRun('console.log([1, 2, 3].map((x) => x * 2).join(","))')
  assert.equal(r.exitCode, 0)
  assert.equal(r.result.trim(), '2,4,6')
})

test('codeRun returns matplotlib charts', async () => {
  const code = [
    'import matplotlib.pyplot as plt',
    'plt.figure()',
    'plt.plot([0, 1, 2], [0, 1, 4], label="squares")',
    'plt.title("TS line chart")',
    'plt.xlabel("x axis")',
    'plt.ylabel("y axis")',
    'plt.show()',
    'plt.figure()',
    'plt.bar(["a", "b"], [3, 5])',
    'plt.title("TS bar chart")',
    'plt.show()',
    'print("charted")',
  ].join('\n')
  const r = await python.process.codeRun(code)
  assert.equal(r.exitCode, 0, r.result)
  assert.match(r.result, /charted/)
  const charts = r.artifacts.charts
  assert.equal(charts.length, 2, JSON.stringify(charts).slice(0, 500))
  const [line, bar] = charts
  assert.equal(line.type, 'line')
  assert.equal(line.title, 'TS line chart')
  assert.equal(line.x_label, 'x axis')
  assert.equal(line.y_label, 'y axis')
  assert.equal(line.elements.length, 1)
  assert.equal(line.elements[0].label, 'squares')
  assert.deepEqual(
    line.elements[0].points.map(([x, y]) => [Number(x), Number(y)]),
    [
      [0, 0],
      [1, 1],
      [2, 4],
    ],
  )
  // The PNG is base64 of a real PNG.
  assert.equal(Buffer.from(line.png, 'base64').subarray(1, 4).toString('latin1'), 'PNG')
  assert.equal(bar.type, 'bar')
  assert.equal(bar.title, 'TS bar chart')
  assert.deepEqual(
    bar.elements.map((e) => [e.label, Number(e.value)]),
    [
      ['a', 3],
      ['b', 5],
    ],
  )
})

test('a session keeps its state between synchronous commands', async () => {
  const id = unique('sess')
  await sandbox.process.createSession(id)
  try {
    const dir = fs.mkdtempSync(path.join(daemonWorkdir(), 'sess-'))
    const cd = await sandbox.process.executeSessionCommand(id, { command: `cd ${dir} && export SESS_VAR=kept` })
    assert.equal(cd.exitCode, 0)
    const r = await sandbox.process.executeSessionCommand(id, { command: 'pwd; echo "$SESS_VAR"; echo to-err >&2' })
    assert.equal(r.exitCode, 0)
    assert.equal(r.stdout, `${fs.realpathSync(dir)}\nkept\n`)
    assert.equal(r.stderr, 'to-err\n')
    const failed = await sandbox.process.executeSessionCommand(id, { command: 'false' })
    assert.equal(failed.exitCode, 1)

    const session = await sandbox.process.getSession(id)
    assert.equal(session.sessionId, id)
    assert.equal(session.commands.length, 3)
    const cmd = await sandbox.process.getSessionCommand(id, r.cmdId)
    assert.equal(cmd.exitCode, 0)
    assert.equal(cmd.command, 'pwd; echo "$SESS_VAR"; echo to-err >&2')
    const logs = await sandbox.process.getSessionCommandLogs(id, r.cmdId)
    assert.equal(logs.stdout, r.stdout)
    assert.equal(logs.stderr, 'to-err\n')
    assert.ok((await sandbox.process.listSessions()).some((s) => s.sessionId === id))
  } finally {
    await sandbox.process.deleteSession(id)
  }
  assert.ok(!(await sandbox.process.listSessions()).some((s) => s.sessionId === id))
  await assert.rejects(sandbox.process.getSession(id), (e) => e.statusCode === 404)
})

test('an asynchronous command streams its logs to the callbacks until it ends', async () => {
  const id = unique('async')
  await sandbox.process.createSession(id)
  try {
    const started = await sandbox.process.executeSessionCommand(id, {
      command: 'for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.2; done; exit 4',
      runAsync: true,
    })
    assert.ok(started.cmdId, 'no command id')
    assert.equal(started.exitCode ?? undefined, undefined)
    let stdout = ''
    let stderr = ''
    // Resolves when the daemon closes the log stream, i.e. when the command has ended.
    await sandbox.process.getSessionCommandLogs(
      id,
      started.cmdId,
      (chunk) => (stdout += chunk),
      (chunk) => (stderr += chunk),
    )
    assert.equal(stdout, 'out1\nout2\nout3\n')
    assert.equal(stderr, 'err1\nerr2\nerr3\n')
    const cmd = await sandbox.process.getSessionCommand(id, started.cmdId)
    assert.equal(cmd.exitCode, 4)
  } finally {
    await sandbox.process.deleteSession(id)
  }
})

test('input sent to a running command reaches its stdin', async () => {
  const id = unique('input')
  await sandbox.process.createSession(id)
  try {
    const started = await sandbox.process.executeSessionCommand(id, {
      command: 'read a; read b; echo "got:$a:$b"',
      runAsync: true,
    })
    await sandbox.process.sendSessionCommandInput(id, started.cmdId, 'first\n')
    await sandbox.process.sendSessionCommandInput(id, started.cmdId, 'second\n')
    const done = await waitFor(async () => {
      const c = await sandbox.process.getSessionCommand(id, started.cmdId)
      return c.exitCode !== undefined && c.exitCode !== null ? c : undefined
    }, 10000)
    assert.ok(done, 'the command did not end after its input')
    assert.equal(done.exitCode, 0)
    const logs = await sandbox.process.getSessionCommandLogs(id, started.cmdId)
    assert.match(logs.stdout, /got:first:second/)
    // Input to a finished command is refused.
    await assert.rejects(sandbox.process.sendSessionCommandInput(id, started.cmdId, 'late\n'), (e) => e.statusCode >= 400)
  } finally {
    await sandbox.process.deleteSession(id)
  }
})
