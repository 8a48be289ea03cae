// Fault handling, with a raw newline-delimited client and fixtures/fault_server.mjs behind
// mcpmw: server crashes and restarts, shutdown escalation, death of mcpmw itself, and malformed,
// oversized and oddly terminated input.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { RawSession } from './lib/raw_session.mjs';
import {
  NODE,
  fixturePath,
  isAlive,
  mcpmwArgs,
  mcpmwBin,
  sleep,
  waitFor,
  waitGone,
} from './lib/mcpmw.mjs';

const FAULT = fixturePath('fault_server.mjs');
const T = { timeout: 30_000 };

const sessions = [];
const tmpDirs = [];

/** Starts mcpmw in front of the fault server; `pidFile` collects one line per server launch. */
function start({ killTimeoutMs = 300, extra = [], serverFlags = [], env = {} } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'mcpmw-faults-'));
  tmpDirs.push(dir);
  const pidFile = path.join(dir, 'pids');
  const s = new RawSession(mcpmwArgs([NODE, FAULT, ...serverFlags], { killTimeoutMs, extra }),
    { env: { FAULT_PID_FILE: pidFile, ...env } });
  s.pidFile = pidFile;
  s.serverPids = () => {
    try {
      return readFileSync(pidFile, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  sessions.push(s);
  return s;
}

async function stats(s, o) {
  return JSON.parse(await s.callText('stats', {}, o));
}

afterEach(async () => {
  // Whatever a test left behind: kill mcpmw, then any server it launched.
  for (const s of sessions.splice(0)) {
    s.kill();
    for (const pid of s.serverPids()) {
      if (isAlive(pid)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  }
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function assertMcpmwError(msg, code, what) {
  assert.ok(msg.error, `${what}: expected an error response, got ${JSON.stringify(msg)}`);
  assert.equal(msg.error.code, code, `${what}: error code (${JSON.stringify(msg.error)})`);
  assert.equal(typeof msg.error.message, 'string', `${what}: error message`);
  assert.equal(msg.jsonrpc, '2.0');
}

describe('server death and restart', { timeout: 60_000 }, () => {
  test('crash mid-request: -32000 at once, restart, initialize replayed, buffered call answered', T, async () => {
    const s = start({ extra: ['--restart-backoff-ms', '400', '--max-restarts', '3'] });
    const init = await s.initialize({ protocolVersion: '2025-06-18', name: 'crash-test' });
    assert.equal(init.serverInfo.name, 'mcpmw-fault-fixture');
    assert.equal(init.protocolVersion, '2025-06-18');
    const first = await stats(s);
    assert.equal(first.initialize, 1);
    assert.equal(first.initialized, 1);

    // Two requests in flight when the server dies: a slow one (string id) and the crash itself.
    s.send({ jsonrpc: '2.0', id: 'slow-1', method: 'tools/call', params: { name: 'slow', arguments: { ms: 20_000 } } });
    await sleep(50);
    const t0 = Date.now();
    s.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'crash', arguments: { code: 1 } } });
    const slowErr = await s.response('slow-1', 3000);
    const crashErr = await s.response(3, 3000);
    const elapsed = Date.now() - t0;
    for (const [m, what] of [[slowErr, 'slow-1'], [crashErr, 'crash']]) {
      assertMcpmwError(m, -32000, what);
      assert.equal(m.error.data?.reason, 'server-exited', `${what}: error.data ${JSON.stringify(m.error.data)}`);
    }
    assert.ok(elapsed < 1500, `in-flight errors took ${elapsed} ms (must not wait for the restart)`);
    assert.ok(await waitGone(first.pid, 2000), 'the crashed server is gone');

    // Sent during the 400 ms back-off: buffered, then delivered to the new server.
    const after = await stats(s, { timeoutMs: 10_000 });
    assert.notEqual(after.pid, first.pid, 'a new server process');
    assert.equal(after.initialize, 1, 'the new server got the initialize replay');
    assert.equal(after.initialized, 1, 'the new server got notifications/initialized');
    assert.deepEqual(after.protocolVersions, ['2025-06-18'], 'the replay carries the client\'s params');
    assert.deepEqual(after.clientNames, ['crash-test']);
    assert.deepEqual(s.serverPids(), [first.pid, after.pid], 'exactly one relaunch');

    assert.equal(await s.callText('echo', { text: 'after restart' }), 'after restart');
    // The replayed initialize's response was swallowed: the client saw exactly one for id 1.
    assert.equal(s.received.filter((m) => m.id === 1).length, 1, 'one initialize response');
    assert.deepEqual(s.queue, [], 'no unexpected messages');
    assert.deepEqual(s.badLines, []);

    const exit = await s.closeAndWait();
    assert.equal(exit.code, 0, `mcpmw exit ${JSON.stringify(exit)}`);
    assert.ok(await waitGone(after.pid, 2000), 'the second server is gone');
  });

  test('server SIGKILLed from outside during a call: -32000, then the next call works', T, async () => {
    const s = start({ extra: ['--restart-backoff-ms', '100'] });
    await s.initialize();
    const { pid } = await stats(s);
    s.send({ jsonrpc: '2.0', id: 50, method: 'tools/call', params: { name: 'slow', arguments: { ms: 20_000 } } });
    await sleep(100);
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    const err = await s.response(50, 3000);
    assertMcpmwError(err, -32000, 'in-flight request');
    assert.equal(err.error.data?.reason, 'server-exited');
    assert.ok(Date.now() - t0 < 1500, 'the error came promptly');
    const next = await stats(s, { timeoutMs: 10_000 });
    assert.notEqual(next.pid, pid);
    assert.equal(next.initialize, 1);
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('restart budget spent: in-flight requests get -32000, then mcpmw ends with the server\'s exit code', T, async () => {
    // mcpmw --help: "1 the server could not be started or kept running (for a server that kept
    // crashing: its last exit code)".
    const s = start({ extra: ['--restart-backoff-ms', '100', '--max-restarts', '1'] });
    await s.initialize();
    assertMcpmwError(await s.call('crash', { code: 7 }, { id: 10 }), -32000, 'first crash');
    const second = await stats(s, { timeoutMs: 10_000 });
    assert.equal(second.initialize, 1);
    s.send({ jsonrpc: '2.0', id: 12, method: 'tools/call', params: { name: 'slow', arguments: { ms: 20_000 } } });
    await sleep(50);
    s.send({ jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'crash', arguments: { code: 7 } } });
    assertMcpmwError(await s.response(11, 3000), -32000, 'second crash');
    assertMcpmwError(await s.response(12, 3000), -32000, 'slow call in flight at the second crash');
    const exit = await s.waitExit(5000);
    assert.deepEqual([exit.code, exit.signal], [7, null], `mcpmw exit ${JSON.stringify(exit)}`);
    assert.deepEqual(s.serverPids().length, 2, 'one launch plus one restart, no more');
    for (const pid of s.serverPids()) assert.ok(await waitGone(pid, 1000), `server ${pid} gone`);
    assert.deepEqual(s.queue, [], 'nothing else was sent to the client');
  });

  test('server exiting 0 by itself ends the session: mcpmw exits 0, no restart', T, async () => {
    const s = start({ extra: ['--restart-backoff-ms', '100'] });
    await s.initialize();
    const crash = await s.call('crash', { code: 0 }, { id: 20 });
    assertMcpmwError(crash, -32000, 'request in flight when the server exited 0');
    const exit = await s.waitExit(5000);
    assert.deepEqual([exit.code, exit.signal], [0, null], `mcpmw exit ${JSON.stringify(exit)}`);
    assert.equal(s.serverPids().length, 1, 'not restarted');
  });

  test('restart buffer full: -32001 for what does not fit, the rest is delivered after the restart', T, async () => {
    const s = start({ extra: ['--restart-backoff-ms', '1000', '--restart-buffer-bytes', '1024'] });
    await s.initialize();
    const { pid } = await stats(s);
    assertMcpmwError(await s.call('crash', {}, { id: 30 }), -32000, 'crash');
    // The server is down for ~1 s: a small request is held, a large one does not fit.
    const t0 = Date.now();
    s.send({ jsonrpc: '2.0', id: 31, method: 'tools/call', params: { name: 'stats', arguments: {} } });
    s.send({ jsonrpc: '2.0', id: 32, method: 'tools/call', params: { name: 'echo', arguments: { text: 'w'.repeat(2000) } } });
    const full = await s.response(32, 3000);
    assertMcpmwError(full, -32001, 'request beyond the restart buffer');
    assert.equal(full.error.data?.reason, 'restart-buffer-full');
    assert.ok(Date.now() - t0 < 800, 'answered at once, not after the restart');
    const held = await s.response(31, 10_000);
    const st = JSON.parse(held.result.content[0].text);
    assert.notEqual(st.pid, pid, 'answered by the restarted server');
    assert.equal(st.initialize, 1, 'after the initialize replay');
    assert.equal(await s.callText('echo', { text: 'x'.repeat(2000) }), 'x'.repeat(2000), 'large requests go through again');
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('client notifications/cancelled reaches the server', T, async () => {
    const s = start();
    await s.initialize();
    s.send({ jsonrpc: '2.0', id: 'c1', method: 'tools/call', params: { name: 'slow', arguments: { ms: 5000 } } });
    await sleep(50);
    s.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'c1', reason: 'test' } });
    const st = await waitFor(async () => {
      const x = await stats(s);
      return x.cancelled.length ? x : null;
    }, 3000, 'the server to see the cancellation');
    assert.deepEqual(st.cancelled, ['c1']);
    await sleep(200);
    assert.equal(s.queue.filter((m) => m.id === 'c1').length, 0, 'no response for the cancelled request');
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('server-to-client request and the client\'s response are relayed', T, async () => {
    const s = start();
    await s.initialize();
    s.send({ jsonrpc: '2.0', id: 60, method: 'tools/call', params: { name: 'ask', arguments: {} } });
    const ask = await s.next((m) => m.method === 'roots/list', 3000, 'roots/list from the server');
    assert.ok(ask.id !== undefined && ask.id !== null, 'the server request has an id');
    s.send({ jsonrpc: '2.0', id: ask.id, result: { roots: [{ uri: 'file:///a' }, { uri: 'file:///b' }] } });
    const res = await s.response(60);
    assert.equal(res.result.content[0].text, 'roots: 2');
    assert.equal((await s.closeAndWait()).code, 0);
  });
});

describe('shutdown', { timeout: 60_000 }, () => {
  test('server ignoring SIGTERM and stdin EOF: stdin EOF → SIGKILL after the kill timeout', T, async () => {
    const killTimeoutMs = 300;
    const s = start({ killTimeoutMs, serverFlags: ['--ignore-sigterm', '--ignore-eof'] });
    await s.initialize();
    const { pid } = await stats(s);
    const exit = await s.closeAndWait(2 * killTimeoutMs + 3000);
    assert.equal(exit.code, 0, `mcpmw exit ${JSON.stringify(exit)}`);
    assert.ok(exit.ms <= 2 * killTimeoutMs + 1500, `mcpmw took ${exit.ms} ms to exit`);
    assert.ok(exit.ms >= 2 * killTimeoutMs * 0.8,
      `mcpmw exited after ${exit.ms} ms: it should give the server the grace periods (EOF, then SIGTERM)`);
    assert.ok(await waitGone(pid, 1000), `server ${pid} still alive after mcpmw exited`);
    assert.match(s.stderr.text, /SIGTERM ignored/, 'the server did get SIGTERM before SIGKILL');
  });

  test('well-behaved server: stdin EOF → mcpmw exits as soon as the server does', T, async () => {
    const s = start({ killTimeoutMs: 3000 });
    await s.initialize();
    const { pid } = await stats(s);
    const exit = await s.closeAndWait(5000);
    assert.equal(exit.code, 0);
    assert.ok(exit.ms < 1500, `mcpmw took ${exit.ms} ms (the kill timeout is 3000 ms)`);
    assert.ok(await waitGone(pid, 1000));
  });

  for (const signal of ['SIGTERM', 'SIGINT']) {
    test(`${signal} to mcpmw: same shutdown, server gone, exit 0`, T, async () => {
      const killTimeoutMs = 300;
      const s = start({ killTimeoutMs, serverFlags: ['--ignore-sigterm', '--ignore-eof'] });
      await s.initialize();
      const { pid } = await stats(s);
      const t0 = Date.now();
      s.child.kill(signal);
      const exit = await s.waitExit(2 * killTimeoutMs + 3000, t0);
      assert.deepEqual([exit.code, exit.signal], [0, null], `mcpmw exit ${JSON.stringify(exit)}`);
      assert.ok(exit.ms <= 2 * killTimeoutMs + 1500, `mcpmw took ${exit.ms} ms`);
      assert.ok(await waitGone(pid, 1000), `server ${pid} still alive`);
    });
  }

  test('SIGKILL of mcpmw leaves no server behind', T, async () => {
    const s = start();
    await s.initialize();
    const { pid } = await stats(s);
    s.child.kill('SIGKILL');
    await s.exited;
    assert.ok(await waitGone(pid, 3000), `server ${pid} outlived mcpmw`);
  });

  test('SIGKILL of mcpmw leaves no server behind, even one that ignores SIGTERM', T, async () => {
    const s = start({ serverFlags: ['--ignore-sigterm', '--ignore-eof'] });
    await s.initialize();
    const { pid } = await stats(s);
    s.child.kill('SIGKILL');
    await s.exited;
    assert.ok(await waitGone(pid, 3000), `server ${pid} (ignoring SIGTERM) outlived mcpmw`);
  });
});

describe('malformed and unusual input', { timeout: 60_000 }, () => {
  test('malformed lines get -32700 / -32600 from mcpmw; the session continues', T, async () => {
    const s = start();
    await s.initialize();

    s.send('not json');
    const a = await s.next(() => true, 3000, 'the reply to "not json"');
    assertMcpmwError(a, -32700, 'not json');
    assert.equal(a.id, null);

    s.send('{"jsonrpc":"2.0"}');
    const b = await s.next(() => true, 3000, 'the reply to {"jsonrpc":"2.0"}');
    assertMcpmwError(b, -32600, '{"jsonrpc":"2.0"}');
    assert.equal(b.id, null);

    s.send('[]');
    const c = await s.next(() => true, 3000, 'the reply to []');
    assertMcpmwError(c, -32600, '[]');
    assert.equal(c.id, null);

    s.send('{"jsonrpc":"2.0","id":5,"method":7}');
    const d = await s.next(() => true, 3000, 'the reply to a request whose method is a number');
    assertMcpmwError(d, -32600, 'numeric method');
    assert.equal(d.id, 5, 'the id is echoed when it could be read');

    s.send('{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo"');
    const e = await s.next(() => true, 3000, 'the reply to a truncated object');
    assertMcpmwError(e, -32700, 'truncated JSON');

    assert.equal(await s.callText('echo', { text: 'still fine' }), 'still fine');
    const st = await stats(s);
    assert.equal(st.garbage, 0, 'mcpmw answered the malformed lines itself and did not forward them');
    assert.deepEqual(s.queue, []);
    assert.deepEqual(s.badLines, []);
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('oversized frame: -32003 and the session continues', T, async () => {
    const s = start({ extra: ['--max-message-bytes', '1024'] });
    await s.initialize();
    const big = JSON.stringify({
      jsonrpc: '2.0', id: 77, method: 'tools/call',
      params: { name: 'echo', arguments: { text: 'y'.repeat(5000) } },
    });
    assert.ok(big.length > 5000);
    s.send(big);
    const err = await s.next(() => true, 3000, 'the reply to the oversized frame');
    assertMcpmwError(err, -32003, 'oversized');
    assert.ok(err.id === 77 || err.id === null, `id is 77 (read from the line's start) or null, got ${err.id}`);
    assert.equal(await s.callText('echo', { text: 'small again' }), 'small again');
    const st = await stats(s);
    assert.equal(st.garbage, 0, 'no part of the oversized line reached the server');
    assert.equal(st.requests, 3, 'the server saw initialize, echo and stats only');
    assert.deepEqual(s.queue, []);
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('oversized frame split over many writes is skipped as one', T, async () => {
    const s = start({ extra: ['--max-message-bytes', '1024'] });
    await s.initialize();
    const big = JSON.stringify({
      jsonrpc: '2.0', id: 78, method: 'tools/call',
      params: { name: 'echo', arguments: { text: 'z'.repeat(20_000) } },
    }) + '\n';
    for (let i = 0; i < big.length; i += 700) {
      s.writeRaw(big.slice(i, i + 700));
      await sleep(2);
    }
    const err = await s.next(() => true, 3000, 'the reply to the oversized frame');
    assertMcpmwError(err, -32003, 'oversized (split)');
    assert.equal(await s.callText('echo', { text: 'ok' }), 'ok');
    assert.deepEqual(s.queue, [], 'exactly one error for the oversized frame');
    assert.equal((await stats(s)).garbage, 0);
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('oversized message from the server: the request gets -32003, the session continues', T, async () => {
    const s = start({ extra: ['--max-message-bytes', '1024'] });
    await s.initialize();
    const err = await s.call('big', { bytes: 5000 }, { id: 79 });
    assertMcpmwError(err, -32003, 'oversized response');
    assert.equal(err.id, 79, 'the error answers the request whose response was dropped');
    assert.equal((await s.call('big', { bytes: 500 }, { id: 80 })).result.content[0].text, 'x'.repeat(500));
    assert.equal(await s.callText('echo', { text: 'after' }), 'after');
    assert.deepEqual(s.queue, []);
    assert.deepEqual(s.badLines, []);
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('blank lines and CRLF line ends from the client are tolerated', T, async () => {
    const s = start();
    await s.initialize();
    s.writeRaw('\n\n\r\n');
    s.writeRaw('{"jsonrpc":"2.0","id":90,"method":"tools/call","params":{"name":"echo","arguments":{"text":"crlf"}}}\r\n');
    s.writeRaw('\r\n\n');
    const r = await s.response(90);
    assert.equal(r.result.content[0].text, 'crlf');
    s.writeRaw('{"jsonrpc":"2.0","id":91,"method":"ping"}\r\n{"jsonrpc":"2.0","id":92,"method":"ping"}\n');
    assert.deepEqual((await s.response(91)).result, {});
    assert.deepEqual((await s.response(92)).result, {});
    assert.deepEqual(s.queue, [], 'blank lines produced no replies');
    assert.equal((await stats(s)).garbage, 0);
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('blank lines and CRLF line ends from the server are tolerated', T, async () => {
    const s = start({ serverFlags: ['--crlf', '--blank-lines'] });
    await s.initialize();
    assert.equal(await s.callText('echo', { text: 'from a CRLF server' }), 'from a CRLF server');
    assert.deepEqual((await s.request('ping')).result, {});
    assert.deepEqual(s.queue, []);
    assert.deepEqual(s.badLines, []);
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('a request split across writes, and several requests in one write', T, async () => {
    const s = start();
    await s.initialize();
    const line = '{"jsonrpc":"2.0","id":100,"method":"tools/call","params":{"name":"echo","arguments":{"text":"split ✓"}}}\n';
    const bytes = Buffer.from(line);
    for (let i = 0; i < bytes.length; i += 7) {
      s.child.stdin.write(bytes.subarray(i, i + 7)); // splits inside the multi-byte ✓ too
      await sleep(1);
    }
    assert.equal((await s.response(100)).result.content[0].text, 'split ✓');
    let many = '';
    for (let i = 0; i < 50; i++) {
      many += JSON.stringify({ jsonrpc: '2.0', id: 200 + i, method: 'tools/call', params: { name: 'echo', arguments: { text: `n${i}` } } }) + '\n';
    }
    s.writeRaw(many);
    for (let i = 0; i < 50; i++) {
      assert.equal((await s.response(200 + i)).result.content[0].text, `n${i}`);
    }
    assert.equal((await s.closeAndWait()).code, 0);
  });
});

describe('command line', { timeout: 60_000 }, () => {
  test('prototype form: mcpmw --proxy "CMD ARGS" --stdio', T, async () => {
    const s = new RawSession(['--proxy', `${NODE} ${FAULT}`, '--stdio']);
    sessions.push(s);
    s.serverPids = () => [];
    const init = await s.initialize();
    assert.equal(init.serverInfo.name, 'mcpmw-fault-fixture');
    assert.equal(await s.callText('echo', { text: 'prototype form' }), 'prototype form');
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('settings from the environment: MCP_PROXY_KILL_TIMEOUT_MS', T, async () => {
    // A server that ignores EOF and SIGTERM, and the kill timeout from the environment only:
    // 300 ms (two of them before SIGKILL), not the default 3000.
    const e = new RawSession(['stdio', '--', NODE, FAULT, '--ignore-sigterm', '--ignore-eof'],
      { env: { MCP_PROXY_KILL_TIMEOUT_MS: '300' } });
    sessions.push(e);
    e.serverPids = () => [];
    await e.initialize();
    const { pid } = JSON.parse(await e.callText('stats'));
    const exit = await e.closeAndWait(5000);
    assert.equal(exit.code, 0);
    assert.ok(exit.ms < 2000, `exit after ${exit.ms} ms: MCP_PROXY_KILL_TIMEOUT_MS=300 was not used`);
    assert.ok(await waitGone(pid, 1000));
  });

  test('--allow-prefix admits a command; MCP_PROXY_ALLOWED_PREFIXES without it refuses node', T, async () => {
    const ok = new RawSession(['stdio', '--allow-prefix', 'node', '--', NODE, FAULT]);
    sessions.push(ok);
    ok.serverPids = () => [];
    assert.equal((await ok.initialize()).serverInfo.name, 'mcpmw-fault-fixture');
    assert.equal((await ok.closeAndWait()).code, 0);

    const denied = new RawSession(['stdio', '--', NODE, FAULT], { env: { MCP_PROXY_ALLOWED_PREFIXES: 'python3,deno' } });
    sessions.push(denied);
    denied.serverPids = () => [];
    const exit = await denied.waitExit(5000);
    assert.notEqual(exit.code, 0, `mcpmw exit ${JSON.stringify(exit)}`);
  });

  test('a command outside the allowlist is refused', T, async () => {
    mcpmwBin();
    const s = new RawSession(['stdio', '--', '/bin/cat']);
    sessions.push(s);
    s.serverPids = () => [];
    const exit = await s.waitExit(5000);
    assert.notEqual(exit.code, 0, `mcpmw exit ${JSON.stringify(exit)}`);
    assert.match(s.stderr.text, /\S/, 'mcpmw says why on stderr');
  });
});
