// The demo (demo/client.mjs → mcpmw → demo/server.mjs) runs from any directory and prints the
// expected summary; and the demo server's tools behave as documented when reached through mcpmw.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { RawSession } from './lib/raw_session.mjs';
import { NODE, REPO_ROOT, baseEnv, mcpmwArgs, mcpmwBin, within } from './lib/mcpmw.mjs';

const CLIENT = path.join(REPO_ROOT, 'demo', 'client.mjs');
const SERVER = path.join(REPO_ROOT, 'demo', 'server.mjs');

function run(cmd, args, { env, cwd }) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => { stdout += c; });
    child.stderr.setEncoding('utf8').on('data', (c) => { stderr += c; });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('demo', { timeout: 60_000 }, () => {
  test('demo/client.mjs through mcpmw prints the expected summary (run from another cwd)', { timeout: 30_000 }, async () => {
    const env = baseEnv({ MCPMW_BIN: mcpmwBin() });
    const r = await within(25_000, 'the demo client',
      run(NODE, [CLIENT], { env, cwd: tmpdir() }));
    const why = `\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
    assert.equal(r.code, 0, `demo exit code${why}`);
    const lines = r.stdout.split('\n');
    for (const expected of [
      'Handshake completed: yes',
      'Tools discovered: 4',
      'Tool result: HELLO THROUGH MCPMW',
      'Malformed line answered: -32700',
      'mcpmw exit code: 0',
    ]) {
      assert.ok(lines.includes(expected), `missing line "${expected}"${why}`);
    }
    assert.ok(lines.some((l) => /^Elapsed: \d+ms$/.test(l)), `missing Elapsed line${why}`);
    assert.ok(!r.stdout.includes('Demo failed'), why);
  });

  test('demo/client.mjs fails cleanly when the binary does not exist', { timeout: 30_000 }, async () => {
    const env = baseEnv({ MCPMW_BIN: path.join(tmpdir(), 'no-such-mcpmw-binary') });
    const r = await run(NODE, [CLIENT], { env, cwd: tmpdir() });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^Demo failed: mcpmw binary not found/m);
  });

  test('demo/server.mjs tools through mcpmw', { timeout: 30_000 }, async () => {
    const s = new RawSession(mcpmwArgs([NODE, SERVER], { killTimeoutMs: 1000 }));
    try {
      const init = await s.initialize({ protocolVersion: '2025-11-25' });
      assert.equal(init.protocolVersion, '2025-11-25', 'a supported version is echoed');
      assert.deepEqual(init.serverInfo, { name: 'mcpmw-demo-server', version: '1.0.0' });

      const { result } = await s.request('tools/list', {});
      assert.deepEqual(result.tools.map((t) => t.name),
        ['echo.uppercase', 'math.add', 'text.reverse', 'clock.sleep']);

      assert.equal(await s.callText('echo.uppercase', { text: 'abc é' }), 'ABC É');
      assert.equal(await s.callText('math.add', { a: 2.5, b: 40 }), '42.5');
      assert.equal(await s.callText('text.reverse', { text: 'mcpmw 😀!' }), '!😀 wmpcm');

      const sleep = s.request('tools/call', {
        name: 'clock.sleep', arguments: { ms: 350 }, _meta: { progressToken: 'p1' },
      }, { id: 'sleep-1' });
      const res = await sleep;
      assert.equal(res.result.content[0].text, 'slept 350ms');
      const progress = s.received.filter((m) => m.method === 'notifications/progress');
      assert.ok(progress.length >= 2, `progress notifications: ${progress.length}`);
      assert.ok(progress.every((m) => m.params.progressToken === 'p1' && m.params.total === 350));
      assert.equal(progress.at(-1).params.progress, 350);
      s.queue.length = 0;

      const unknownTool = await s.call('no.such.tool', {});
      assert.equal(unknownTool.error.code, -32602);
      assert.equal(unknownTool.error.message, 'Unknown tool: no.such.tool');
      const badArgs = await s.call('math.add', { a: 'one', b: 2 });
      assert.equal(badArgs.error.code, -32602);
      const unknownMethod = await s.request('no/such/method', {});
      assert.equal(unknownMethod.error.code, -32601);
      assert.equal(unknownMethod.error.message, 'Method not found: no/such/method');

      const exit = await s.closeAndWait(5000);
      assert.equal(exit.code, 0);
      assert.ok(exit.ms < 1000, `the demo server exits on stdin EOF, so mcpmw does too (${exit.ms} ms)`);
    } finally {
      s.kill();
    }
  });

  test('demo/server.mjs negotiates the protocol version', { timeout: 30_000 }, async () => {
    for (const [asked, want] of [
      ['2024-11-05', '2024-11-05'],
      ['2025-03-26', '2025-03-26'],
      ['2025-06-18', '2025-06-18'],
      ['2025-01-01', '2025-06-18'],
      ['1999-01-01', '2025-06-18'],
    ]) {
      const s = new RawSession(mcpmwArgs([NODE, SERVER], { killTimeoutMs: 1000 }));
      try {
        const init = await s.initialize({ protocolVersion: asked });
        assert.equal(init.protocolVersion, want, `asked ${asked}`);
        assert.equal((await s.closeAndWait(5000)).code, 0);
      } finally {
        s.kill();
      }
    }
  });
});
