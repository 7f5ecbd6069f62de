// JavaScript worker of one interpreter context of the Daytona toolbox daemon.
//
// Same channels as the Python worker: commands (JSON lines) on fd 4, protocol messages (JSON
// lines: ready, error, control) on fd 3, output on fd 1 and fd 2. State lives in one `vm`
// context kept for the worker's lifetime: globals and top-level declarations survive across
// executions. `console.*` writes synchronously to fd 1 / fd 2. A returned promise is awaited.
// SIGINT interrupts running code (`breakOnSigint`) or a pending await.
'use strict';

const fs = require('fs');
const vm = require('vm');
const path = require('path');
const { Writable } = require('stream');
const { Console } = require('console');
const { createRequire } = require('module');

const MAX_ERROR_TEXT = 1 << 20;

// Move the protocol descriptors to close-on-exec copies (node opens files with O_CLOEXEC), so
// child processes never inherit them.
function reopen(fd, flags) {
  const copy = fs.openSync(`/proc/self/fd/${fd}`, flags);
  fs.closeSync(fd);
  return copy;
}
const PROTO_FD = reopen(3, 'w');
const COMMAND_FD = reopen(4, 'r');

const pause = new Int32Array(new SharedArrayBuffer(4));
function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(pause, 0, 0, 1); // fd made non-blocking by process.stdout: wait, retry
    }
  }
}

function send(msg) {
  writeAll(PROTO_FD, Buffer.from(JSON.stringify(msg) + '\n'));
}

function fdStream(fd) {
  return new Writable({
    decodeStrings: false,
    write(chunk, encoding, cb) {
      try {
        writeAll(fd, typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk);
        cb();
      } catch (e) {
        cb(e);
      }
    },
  });
}

const userConsole = new Console({ stdout: fdStream(1), stderr: fdStream(2) });
const cwd = process.cwd();
const userRequire = createRequire(path.join(cwd, '[repl]'));
const sandbox = {
  console: userConsole,
  require: userRequire,
  module: { exports: {}, require: userRequire },
  __filename: path.join(cwd, '[repl]'),
  __dirname: cwd,
  process,
  Buffer,
  URL,
  URLSearchParams,
  TextEncoder,
  TextDecoder,
  AbortController,
  setTimeout,
  clearTimeout,
  setInterval,
  clearInterval,
  setImmediate,
  clearImmediate,
  queueMicrotask,
  structuredClone,
};
if (typeof fetch === 'function') sandbox.fetch = fetch;
sandbox.exports = sandbox.module.exports;
sandbox.global = sandbox;
sandbox.globalThis = sandbox;
const context = vm.createContext(sandbox);

let interruptAwait = null;
process.on('SIGINT', () => {
  if (interruptAwait) interruptAwait();
});
// Errors of callbacks that run after their execution ended must not end the worker.
process.on('uncaughtException', (e) => {
  try { userConsole.error(e && e.stack ? e.stack : String(e)); } catch (_) { /* nothing */ }
});
process.on('unhandledRejection', (e) => {
  try { userConsole.error('Unhandled rejection:', e && e.stack ? e.stack : e); } catch (_) { /* nothing */ }
});

class Interrupted extends Error {}

function clip(s) {
  return s.length <= MAX_ERROR_TEXT ? s : s.slice(0, MAX_ERROR_TEXT) + '\n[truncated]';
}

function describe(err) {
  let name = 'Error';
  let value;
  let traceback;
  if (err !== null && (typeof err === 'object' || typeof err === 'function')) {
    name = String(err.name || (err.constructor && err.constructor.name) || 'Error');
    value = err.message !== undefined ? String(err.message) : String(err);
    traceback = typeof err.stack === 'string' ? err.stack : `${name}: ${value}`;
  } else {
    value = String(err);
    traceback = `Uncaught ${value}`;
  }
  if (!traceback.endsWith('\n')) traceback += '\n';
  return { name, value: clip(value), traceback: clip(traceback) };
}

function applyDaemonEnv(env) {
  if (!env) return;
  for (const name of env.unset || []) delete process.env[name];
  for (const [name, value] of Object.entries(env.set || {})) process.env[name] = value;
}

function applyEnvs(envs) {
  const saved = new Map();
  for (const [name, value] of Object.entries(envs || {})) {
    if (!saved.has(name)) saved.set(name, Object.prototype.hasOwnProperty.call(process.env, name) ? process.env[name] : null);
    if (value === null) delete process.env[name];
    else process.env[name] = String(value);
  }
  return saved;
}

function restoreEnvs(saved) {
  for (const [name, value] of saved) {
    if (value === null) delete process.env[name];
    else process.env[name] = value;
  }
}

async function run(cmd) {
  const id = cmd.id || '';
  let outcome = 'completed';
  let saved = new Map();
  try {
    applyDaemonEnv(cmd.env);
    saved = applyEnvs(cmd.envs);
    let result = vm.runInContext(String(cmd.code || ''), context, { filename: '<stdin>', breakOnSigint: true });
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
      const interrupted = new Promise((_, reject) => {
        interruptAwait = () => reject(new Interrupted());
      });
      result = await Promise.race([result, interrupted]);
    }
  } catch (err) {
    if (err instanceof Interrupted || (err && err.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED')) {
      outcome = 'interrupted';
    } else {
      send({ type: 'error', id, ...describe(err) });
    }
  } finally {
    interruptAwait = null;
    restoreEnvs(saved);
  }
  send({ type: 'control', id, text: outcome });
}

// Commands run one after another, in arrival order.
let chain = Promise.resolve();
let buffered = '';
const input = fs.createReadStream(null, { fd: COMMAND_FD, encoding: 'utf8', highWaterMark: 1 << 16 });
input.on('data', (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    let cmd;
    try {
      cmd = JSON.parse(line);
      if (cmd === null || typeof cmd !== 'object') throw new TypeError('command must be a JSON object');
    } catch (e) {
      send({ type: 'error', id: '', name: e.name, value: e.message, traceback: `${e.name}: ${e.message}\n` });
      continue;
    }
    chain = chain.then(() => run(cmd));
  }
});
input.on('end', () => process.exit(0));

send({ type: 'ready' });
