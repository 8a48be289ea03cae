#!/usr/bin/env node
// The mcpmw demo client: dependency-free. It starts
//     $MCPMW_BIN stdio -- node demo/server.mjs
// talks MCP to it over newline-delimited JSON (initialize, notifications/initialized,
// tools/list, tools/call echo.uppercase), sends one malformed line to show mcpmw answering it
// with -32700 itself, then closes stdin and waits for mcpmw to shut down.
//
// MCPMW_BIN defaults to build/release/src/app/mcpmw in this repository. Paths are resolved
// relative to this script, so it runs from any working directory. Exit 0 on success; on any
// failure (or after 20 s) it prints `Demo failed: <reason>` and exits 1.
import { spawn } from 'node:child_process';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

import { mcpmwBinary } from './mcpmw_binary.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const SERVER = path.join(HERE, 'server.mjs');
const TIMEOUT_MS = 20_000;
const MAX_SHOWN = 240;

const started = Date.now();
let child = null;

function fail(reason) {
  console.log(`Demo failed: ${reason}`);
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  process.exit(1);
}

const overall = setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);

function resolveBinary() {
  try {
    return mcpmwBinary();
  } catch (e) {
    return fail(e.message);
  }
}

const compact = (text) => (text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}… (${text.length} chars)` : text);

// ---- a tiny newline-delimited JSON-RPC connection over the child's stdio ----
const incoming = [];
const waiters = [];
let exitStatus = null;

function deliver() {
  for (let i = 0; i < waiters.length; i++) {
    const w = waiters[i];
    const j = incoming.findIndex(w.match);
    if (j >= 0) {
      const [msg] = incoming.splice(j, 1);
      waiters.splice(i--, 1);
      w.resolve(msg);
    }
  }
}

function waitFor(match, what) {
  return new Promise((resolve, reject) => {
    if (exitStatus) {
      reject(new Error(`mcpmw exited (${JSON.stringify(exitStatus)}) before ${what}`));
      return;
    }
    waiters.push({ match, resolve, reject, what });
    deliver();
  });
}

function sendLine(line) {
  console.log(`→ ${compact(line)}`);
  child.stdin.write(`${line}\n`);
}

const send = (message) => sendLine(JSON.stringify(message));

async function request(id, method, params) {
  send({ jsonrpc: '2.0', id, method, params });
  const response = await waitFor((m) => m.id === id && m.method === undefined, `the response to ${method}`);
  console.log(`← ${compact(JSON.stringify(response))}`);
  return response;
}

async function main() {
  const bin = resolveBinary();
  const args = ['stdio', '--', process.execPath, SERVER];
  console.log(`Starting: ${[bin, ...args].join(' ')}`);
  child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit'], cwd: REPO });
  child.on('error', (e) => fail(`could not start mcpmw: ${e.message}`));
  child.stdin.on('error', () => {}); // reported through the exit status instead
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitStatus = { code, signal };
      for (const w of waiters.splice(0)) {
        w.reject(new Error(`mcpmw exited (code ${code}, signal ${signal}) while waiting for ${w.what}`));
      }
      resolve(exitStatus);
    });
  });
  let pending = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      if (line.trim() === '') continue;
      try {
        incoming.push(JSON.parse(line));
      } catch {
        console.log(`← (not JSON) ${compact(line)}`);
      }
    }
    deliver();
  });

  console.log('\n== initialize ==');
  const init = await request(1, 'initialize', {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'mcpmw-demo-client', version: '1.0.0' },
  });
  if (init.error) throw new Error(`initialize failed: ${init.error.message}`);
  const handshake = init.result?.serverInfo?.name === 'mcpmw-demo-server';
  send({ jsonrpc: '2.0', method: 'notifications/initialized' });

  console.log('\n== tools/list ==');
  const list = await request(2, 'tools/list', {});
  if (list.error) throw new Error(`tools/list failed: ${list.error.message}`);
  const tools = list.result?.tools ?? [];
  console.log(`   tools: ${tools.map((t) => t.name).join(', ')}`);

  console.log('\n== tools/call echo.uppercase ==');
  const call = await request(3, 'tools/call', { name: 'echo.uppercase', arguments: { text: 'hello through mcpmw' } });
  if (call.error) throw new Error(`tools/call failed: ${call.error.message}`);
  const toolText = call.result?.content?.[0]?.text;

  console.log('\n== a malformed line (mcpmw answers it; the server never sees it) ==');
  sendLine('{"jsonrpc":"2.0","id":4,"method":"tools/call" this is not JSON');
  const malformed = await waitFor((m) => m.error && m.method === undefined && (m.id === null || m.id === 4),
    'the answer to the malformed line');
  console.log(`← ${compact(JSON.stringify(malformed))}`);

  console.log('\n== shutdown: closing stdin ==');
  child.stdin.end();
  const status = await exited;
  const leftovers = incoming.length;

  console.log('\n== summary ==');
  console.log(`Handshake completed: ${handshake ? 'yes' : 'no'}`);
  console.log(`Tools discovered: ${tools.length}`);
  console.log(`Tool result: ${toolText}`);
  console.log(`Malformed line answered: ${malformed.error.code}`);
  console.log(`mcpmw exit code: ${status.code ?? `signal ${status.signal}`}`);
  console.log(`Elapsed: ${Date.now() - started}ms`);

  if (!handshake) throw new Error(`unexpected serverInfo ${JSON.stringify(init.result?.serverInfo)}`);
  if (tools.length !== 4) throw new Error(`expected 4 tools, got ${tools.length}`);
  if (toolText !== 'HELLO THROUGH MCPMW') throw new Error(`unexpected tool result ${JSON.stringify(toolText)}`);
  if (malformed.error.code !== -32700) throw new Error(`malformed line answered with ${malformed.error.code}, not -32700`);
  if (status.code !== 0) throw new Error(`mcpmw exited with ${JSON.stringify(status)}`);
  if (leftovers) throw new Error(`${leftovers} unexpected message(s) from mcpmw`);
}

main().then(() => {
  clearTimeout(overall);
  process.exit(0);
}, (e) => fail(e.message));
