// Shared helpers for the mcpmw integration tests.
//
// The binary under test comes from the environment variable MCPMW_BIN (CTest sets it to the
// `mcpmw` target's file). Everything else (server-everything, the fixtures) is resolved relative
// to this file, so the tests run from any working directory.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const INTEGRATION_DIR = path.resolve(HERE, '..');
export const FIXTURES_DIR = path.join(INTEGRATION_DIR, 'fixtures');
export const REPO_ROOT = path.resolve(INTEGRATION_DIR, '..', '..');

// The node binary used to run servers behind mcpmw. Its basename is `node`, which mcpmw's
// default allowlist accepts.
export const NODE = process.execPath;

/**
 * The environment for processes the tests start: this process's, without mcpmw's own settings
 * (MCP_PROXY_*), so that a developer's shell cannot change what the tests check, and without
 * the test runner's marker.
 */
export function baseEnv(extra = {}) {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('MCP_PROXY_') || key === 'NODE_TEST_CONTEXT') delete env[key];
  }
  return { ...env, ...extra };
}

/** The mcpmw binary from MCPMW_BIN; throws a clear error when it is unset or not executable. */
export function mcpmwBin() {
  const bin = process.env.MCPMW_BIN;
  if (!bin) {
    throw new Error(
      'MCPMW_BIN is not set: point it at the mcpmw binary, e.g. ' +
        'MCPMW_BIN=build/debug/src/app/mcpmw node --test tests/integration/ ' +
        '(under CTest it is set automatically).');
  }
  const abs = path.resolve(bin);
  try {
    accessSync(abs, constants.X_OK);
  } catch {
    throw new Error(`MCPMW_BIN=${bin} is not an executable file (resolved to ${abs}); build it first`);
  }
  return abs;
}

/** Path of server-everything's entry point (`node <it> stdio` starts it on stdio). */
export function everythingServerPath() {
  const p = path.join(INTEGRATION_DIR, 'node_modules', '@modelcontextprotocol', 'server-everything',
    'dist', 'index.js');
  if (!existsSync(p)) {
    throw new Error(`${p} is missing: run \`npm ci\` in ${INTEGRATION_DIR}`);
  }
  return p;
}

export function fixturePath(name) {
  return path.join(FIXTURES_DIR, name);
}

/**
 * Arguments for `mcpmw stdio [options] -- CMD ARGS…`.
 * @param {string[]} serverCommand  the server's argv (command first)
 * @param {object} [o]
 * @param {number} [o.killTimeoutMs=500]
 * @param {string[]} [o.extra]  further mcpmw options, placed before `--`
 */
export function mcpmwArgs(serverCommand, { killTimeoutMs = 500, extra = [] } = {}) {
  return ['stdio', '--kill-timeout-ms', String(killTimeoutMs), ...extra, '--', ...serverCommand];
}

/** The argv (without mcpmw itself) that runs server-everything behind mcpmw. */
export function everythingArgs(o = {}) {
  return mcpmwArgs([NODE, everythingServerPath(), 'stdio'], o);
}

/**
 * StdioClientTransport parameters for `mcpmw stdio --kill-timeout-ms … -- node <server-everything> stdio`.
 * stderr is piped: read it with `collectStderr(transport)` (set MCPMW_TEST_VERBOSE=1 to inherit it).
 */
export function everythingTransportParams(o = {}) {
  return {
    command: mcpmwBin(),
    args: everythingArgs(o),
    env: baseEnv(o.env),
    stderr: process.env.MCPMW_TEST_VERBOSE ? 'inherit' : 'pipe',
  };
}

/** Keeps the last `limit` characters of a readable stream (e.g. a child's stderr). */
export function tailCollector(stream, limit = 64 * 1024) {
  const state = { text: '' };
  if (stream) {
    stream.setEncoding?.('utf8');
    stream.on('data', (chunk) => {
      state.text += chunk;
      if (state.text.length > limit) state.text = state.text.slice(-limit);
    });
  }
  return {
    get text() { return state.text; },
  };
}

/** Runs `fn`; if it throws, the error message gets the tail of `collector`'s text appended. */
export async function withStderrOnFailure(collector, fn) {
  try {
    return await fn();
  } catch (err) {
    const tail = collector?.text?.slice(-4000);
    if (tail && err && typeof err === 'object') {
      try {
        err.message = `${err.message}\n--- mcpmw stderr (tail) ---\n${tail}`;
      } catch { /* read-only message */ }
    }
    throw err;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Is the process alive? A zombie (exited, not yet reaped) counts as dead, since in containers
 * the reaper of orphans may be slow or absent.
 */
export function isAlive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Polls until `pid` is gone; returns true if it went within `timeoutMs`. */
export async function waitGone(pid, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(25);
  }
  return !isAlive(pid);
}

/** Polls `pred` until it returns a truthy value; returns it, or throws after `timeoutMs`. */
export async function waitFor(pred, timeoutMs, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** All live descendants of `pid` (children, grandchildren, …), from /proc. */
export function descendants(pid) {
  const parentOf = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] === 'Z' || rest[0] === 'X') continue;
      parentOf.set(Number(name), Number(rest[1]));
    } catch { /* raced with exit */ }
  }
  const out = [];
  const frontier = [pid];
  while (frontier.length) {
    const p = frontier.pop();
    for (const [child, parent] of parentOf) {
      if (parent === p) {
        out.push(child);
        frontier.push(child);
      }
    }
  }
  return out;
}

/** Resolves with {code, signal} when `child` exits (immediately if it already has). */
export function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Rejects after `ms` with a message naming `what`; for racing against a promise. */
export function deadline(ms, what) {
  let timer;
  const p = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  p.cancel = () => clearTimeout(timer);
  return p;
}

export async function within(ms, what, promise) {
  const d = deadline(ms, what);
  try {
    return await Promise.race([promise, d]);
  } finally {
    d.cancel();
  }
}

/**
 * Closes an SDK Client whose transport is a StdioClientTransport running mcpmw, and checks that
 * mcpmw and every process it started are gone. Returns mcpmw's {code, signal}.
 */
export async function closeStdioClient(client, transport, { timeoutMs = 10000 } = {}) {
  const pid = transport.pid;
  // The SDK keeps the ChildProcess in a private field; we need it for the exit code.
  const proc = transport._process;
  const kids = pid ? descendants(pid) : [];
  const exit = proc ? exited(proc) : Promise.resolve({ code: null, signal: null });
  await client.close();
  const status = await within(timeoutMs, 'mcpmw to exit after stdin EOF', exit);
  for (const kid of kids) {
    if (!(await waitGone(kid, timeoutMs))) {
      throw new Error(`process ${kid} started by mcpmw (pid ${pid}) is still alive after mcpmw exited`);
    }
  }
  return status;
}

/** Spawns mcpmw with the given args; stdio all piped. */
export function spawnMcpmw(args, { env = {}, cwd } = {}) {
  return spawn(mcpmwBin(), args, {
    stdio: ['pipe', 'pipe', process.env.MCPMW_TEST_VERBOSE ? 'inherit' : 'pipe'],
    env: baseEnv(env),
    cwd,
  });
}

/** A 1 MiB (in UTF-8 bytes) string with multi-byte characters spread through it. */
export function bigPayload(bytes = 1024 * 1024) {
  const unit = 'mcpmw-1MiB-round-trip-é€😀-0123456789abcdefghijklmnopqrstuvwxyz|';
  const unitBytes = Buffer.byteLength(unit);
  let s = unit.repeat(Math.floor(bytes / unitBytes));
  s += 'x'.repeat(bytes - Buffer.byteLength(s));
  return s;
}
