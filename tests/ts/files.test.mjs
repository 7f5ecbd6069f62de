// sandbox.fs through the TypeScript SDK: uploads and downloads (buffers, local files, streams,
// several at once), folders, details, listing, move, delete, find, search, replace, permissions.
// Every answer is compared with what is on disk (the daemon runs on this machine).
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { DaytonaNotFoundError } from '@daytonaio/sdk'
import { makeSandbox, daemonWorkdir } from './lib/sandbox.mjs'

let sandbox
let root // an absolute directory of this run, below the daemon's working directory
let local // a local scratch directory

before(async () => {
  sandbox = await makeSandbox()
  root = fs.realpathSync(fs.mkdtempSync(path.join(daemonWorkdir(), 'files-')))
  local = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-files-'))
})

const at = (...parts) => path.join(root, ...parts)

async function readAll(stream) {
  const chunks = []
  for await (const c of stream) chunks.push(Buffer.from(c))
  return Buffer.concat(chunks)
}

test('uploadFile from a buffer and downloadFile back to a buffer', async () => {
  const data = crypto.randomBytes(200_000)
  await sandbox.fs.uploadFile(data, at('up', 'nested', 'blob.bin'))
  assert.ok(fs.readFileSync(at('up', 'nested', 'blob.bin')).equals(data), 'file on disk differs')
  const back = await sandbox.fs.downloadFile(at('up', 'nested', 'blob.bin'))
  assert.ok(Buffer.isBuffer(back))
  assert.ok(back.equals(data), 'downloaded bytes differ')
})

test('uploadFile from a local path and downloadFile to a local path', async () => {
  const src = path.join(local, 'src.txt')
  fs.writeFileSync(src, 'from a local file\n')
  await sandbox.fs.uploadFile(src, at('local.txt'))
  assert.equal(fs.readFileSync(at('local.txt'), 'utf8'), 'from a local file\n')
  const dst = path.join(local, 'out', 'copy.txt')
  await sandbox.fs.downloadFile(at('local.txt'), dst)
  assert.equal(fs.readFileSync(dst, 'utf8'), 'from a local file\n')
})

test('relative paths are resolved against the working directory', async () => {
  const rel = path.relative(daemonWorkdir(), at('relative.txt'))
  await sandbox.fs.uploadFile(Buffer.from('rel'), rel)
  assert.equal(fs.readFileSync(at('relative.txt'), 'utf8'), 'rel')
  assert.equal((await sandbox.fs.downloadFile(rel)).toString(), 'rel')
})

test('uploadFileStream sends a Node stream (chunked) and reports progress', async () => {
  const parts = Array.from({ length: 16 }, (_, i) => crypto.randomBytes(64 * 1024 + i))
  let sent = 0
  await sandbox.fs.uploadFileStream(Readable.from(parts), at('stream', 'up.bin'), {
    onProgress: (p) => (sent = p.bytesSent),
  })
  const want = Buffer.concat(parts)
  assert.ok(fs.readFileSync(at('stream', 'up.bin')).equals(want), 'streamed upload differs on disk')
  assert.equal(sent, want.length)
})

test('uploadFileStream accepts a web ReadableStream', async () => {
  const body = new Blob(['web ', 'stream ', 'body']).stream()
  await sandbox.fs.uploadFileStream(body, at('stream', 'web.txt'))
  assert.equal(fs.readFileSync(at('stream', 'web.txt'), 'utf8'), 'web stream body')
})

test('downloadFileStream streams the file and reports progress', async () => {
  const data = crypto.randomBytes(3 * 1024 * 1024 + 7)
  fs.mkdirSync(at('dl'), { recursive: true })
  fs.writeFileSync(at('dl', 'big.bin'), data)
  let received = 0
  const stream = await sandbox.fs.downloadFileStream(at('dl', 'big.bin'), {
    onProgress: (p) => (received = p.bytesReceived),
  })
  const got = await readAll(stream)
  assert.equal(got.length, data.length)
  assert.ok(got.equals(data), 'streamed download differs')
  assert.equal(received, data.length)
})

test('downloadFileStream of a missing file fails with DaytonaNotFoundError', async () => {
  await assert.rejects(
    (async () => readAll(await sandbox.fs.downloadFileStream(at('dl', 'missing.bin'))))(),
    (e) => e instanceof DaytonaNotFoundError,
  )
})

test('uploadFiles and downloadFiles move several files at once, with per-file errors', async () => {
  await sandbox.fs.uploadFiles([
    { source: Buffer.from('one'), destination: at('multi', 'one.txt') },
    { source: Buffer.from('two'), destination: at('multi', 'sub', 'two.txt') },
  ])
  assert.equal(fs.readFileSync(at('multi', 'one.txt'), 'utf8'), 'one')
  assert.equal(fs.readFileSync(at('multi', 'sub', 'two.txt'), 'utf8'), 'two')
  const answers = await sandbox.fs.downloadFiles([
    { source: at('multi', 'one.txt') },
    { source: at('multi', 'sub', 'two.txt'), destination: path.join(local, 'two.txt') },
    { source: at('multi', 'nope.txt') },
  ])
  assert.equal(answers[0].error, undefined)
  assert.equal(Buffer.from(answers[0].result).toString(), 'one')
  assert.equal(answers[1].error, undefined)
  assert.equal(fs.readFileSync(path.join(local, 'two.txt'), 'utf8'), 'two')
  assert.ok(answers[2].error, 'a missing file must carry an error')
  assert.equal(answers[2].errorDetails?.statusCode, 404)
})

test('downloadFile of a missing file fails with DaytonaNotFoundError', async () => {
  await assert.rejects(sandbox.fs.downloadFile(at('missing.txt')), (e) => e instanceof DaytonaNotFoundError)
})

test('createFolder with a mode, getFileDetails, listFiles', async () => {
  await sandbox.fs.createFolder(at('made'), '750')
  const st = fs.statSync(at('made'))
  assert.ok(st.isDirectory())
  assert.equal(st.mode & 0o777, 0o750)
  fs.writeFileSync(at('made', 'a.txt'), 'abc')
  fs.mkdirSync(at('made', 'inner'))

  const info = await sandbox.fs.getFileDetails(at('made', 'a.txt'))
  assert.equal(info.name, 'a.txt')
  assert.equal(info.size, 3)
  assert.equal(info.isDir, false)
  assert.equal(new Date(info.modifiedAt).getTime() > 0, true)
  const dir = await sandbox.fs.getFileDetails(at('made'))
  assert.equal(dir.isDir, true)
  // Permission bits as 4-digit octal (what the Go daemon answers), not `ls -l` text.
  assert.equal(dir.permissions, '0750')

  const listed = await sandbox.fs.listFiles(at('made'))
  assert.deepEqual(listed.map((f) => [f.name, f.isDir]).sort(), [
    ['a.txt', false],
    ['inner', true],
  ])
  await assert.rejects(sandbox.fs.getFileDetails(at('made', 'nope')), (e) => e instanceof DaytonaNotFoundError)
})

test('moveFiles renames and deleteFile removes (recursive for folders)', async () => {
  fs.mkdirSync(at('mv'), { recursive: true })
  fs.writeFileSync(at('mv', 'from.txt'), 'moving')
  await sandbox.fs.moveFiles(at('mv', 'from.txt'), at('mv', 'to.txt'))
  assert.ok(!fs.existsSync(at('mv', 'from.txt')))
  assert.equal(fs.readFileSync(at('mv', 'to.txt'), 'utf8'), 'moving')

  await sandbox.fs.deleteFile(at('mv', 'to.txt'))
  assert.ok(!fs.existsSync(at('mv', 'to.txt')))
  fs.writeFileSync(at('mv', 'keep.txt'), 'x')
  // A non-empty folder needs `recursive`.
  await assert.rejects(sandbox.fs.deleteFile(at('mv')), (e) => e.statusCode >= 400 && e.statusCode < 500)
  assert.ok(fs.existsSync(at('mv', 'keep.txt')))
  await sandbox.fs.deleteFile(at('mv'), true)
  assert.ok(!fs.existsSync(at('mv')))
})

test('findFiles returns the matching lines with file and line number', async () => {
  fs.mkdirSync(at('find', 'deep'), { recursive: true })
  fs.writeFileSync(at('find', 'a.ts'), 'const a = 1\n// TODO: first\n')
  fs.writeFileSync(at('find', 'deep', 'b.ts'), 'x\ny\n// TODO: second\n')
  fs.writeFileSync(at('find', 'c.txt'), 'nothing here\n')
  const matches = await sandbox.fs.findFiles(at('find'), 'TODO:')
  const got = matches.map((m) => [m.file, m.line, m.content.trim()]).sort()
  assert.deepEqual(got, [
    [at('find', 'a.ts'), 2, '// TODO: first'],
    [at('find', 'deep', 'b.ts'), 3, '// TODO: second'],
  ])
})

test('searchFiles finds files by name glob', async () => {
  fs.mkdirSync(at('search', 'sub'), { recursive: true })
  for (const f of ['one.py', 'two.txt', 'sub/three.py']) fs.writeFileSync(at('search', f), '')
  const r = await sandbox.fs.searchFiles(at('search'), '*.py')
  assert.deepEqual([...r.files].sort(), [at('search', 'one.py'), at('search', 'sub', 'three.py')])
})

test('replaceInFiles rewrites the files and reports per-file results', async () => {
  fs.mkdirSync(at('replace'), { recursive: true })
  fs.writeFileSync(at('replace', 'a.txt'), 'old value, old value\n')
  fs.writeFileSync(at('replace', 'b.txt'), 'nothing old? yes: old\n')
  const results = await sandbox.fs.replaceInFiles([at('replace', 'a.txt'), at('replace', 'b.txt'), at('replace', 'missing.txt')], 'old', 'new')
  const byFile = Object.fromEntries(results.map((r) => [r.file, r]))
  assert.equal(byFile[at('replace', 'a.txt')].success, true)
  assert.equal(byFile[at('replace', 'b.txt')].success, true)
  assert.equal(byFile[at('replace', 'missing.txt')].success, false)
  assert.ok(byFile[at('replace', 'missing.txt')].error)
  assert.equal(fs.readFileSync(at('replace', 'a.txt'), 'utf8'), 'new value, new value\n')
  assert.equal(fs.readFileSync(at('replace', 'b.txt'), 'utf8'), 'nothing new? yes: new\n')
})

test('setFilePermissions changes the mode and the owner', async () => {
  fs.writeFileSync(at('perm.sh'), '#!/bin/sh\n')
  await sandbox.fs.setFilePermissions(at('perm.sh'), { mode: '755' })
  assert.equal(fs.statSync(at('perm.sh')).mode & 0o777, 0o755)
  await sandbox.fs.setFilePermissions(at('perm.sh'), { mode: '0600' })
  assert.equal(fs.statSync(at('perm.sh')).mode & 0o777, 0o600)
  const me = os.userInfo()
  // Owner and group by name: the current ones, which any user may set.
  const groupName = (await sandbox.process.executeCommand(`id -gn`)).result.trim()
  await sandbox.fs.setFilePermissions(at('perm.sh'), { owner: me.username, group: groupName })
  const st = fs.statSync(at('perm.sh'))
  assert.equal(st.uid, me.uid)
  const info = await sandbox.fs.getFileDetails(at('perm.sh'))
  // Owner and group come back as numeric ids in text.
  assert.equal(info.owner, String(me.uid))
  assert.equal(info.group, String(st.gid))
  assert.equal(info.permissions, '0600')
  // Numeric ids are accepted too.
  await sandbox.fs.setFilePermissions(at('perm.sh'), { owner: String(me.uid), group: String(st.gid) })
  assert.equal(fs.statSync(at('perm.sh')).uid, me.uid)
  // A mode that is not octal is refused, and nothing changes.
  await assert.rejects(sandbox.fs.setFilePermissions(at('perm.sh'), { mode: 'rwx' }), (e) => e.statusCode === 400)
  assert.equal(fs.statSync(at('perm.sh')).mode & 0o777, 0o600)
})
