// An SDK Client whose transport speaks Content-Length framing (as the earlier prototype's
// clients did) talks through mcpmw:
//   1. to server-everything, which speaks newline-delimited JSON: mcpmw translates both ways;
//   2. to a Content-Length server (fixtures/cl_server.mjs): Content-Length on both sides.
// Each runs the core flow: initialize, tools/list, echo, a 1 MiB round trip, progress.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';

import { encodeFrame } from './lib/content_length.mjs';
import { ContentLengthClientTransport } from './lib/content_length_transport.mjs';
import {
  NODE,
  baseEnv,
  bigPayload,
  descendants,
  everythingArgs,
  fixturePath,
  mcpmwArgs,
  mcpmwBin,
  sleep,
  tailCollector,
  waitGone,
  within,
  withStderrOnFailure,
} from './lib/mcpmw.mjs';

const T = { timeout: 30_000 };

// Errors the SDK reports through onerror that are not transport faults.
const benign = (e) => /progress notification for an unknown token/.test(String(e?.message ?? e));

function coreFlow(title, { args, serverName, progressCall }) {
  describe(title, { timeout: 120_000 }, () => {
    let client;
    let transport;
    let stderr;
    const errors = [];
    const wire = [];

    before(async () => {
      transport = new ContentLengthClientTransport({
        command: mcpmwBin(),
        args,
        env: baseEnv(),
        stderr: process.env.MCPMW_TEST_VERBOSE ? 'inherit' : 'pipe',
      });
      client = new Client({ name: 'mcpmw-cl-client', version: '1.0.0' }, { capabilities: {} });
      client.onerror = (e) => errors.push(e);
      // connect() calls start(), which creates the process; collect stderr right after.
      const connecting = client.connect(transport, { timeout: 15_000 });
      stderr = tailCollector(transport.stderr);
      await withStderrOnFailure(stderr, () => connecting);
      const sdkOnMessage = transport.onmessage;
      transport.onmessage = (message, extra) => {
        if (message.method === 'notifications/progress') {
          wire.push({ token: message.params.progressToken, progress: message.params.progress });
        } else if (message.id !== undefined && message.method === undefined) {
          wire.push({ response: message.id });
        }
        sdkOnMessage(message, extra);
      };
    });

    after(async () => {
      if (!transport?.process) return;
      const pid = transport.pid;
      const kids = descendants(pid);
      await client.close();
      const status = await within(10_000, 'mcpmw to exit', transport.exited);
      for (const kid of kids) {
        assert.ok(await waitGone(kid, 5000), `process ${kid} started by mcpmw is still alive`);
      }
      assert.deepEqual(status, { code: 0, signal: null }, 'mcpmw exit status');
      const real = errors.filter((e) => !benign(e));
      assert.deepEqual(real.map(String), [], 'no transport errors');
    });

    test('initialize', T, () => {
      assert.equal(client.getServerVersion().name, serverName);
      assert.ok(client.getServerCapabilities().tools, 'tools capability');
      assert.equal(transport.framingError, undefined);
    });

    test('tools/list', T, async () => {
      const { tools } = await withStderrOnFailure(stderr, () => client.listTools());
      const names = tools.map((t) => t.name);
      assert.ok(names.includes('echo'), names.join(', '));
      assert.ok(names.includes(progressCall.name), names.join(', '));
    });

    test('tools/call echo', T, async () => {
      const res = await client.callTool({ name: 'echo', arguments: { message: 'hello, framed' } });
      assert.deepEqual(res.content, [{ type: 'text', text: 'Echo: hello, framed' }]);
    });

    test('1 MiB argument round trip (byte lengths with multi-byte UTF-8)', T, async () => {
      const message = bigPayload(1024 * 1024);
      const res = await withStderrOnFailure(stderr,
        () => client.callTool({ name: 'echo', arguments: { message } }));
      assert.equal(res.content[0].text.length, 'Echo: '.length + message.length);
      assert.ok(res.content[0].text === `Echo: ${message}`, 'echoed text differs from what was sent');
    });

    test('20 concurrent echo calls', T, async () => {
      const got = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        client.callTool({ name: 'echo', arguments: { message: `cl-${i}-ü` } })
          .then((r) => r.content[0].text)));
      assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `Echo: cl-${i}-ü`));
    });

    test('progress notifications', T, async () => {
      const progress = [];
      const res = await client.callTool(
        { name: progressCall.name, arguments: progressCall.arguments }, undefined,
        { onprogress: (p) => progress.push(p) });
      assert.equal(res.content[0].text, progressCall.resultText);
      assert.ok(progress.length >= 1, 'onprogress saw at least one notification');
      const token = wire.find((w) => w.progress === 1)?.token;
      assert.notEqual(token, undefined, 'progress on the wire');
      const mine = wire.filter((w) => w.token === token || w.response === token);
      assert.deepEqual(mine.map((w) => w.progress ?? 'response'),
        [...Array.from({ length: progressCall.steps }, (_, i) => i + 1), 'response']);
    });

    test('ping', T, async () => {
      assert.deepEqual(await client.ping(), {});
    });
  });
}

coreFlow('Content-Length client ⇄ mcpmw ⇄ server-everything (newline-delimited)', {
  args: everythingArgs({ killTimeoutMs: 500 }),
  serverName: 'mcp-servers/everything',
  progressCall: {
    name: 'trigger-long-running-operation',
    arguments: { duration: 1, steps: 3 },
    steps: 3,
    resultText: 'Long running operation completed. Duration: 1 seconds, Steps: 3.',
  },
});

coreFlow('Content-Length client ⇄ mcpmw ⇄ Content-Length server', {
  args: mcpmwArgs([NODE, fixturePath('cl_server.mjs')], {
    killTimeoutMs: 500,
    extra: ['--server-framing', 'content-length'],
  }),
  serverName: 'mcpmw-cl-fixture',
  progressCall: {
    name: 'progress',
    arguments: { steps: 3, intervalMs: 50 },
    steps: 3,
    resultText: 'Progress done: 3 steps',
  },
});

describe('mcpmw\'s own answers to a Content-Length client are Content-Length framed', { timeout: 60_000 }, () => {
  test('parse error, invalid request and oversized frame, then the session goes on', T, async () => {
    const transport = new ContentLengthClientTransport({
      command: mcpmwBin(),
      args: mcpmwArgs([NODE, fixturePath('fault_server.mjs')], {
        killTimeoutMs: 500,
        extra: ['--max-message-bytes', '1024'],
      }),
      env: baseEnv(),
      validate: false,
    });
    const got = [];
    const errors = [];
    transport.onmessage = (m) => got.push(m);
    transport.onerror = (e) => errors.push(e);
    await transport.start();
    const stderr = tailCollector(transport.stderr);
    const next = async (what) => {
      const deadline = Date.now() + 5000;
      while (!got.length) {
        if (Date.now() > deadline || transport.exitStatus) {
          throw new Error(`no answer for ${what}; errors: ${errors.join('; ')}\n${stderr.text}`);
        }
        await sleep(10);
      }
      return got.shift();
    };
    try {
      await transport.send({
        jsonrpc: '2.0', id: 1, method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'cl-raw', version: '1' } },
      });
      assert.equal((await next('initialize')).result.serverInfo.name, 'mcpmw-fault-fixture');
      await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });

      transport.writeRaw(encodeFrame('not json'));
      const a = await next('a frame that is not JSON');
      assert.equal(a.error?.code, -32700, JSON.stringify(a));
      assert.equal(a.id, null);

      transport.writeRaw(encodeFrame('{"jsonrpc":"2.0"}'));
      const b = await next('a frame that is not JSON-RPC');
      assert.equal(b.error?.code, -32600, JSON.stringify(b));

      transport.writeRaw(encodeFrame(JSON.stringify({
        jsonrpc: '2.0', id: 3, method: 'tools/call',
        params: { name: 'echo', arguments: { text: 'q'.repeat(5000) } },
      })));
      const c = await next('an oversized frame');
      assert.equal(c.error?.code, -32003, JSON.stringify(c));
      assert.ok(c.id === 3 || c.id === null, `id ${c.id}`);

      await transport.send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: { text: 'fine ✓' } } });
      const d = await next('echo after the errors');
      assert.equal(d.id, 4);
      assert.equal(d.result.content[0].text, 'fine ✓');
      assert.equal(transport.framingError, undefined, 'every answer was Content-Length framed');
      assert.deepEqual(errors.map(String), []);
    } finally {
      await transport.close();
    }
    assert.deepEqual(transport.exitStatus, { code: 0, signal: null });
  });
});
