// Sandbox-level calls and git through the TypeScript SDK: working and home directories,
// getMetricsLatest (the daemon's /system metrics), and git on a local repository, each checked
// against the git CLI on the same directory.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { makeSandbox, daemonHome, daemonWorkdir } from './lib/sandbox.mjs'

let sandbox

before(async () => {
  sandbox = await makeSandbox()
})

const git = (cwd, ...args) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim()

test('getWorkDir and getUserHomeDir name the daemon directories', async () => {
  assert.equal(fs.realpathSync(await sandbox.getWorkDir()), fs.realpathSync(daemonWorkdir()))
  assert.equal(fs.realpathSync(await sandbox.getUserHomeDir()), fs.realpathSync(daemonHome()))
})

test('getMetricsLatest returns a current, plausible sample', async () => {
  const before = Date.now()
  const m = await sandbox.getMetricsLatest()
  assert.ok(Number.isInteger(m.cpuCount) && m.cpuCount >= 1, JSON.stringify(m))
  assert.ok(m.cpuUsedPct >= 0 && m.cpuUsedPct <= 100, JSON.stringify(m))
  assert.ok(m.memTotal > 0 && m.memUsed > 0 && m.memUsed <= m.memTotal, JSON.stringify(m))
  assert.ok(m.diskTotal > 0 && m.diskUsed > 0 && m.diskUsed <= m.diskTotal, JSON.stringify(m))
  // A real timestamp from the daemon, not the SDK's fallback to "now" for a missing one.
  assert.ok(m.timestamp instanceof Date)
  assert.ok(Math.abs(m.timestamp.getTime() - before) < 60000, String(m.timestamp))
})

test('git: init, add, status, commit, branches, checkout, as the git CLI sees them', async () => {
  const repo = fs.realpathSync(fs.mkdtempSync(path.join(daemonWorkdir(), 'repo-')))
  await sandbox.git.init(repo, false, 'main')
  assert.equal(git(repo, 'symbolic-ref', '--short', 'HEAD'), 'main')
  fs.writeFileSync(path.join(repo, 'a.txt'), 'first\n')
  fs.writeFileSync(path.join(repo, 'b.txt'), 'untracked\n')
  await sandbox.git.add(repo, ['a.txt'])
  assert.equal(git(repo, 'diff', '--cached', '--name-only'), 'a.txt')

  const status = await sandbox.git.status(repo)
  assert.equal(status.currentBranch, 'main')
  const byName = Object.fromEntries(status.fileStatus.map((f) => [f.name, f]))
  assert.deepEqual(Object.keys(byName).sort(), ['a.txt', 'b.txt'])
  assert.equal(byName['a.txt'].staging, 'Added')
  assert.equal(byName['b.txt'].worktree, 'Untracked')

  const commit = await sandbox.git.commit(repo, 'first commit', 'TS Tester', 'ts@example.com')
  assert.equal(commit.sha, git(repo, 'rev-parse', 'HEAD'))
  assert.equal(git(repo, 'log', '-1', '--format=%an <%ae> %s'), 'TS Tester <ts@example.com> first commit')
  // Nothing staged: refused unless allowEmpty.
  await assert.rejects(sandbox.git.commit(repo, 'empty', 'TS Tester', 'ts@example.com'), (e) => e.statusCode >= 400 && e.statusCode < 500)
  const empty = await sandbox.git.commit(repo, 'empty', 'TS Tester', 'ts@example.com', true)
  assert.equal(empty.sha, git(repo, 'rev-parse', 'HEAD'))

  await sandbox.git.createBranch(repo, 'feature')
  assert.deepEqual((await sandbox.git.branches(repo)).branches.sort(), ['feature', 'main'])
  await sandbox.git.checkoutBranch(repo, 'feature')
  assert.equal(git(repo, 'symbolic-ref', '--short', 'HEAD'), 'feature')
  assert.equal((await sandbox.git.status(repo)).currentBranch, 'feature')
  await sandbox.git.checkoutBranch(repo, 'main')
  await sandbox.git.deleteBranch(repo, 'feature')
  assert.deepEqual((await sandbox.git.branches(repo)).branches, ['main'])
  await assert.rejects(sandbox.git.checkoutBranch(repo, 'no-such-branch'), (e) => e.statusCode >= 400 && e.statusCode < 500)
})

test('git: clone a local repository and read its remotes', async () => {
  const origin = fs.realpathSync(fs.mkdtempSync(path.join(daemonWorkdir(), 'origin-')))
  git(origin, 'init', '-q', '-b', 'trunk')
  fs.writeFileSync(path.join(origin, 'f.txt'), 'x\n')
  git(origin, 'add', 'f.txt')
  execFileSync('git', ['-C', origin, '-c', 'user.name=o', '-c', 'user.email=o@example.com', 'commit', '-qm', 'init'])
  const clone = path.join(fs.realpathSync(daemonWorkdir()), `clone-${process.pid}`)
  await sandbox.git.clone(`file://${origin}`, clone)
  assert.equal(fs.readFileSync(path.join(clone, 'f.txt'), 'utf8'), 'x\n')
  assert.equal(git(clone, 'rev-parse', 'HEAD'), git(origin, 'rev-parse', 'HEAD'))
  assert.equal((await sandbox.git.status(clone)).currentBranch, 'trunk')
  assert.equal(await sandbox.git.remoteGet(clone, 'origin'), `file://${origin}`)
})
