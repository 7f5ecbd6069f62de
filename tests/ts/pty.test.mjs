// PTY sessions through the TypeScript SDK: createPty (the one-round-trip create-connect URL the
// SDK builds itself, envs in a WebSocket sub-protocol token, the exit-control sub-protocol the
// daemon must echo), input and output, resize, disconnect and reconnect with connectPty, kill,
// and the exit codes `wait()` reports.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { makeSandbox, daemonHome, daemonWorkdir, unique, waitFor, raw } from './lib/sandbox.mjs'

let sandbox

before(async () => {
  sandbox = await makeSandbox()
  // A real image has shell start-up files; without any, zsh would run its new-user wizard.
  for (const rc of ['.zshrc', '.bashrc']) fs.writeFileSync(path.join(daemonHome(), rc), '')
})

/** Collects a PTY's output; `until(text)` waits for text to show up. */
function collector() {
  const decoder = new TextDecoder()
  const c = {
    out: '',
    onData: (bytes) => {
      c.out += decoder.decode(bytes, { stream: true })
    },
    async until(marker, ms = 10000) {
      const ok = await waitFor(() => c.out.includes(marker), ms)
      assert.ok(ok, `${JSON.stringify(marker)} not in PTY output:\n${JSON.stringify(c.out)}`)
    },
  }
  return c
}

test('createPty runs a shell with cwd, envs and size; exit code from wait()', async () => {
  const id = unique('pty')
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(daemonWorkdir(), 'pty-')))
  const out = collector()
  const pty = await sandbox.process.createPty({
    id,
    cwd: dir,
    envs: { PTY_VAR: 'from the subprotocol token', OTHER: 'ü' },
    cols: 100,
    rows: 30,
    onData: out.onData,
  })
  assert.ok(pty.isConnected())
  const info = await sandbox.process.getPtySessionInfo(id)
  assert.equal(info.id, id)
  assert.equal(info.active, true)
  assert.equal(info.cols, 100)
  assert.equal(info.rows, 30)
  assert.equal(info.cwd, dir)
  assert.ok((await sandbox.process.listPtySessions()).some((s) => s.id === id))

  await pty.sendInput('printf "<%s|%s|%s>\\n" "$PTY_VAR" "$OTHER" "$(pwd)"; stty size\n')
  await out.until(`<from the subprotocol token|ü|${dir}>`)
  await out.until('30 100')

  await pty.sendInput('exit 3\n')
  const result = await pty.wait()
  assert.equal(result.exitCode, 3)
  assert.equal(result.error, 'non-zero exit')
  assert.equal(pty.exitCode, 3)
  assert.equal(pty.isConnected(), false)
})

test('a clean exit reports exit code 0', async () => {
  const out = collector()
  const pty = await sandbox.process.createPty({ id: unique('pty0'), onData: out.onData })
  await pty.sendInput('echo bye; exit\n')
  const result = await pty.wait()
  assert.equal(result.exitCode, 0)
  assert.equal(result.error, undefined)
  assert.match(out.out, /bye/)
})

test('resize changes the terminal size the shell sees', async () => {
  const id = unique('resize')
  const out = collector()
  const pty = await sandbox.process.createPty({ id, onData: out.onData })
  try {
    const info = await pty.resize(132, 43)
    assert.equal(info.cols, 132)
    assert.equal(info.rows, 43)
    await pty.sendInput('stty size\n')
    await out.until('43 132')
    const viaProcess = await sandbox.process.resizePtySession(id, 90, 20)
    assert.equal(viaProcess.cols, 90)
    assert.equal((await sandbox.process.getPtySessionInfo(id)).rows, 20)
    // More than 1000 columns is refused and the terminal keeps its size.
    await assert.rejects(pty.resize(1001, 10), (e) => e.statusCode === 400 && /cols/.test(e.message))
    assert.equal((await sandbox.process.getPtySessionInfo(id)).cols, 90)
  } finally {
    await pty.kill()
  }
})

test('disconnect leaves the shell running; connectPty reattaches to it', async () => {
  const id = unique('recon')
  const first = collector()
  const pty = await sandbox.process.createPty({ id, onData: first.onData })
  await pty.sendInput('RECON_STATE=kept-$((6*7))\n')
  await pty.sendInput('echo ready-$((1+1))\n')
  await first.until('ready-2')
  await pty.disconnect()
  await waitFor(() => !pty.isConnected(), 5000)
  // Still there, still running.
  const info = await sandbox.process.getPtySessionInfo(id)
  assert.equal(info.active, true)

  const second = collector()
  const again = await sandbox.process.connectPty(id, { onData: second.onData })
  assert.ok(again.isConnected())
  await again.sendInput('echo "state=$RECON_STATE"\n')
  await second.until('state=kept-42')
  await again.sendInput('exit 5\n')
  assert.equal((await again.wait()).exitCode, 5)
})

test('kill ends the PTY session and the handle reports it ended', async () => {
  const id = unique('kill')
  const out = collector()
  const pty = await sandbox.process.createPty({ id, onData: out.onData })
  await pty.sendInput('echo alive\n')
  await out.until('alive')
  await pty.kill()
  const result = await pty.wait()
  // Killed by a signal: not a normal exit code 0.
  assert.notEqual(result.exitCode, 0, JSON.stringify(result))
  const gone = await waitFor(async () => !(await sandbox.process.listPtySessions()).some((s) => s.id === id), 5000)
  assert.ok(gone, 'the killed session is still listed')
  await assert.rejects(sandbox.process.getPtySessionInfo(id), (e) => e.statusCode === 404)
})

test('connectPty to an unknown session fails', async () => {
  await assert.rejects(sandbox.process.connectPty(unique('none'), { onData: () => {} }), (e) => e instanceof Error)
})

test('createPty with an id already in use is refused and leaves the first session alone', async () => {
  const id = unique('dup')
  const out = collector()
  const pty = await sandbox.process.createPty({ id, onData: out.onData })
  try {
    await assert.rejects(sandbox.process.createPty({ id, onData: () => {} }), (e) => e instanceof Error)
    await pty.sendInput('echo still-here\n')
    await out.until('still-here')
    // The SDK only sees the WebSocket fail; the daemon's answer over plain HTTP names the conflict.
    const r = await raw('POST', '/process/pty', { id })
    assert.equal(r.status, 409, r.text)
    assert.match(r.json?.error ?? r.json?.message ?? '', /already exists/)
  } finally {
    await pty.kill()
  }
})
