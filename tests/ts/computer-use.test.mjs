// sandbox.computerUse through the TypeScript SDK, on a real desktop that tests/test_typescript.py
// started through the daemon (Xvfb + xfce4, DISPLAY and the session bus in this environment):
// status, display, mouse, keyboard, screenshots (full, region, compressed), windows,
// accessibility, and screen recordings. What the SDK reports is checked against independent
// observers (xdotool, the PNG itself, what zenity prints).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { makeSandbox, env, waitFor, sleep } from './lib/sandbox.mjs'

let sandbox
let cu

before(async () => {
  sandbox = await makeSandbox()
  cu = sandbox.computerUse
})

const procs = []
after(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
})

function xdotool(...args) {
  return execFileSync('xdotool', args, { encoding: 'utf8', timeout: 10000 }).trim()
}

function pointer() {
  const m = /x:(\d+) y:(\d+)/.exec(xdotool('getmouselocation'))
  return { x: Number(m[1]), y: Number(m[2]) }
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(b64) {
  const png = Buffer.from(b64, 'base64')
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG', 'not a PNG')
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
}

/** A zenity entry dialog (title `title`), its pid, output and its OK / text nodes once visible. */
async function zenityEntry(title, text = 'hello') {
  const p = spawn('zenity', ['--entry', `--title=${title}`, '--text=Type', `--entry-text=${text}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  procs.push(p)
  let out = ''
  p.stdout.on('data', (d) => (out += d))
  const exited = new Promise((resolve) => p.on('exit', (code) => resolve(code)))
  let ok
  await waitFor(
    async () => {
      try {
        const found = await cu.accessibility.findNodes({ scope: 'pid', pid: p.pid, role: 'push button', name: 'OK', nameMatch: 'exact' })
        ok = found.matches?.[0]
      } catch (e) {
        // 404 until the application has registered with the accessibility bus.
        if (e.statusCode !== 404) throw e
      }
      return ok
    },
    20000,
    200,
  )
  assert.ok(ok, 'the zenity dialog never appeared in the accessibility tree')
  const textNode = (await cu.accessibility.findNodes({ scope: 'pid', pid: p.pid, role: 'text' })).matches[0]
  return { proc: p, pid: p.pid, ok, text: textNode, output: () => out, exited }
}

test('status and display info', async () => {
  const status = await cu.getStatus()
  assert.equal(status.status, 'active')
  const info = await cu.display.getInfo()
  assert.ok(info.displays.length >= 1)
  const d = info.displays[0]
  const m = /dimensions:\s+(\d+)x(\d+)/.exec(execFileSync('xdpyinfo', { encoding: 'utf8' }))
  assert.deepEqual([d.width, d.height], [Number(m[1]), Number(m[2])])
})

test('mouse: move, position, click, drag, scroll', async () => {
  const moved = await cu.mouse.move(321, 234)
  assert.deepEqual([moved.x, moved.y], [321, 234])
  assert.deepEqual(pointer(), { x: 321, y: 234 })
  const pos = await cu.mouse.getPosition()
  assert.deepEqual([pos.x, pos.y], [321, 234])
  const clicked = await cu.mouse.click(400, 300)
  assert.deepEqual([clicked.x, clicked.y], [400, 300])
  assert.deepEqual(pointer(), { x: 400, y: 300 })
  const dragged = await cu.mouse.drag(100, 100, 250, 180)
  assert.deepEqual([dragged.x, dragged.y], [250, 180])
  assert.deepEqual(pointer(), { x: 250, y: 180 })
  assert.equal(await cu.mouse.scroll(300, 300, 'down', 2), true)
  assert.deepEqual(pointer(), { x: 300, y: 300 })
  await assert.rejects(cu.mouse.scroll(300, 300, 'sideways'), (e) => e.statusCode === 400)
})

test('full-screen and compressed screenshots', async () => {
  const info = (await cu.display.getInfo()).displays[0]
  await cu.mouse.move(50, 60)
  const full = await cu.screenshot.takeFullScreen(true)
  assert.deepEqual(pngSize(full.screenshot), { width: info.width, height: info.height })
  assert.deepEqual([full.cursorPosition.x, full.cursorPosition.y], [50, 60])
  // Full-screen answers carry no size; compressed ones do.
  assert.equal(full.sizeBytes, undefined)

  const jpeg = await cu.screenshot.takeCompressed({ format: 'jpeg', quality: 50, scale: 0.5 })
  const bytes = Buffer.from(jpeg.screenshot, 'base64')
  assert.deepEqual([...bytes.subarray(0, 3)], [0xff, 0xd8, 0xff], 'not a JPEG')
  assert.equal(jpeg.sizeBytes, bytes.length)
  const png = await cu.screenshot.takeCompressed({ format: 'png', scale: 0.5 })
  assert.deepEqual(pngSize(png.screenshot), { width: Math.floor(info.width / 2), height: Math.floor(info.height / 2) })
})

test('region screenshots: the SDK swaps the arguments of takeRegion; the daemon answers what was sent', async () => {
  // SDK defect (0.218.0): Screenshot.takeRegion calls
  //   apiClient.takeRegionScreenshot(region.height, region.width, region.y, region.x, showCursor)
  // while the generated client's order is (x, y, width, height). So the daemon is asked for
  // x=height, y=width, width=y, height=x, and rightly answers with exactly that region.
  const region = { x: 10, y: 20, width: 300, height: 200 }
  const swapped = await cu.screenshot.takeRegion(region)
  assert.deepEqual(pngSize(swapped.screenshot), { width: region.y, height: region.x })
  // takeCompressedRegion passes the fields in the right order.
  const right = await cu.screenshot.takeCompressedRegion(region, { format: 'png' })
  assert.deepEqual(pngSize(right.screenshot), { width: region.width, height: region.height })
  // The raw route, called with the region the user meant, gives the region the user meant.
  const res = await fetch(`${env('DAYTONA_TS_DAEMON_URL')}/computeruse/screenshot/region?x=10&y=20&width=300&height=200`)
  assert.equal(res.status, 200)
  assert.deepEqual(pngSize((await res.json()).screenshot), { width: 300, height: 200 })
})

test('windows, keyboard and accessibility on a zenity dialog', async () => {
  const title = `TS dialog ${process.pid}`
  const z = await zenityEntry(title)
  // The dialog is listed among the windows, with its title.
  const listed = await waitFor(async () => (await cu.display.getWindows()).windows.find((w) => w.title === title), 10000, 200)
  assert.ok(listed, 'the zenity window is not listed')
  assert.ok(listed.width > 0 && listed.height > 0)
  // `id` is the owning process (as the Go daemon reports it), not the X window id.
  assert.equal(listed.id, z.pid)
  const xid = xdotool('search', '--name', `^${title}$`).split('\n')[0]
  const geometry = xdotool('getwindowgeometry', xid)
  assert.match(geometry, new RegExp(`Geometry: ${listed.width}x${listed.height}`))

  // Accessibility: the tree of the dialog, then focus the text field.
  const tree = await cu.accessibility.getTree({ scope: 'pid', pid: z.pid })
  assert.equal(tree.root.role, 'application')
  assert.equal(tree.root.name, 'zenity')
  const shallow = await cu.accessibility.getTree({ scope: 'pid', pid: z.pid, maxDepth: 0 })
  assert.ok(!shallow.root.children?.length)
  assert.ok(z.ok.actions.includes('click'), JSON.stringify(z.ok))
  assert.ok(z.text.states.includes('editable'), JSON.stringify(z.text))
  await cu.accessibility.focusNode(z.text.id)
  const focused = await waitFor(
    async () => (await cu.accessibility.findNodes({ scope: 'pid', pid: z.pid, states: ['focused'] })).matches?.some((n) => n.id === z.text.id),
    5000,
    100,
  )
  assert.ok(focused, 'the text field did not take the focus')

  // Keyboard: replace the text and confirm with Return; zenity prints what the field holds.
  await cu.keyboard.hotkey('ctrl+a')
  await cu.keyboard.type('typed by ts')
  await cu.keyboard.press('Return')
  assert.equal(await Promise.race([z.exited, sleep(10000).then(() => 'still running')]), 0)
  assert.equal(z.output(), 'typed by ts\n')
})

test('accessibility: setNodeValue and invokeNode', async () => {
  const z = await zenityEntry(`TS a11y ${process.pid}`)
  await cu.accessibility.setNodeValue(z.text.id, 'set through AT-SPI')
  await cu.accessibility.invokeNode(z.ok.id, 'click')
  assert.equal(await Promise.race([z.exited, sleep(10000).then(() => 'still running')]), 0)
  assert.equal(z.output(), 'set through AT-SPI\n')
  // The node is gone with its application.
  await assert.rejects(cu.accessibility.invokeNode(z.ok.id), (e) => e.statusCode >= 400 && e.statusCode < 500)
})

test('recordings: start, list, get, stop, download, delete', async () => {
  const dir = env('DAYTONA_TS_RECORDINGS_DIR')
  const started = await cu.recording.start('ts-label')
  assert.equal(started.status, 'recording')
  assert.match(started.fileName, /ts-label/)
  assert.equal(path.dirname(started.filePath), fs.realpathSync(dir))
  assert.ok((await cu.recording.list()).recordings.some((r) => r.id === started.id))
  await cu.mouse.move(200, 200)
  await sleep(1500)
  await cu.mouse.move(500, 400)
  const stopped = await cu.recording.stop(started.id)
  assert.equal(stopped.status, 'completed')
  assert.ok(stopped.durationSeconds > 1, JSON.stringify(stopped))
  assert.ok(stopped.sizeBytes > 0)
  const got = await cu.recording.get(started.id)
  assert.equal(got.status, 'completed')
  assert.equal(fs.statSync(got.filePath).size, got.sizeBytes)

  const local = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ts-rec-')), 'rec.mp4')
  await cu.recording.download(started.id, local)
  const data = fs.readFileSync(local)
  assert.ok(data.equals(fs.readFileSync(got.filePath)), 'the download differs from the file')
  assert.equal(data.subarray(4, 8).toString('latin1'), 'ftyp', 'not an MP4')

  await cu.recording.delete(started.id)
  assert.ok(!fs.existsSync(got.filePath))
  await assert.rejects(cu.recording.get(started.id), (e) => e.statusCode === 404)
})
