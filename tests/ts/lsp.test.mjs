// Language servers through the TypeScript SDK: `sandbox.createLspServer(...)` for python (pylsp)
// and typescript (typescript-language-server), as a TypeScript user drives them: start, didOpen,
// completions, documentSymbols, sandboxSymbols, didClose, stop; and the SDK's error class for a
// server that was never started.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { makeSandbox, daemonWorkdir } from './lib/sandbox.mjs'

let sandbox

before(async () => {
  sandbox = await makeSandbox()
})

const CLASS = 5
const METHOD = 6
const FUNCTION = 12

const PY = `class Greeter:
    def greet(self, name):
        return "hello " + name


def make_greeter():
    return Greeter()


greeter = make_greeter()
greeter.`

const TS = `export class Greeter {
  greet(): string {
    return 'hello'
  }
}

export function makeGreeter(): Greeter {
  return new Greeter()
}

const greeter = makeGreeter()
greeter.`

function project(name, file, source) {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(daemonWorkdir(), `lsp-${name}-`)))
  const filePath = path.join(dir, file)
  fs.writeFileSync(filePath, source)
  if (name === 'typescript') {
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true } }))
  }
  const lines = source.split('\n')
  return { dir, filePath, end: { line: lines.length - 1, character: lines.at(-1).length } }
}

const labels = (list) => (list.items ?? []).map((i) => i.label)
const lineOf = (source, needle) => source.split('\n').findIndex((l) => l.includes(needle))

test('python: completions and symbols from pylsp', async () => {
  const p = project('python', 'main.py', PY)
  const lsp = await sandbox.createLspServer('python', p.dir)
  await lsp.start()
  try {
    await lsp.didOpen(p.filePath)
    const got = await lsp.completions(p.filePath, p.end)
    assert.ok(labels(got).some((l) => l.startsWith('greet')), `greet missing: ${labels(got)}`)
    assert.equal(typeof got.isIncomplete, 'boolean')

    const symbols = await lsp.documentSymbols(p.filePath)
    const byName = Object.fromEntries(symbols.map((s) => [s.name, s]))
    assert.equal(byName.Greeter?.kind, CLASS, JSON.stringify(symbols))
    assert.equal(byName.make_greeter?.kind, FUNCTION, JSON.stringify(symbols))
    assert.equal(byName.Greeter.location.uri, `file://${p.filePath}`)
    assert.equal(byName.make_greeter.location.range.start.line, lineOf(PY, 'def make_greeter'))

    // pylsp has no workspace/symbol: the refusal names the method, as a 400.
    await assert.rejects(lsp.sandboxSymbols('Greet'), (e) => e.statusCode === 400 && /workspace\/symbol/.test(e.message))
    await lsp.didClose(p.filePath)
  } finally {
    await lsp.stop()
  }
  // Stopped: the SDK's calls are refused as "not initialized" (400).
  await assert.rejects(lsp.completions(p.filePath, p.end), (e) => e.statusCode === 400 && /not initialized/i.test(e.message))
})

test('typescript: member completions and workspace symbols', async () => {
  const p = project('typescript', 'main.ts', TS)
  const lsp = await sandbox.createLspServer('typescript', p.dir)
  await lsp.start()
  try {
    await lsp.didOpen(p.filePath)
    const got = await lsp.completions(p.filePath, p.end)
    assert.ok(labels(got).includes('greet'), `greet missing: ${labels(got)}`)
    assert.ok(!labels(got).includes('makeGreeter'), 'a member completion offered a global')

    const symbols = await lsp.documentSymbols(p.filePath)
    const byName = Object.fromEntries(symbols.map((s) => [s.name, s]))
    assert.equal(byName.Greeter?.kind, CLASS, JSON.stringify(symbols))
    assert.equal(byName.greet?.kind, METHOD, JSON.stringify(symbols))
    assert.equal(byName.makeGreeter?.kind, FUNCTION, JSON.stringify(symbols))

    const found = await lsp.sandboxSymbols('Greet')
    const names = found.map((s) => s.name)
    assert.ok(names.includes('Greeter') && names.includes('makeGreeter'), JSON.stringify(names))
    await lsp.didClose(p.filePath)
  } finally {
    await lsp.stop()
  }
})

test('an unknown language is refused by the SDK itself, before any request', async () => {
  await assert.rejects(async () => sandbox.createLspServer('cobol', daemonWorkdir()), /Invalid languageId/)
})
