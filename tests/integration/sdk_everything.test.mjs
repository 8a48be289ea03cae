// The official MCP TypeScript SDK client talks to the reference "everything" server through
// mcpmw (newline-delimited JSON on both sides). Every MCP feature a proxy must carry is
// exercised: requests both ways, notifications both ways, progress, cancellation, large and
// many concurrent messages.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { answerServerRequests } from './lib/client_answers.mjs';

import {
  bigPayload,
  closeStdioClient,
  everythingServerPath,
  everythingTransportParams,
  tailCollector,
  waitFor,
  withStderrOnFailure,
} from './lib/mcpmw.mjs';

const T = { timeout: 30_000 };

describe('SDK client ⇄ mcpmw ⇄ server-everything', { timeout: 120_000 }, () => {
  let client;
  let transport;
  let stderr;
  const samplingRequests = [];
  const elicitationRequests = [];
  const logMessages = [];
  const wire = []; // progress notifications and response ids, in arrival order

  before(async () => {
    transport = new StdioClientTransport(everythingTransportParams({ killTimeoutMs: 500 }));
    stderr = tailCollector(transport.stderr);
    client = new Client(
      { name: 'mcpmw-integration', version: '1.0.0' },
      {
        capabilities: {
          sampling: {},
          elicitation: { form: {} },
          roots: { listChanged: true },
        },
      });
    answerServerRequests(client, { samplingRequests, elicitationRequests });
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logMessages.push(n.params);
    });
    await withStderrOnFailure(stderr, () => client.connect(transport, { timeout: 15_000 }));
    // Tap the raw message stream (after the SDK's own handler is installed) to check ordering
    // that the SDK hides: it handles notifications asynchronously, responses synchronously.
    const sdkOnMessage = transport.onmessage;
    transport.onmessage = (message, extra) => {
      if (message.method === 'notifications/progress') {
        wire.push({ kind: 'progress', token: message.params.progressToken, progress: message.params.progress });
      } else if (message.id !== undefined && message.method === undefined) {
        wire.push({ kind: 'response', id: message.id });
      }
      if (wire.length > 10_000) wire.splice(0, 5_000);
      sdkOnMessage(message, extra);
    };
  });

  after(async () => {
    if (!client) return;
    const status = await closeStdioClient(client, transport);
    assert.deepEqual(status, { code: 0, signal: null }, `mcpmw exit status ${JSON.stringify(status)}`);
  });

  test('initialize: server info and capabilities come through', T, () => {
    const info = client.getServerVersion();
    assert.equal(info.name, 'mcp-servers/everything');
    assert.equal(info.version, '2.0.0');
    const caps = client.getServerCapabilities();
    assert.ok(caps.tools, 'tools capability');
    assert.ok(caps.prompts, 'prompts capability');
    assert.ok(caps.resources, 'resources capability');
    assert.ok(caps.logging, 'logging capability');
    assert.match(client.getInstructions() ?? '', /\S/, 'instructions are non-empty');
  });

  test('tools/list includes echo and the other reference tools', T, async () => {
    const { tools } = await withStderrOnFailure(stderr, () => client.listTools());
    const names = tools.map((t) => t.name);
    for (const expected of [
      'echo',
      'get-sum',
      'get-tiny-image',
      'toggle-simulated-logging',
      'trigger-long-running-operation',
      // registered once the client's capabilities are known (sampling, elicitation, roots)
      'trigger-sampling-request',
      'trigger-elicitation-request',
      'get-roots-list',
    ]) {
      assert.ok(names.includes(expected), `tool ${expected} missing from ${names.join(', ')}`);
    }
    const echo = tools.find((t) => t.name === 'echo');
    assert.equal(echo.inputSchema.type, 'object');
    assert.ok(echo.inputSchema.properties.message, 'echo has a message argument');
  });

  test('tools/call echo', T, async () => {
    const res = await client.callTool({ name: 'echo', arguments: { message: 'hello through mcpmw' } });
    assert.deepEqual(res.content, [{ type: 'text', text: 'Echo: hello through mcpmw' }]);
    assert.notEqual(res.isError, true);
  });

  test('tools/call get-sum', T, async () => {
    const res = await client.callTool({ name: 'get-sum', arguments: { a: 19, b: 23 } });
    assert.equal(res.content[0].text, 'The sum of 19 and 23 is 42.');
  });

  test('1 MiB argument round trip through echo comes back exactly', T, async () => {
    const message = bigPayload(1024 * 1024);
    assert.equal(Buffer.byteLength(message), 1024 * 1024);
    const res = await withStderrOnFailure(stderr,
      () => client.callTool({ name: 'echo', arguments: { message } }));
    const text = res.content[0].text;
    assert.equal(text.length, 'Echo: '.length + message.length, 'length of the echoed text');
    assert.ok(text === `Echo: ${message}`, 'echoed text differs from what was sent');
  });

  test('200 concurrent calls all get their own correct answer', T, async () => {
    const calls = [];
    for (let i = 0; i < 200; i++) {
      if (i % 2 === 0) {
        calls.push(client.callTool({ name: 'echo', arguments: { message: `concurrent-${i}` } })
          .then((r) => [i, r.content[0].text, `Echo: concurrent-${i}`]));
      } else {
        calls.push(client.callTool({ name: 'get-sum', arguments: { a: i, b: 1000 * i } })
          .then((r) => [i, r.content[0].text, `The sum of ${i} and ${1000 * i} is ${1001 * i}.`]));
      }
    }
    const results = await withStderrOnFailure(stderr, () => Promise.all(calls));
    assert.equal(results.length, 200);
    for (const [i, got, want] of results) assert.equal(got, want, `call ${i}`);
  });

  test('progress notifications reach onprogress', T, async () => {
    const progress = [];
    const res = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } },
      undefined,
      { onprogress: (p) => progress.push(p) });
    assert.equal(res.content[0].text,
      'Long running operation completed. Duration: 1 seconds, Steps: 4.');
    // The SDK may drop the last notification when it arrives together with the response (it
    // runs notification handlers a tick later), so onprogress is only required to see ≥ 1.
    assert.ok(progress.length >= 1, 'at least one progress notification');
    assert.ok(progress.every((p, i) => p.progress === i + 1 && p.total === 4),
      `progress in order with total 4: ${JSON.stringify(progress)}`);
    // On the wire all four arrive, in order, before the response.
    const token = wire.find((w) => w.kind === 'progress' && w.progress === 1)?.token;
    assert.notEqual(token, undefined, 'a progress notification was on the wire');
    const mine = wire.filter((w) => (w.kind === 'progress' && w.token === token) ||
      (w.kind === 'response' && w.id === token));
    assert.deepEqual(mine.map((w) => w.kind === 'progress' ? w.progress : 'response'),
      [1, 2, 3, 4, 'response']);
  });

  test('server-to-client sampling/createMessage is answered by the client handler', T, async () => {
    const before = samplingRequests.length;
    const res = await client.callTool({
      name: 'trigger-sampling-request',
      arguments: { prompt: 'what is six times seven?', maxTokens: 17 },
    });
    assert.equal(samplingRequests.length, before + 1, 'the handler ran once');
    const req = samplingRequests.at(-1);
    assert.equal(req.maxTokens, 17);
    assert.match(req.messages[0].content.text, /what is six times seven\?/);
    const text = res.content[0].text;
    assert.match(text, /^LLM sampling result:/);
    const json = JSON.parse(text.slice(text.indexOf('{')));
    assert.equal(json.model, 'mcpmw-test-model');
    assert.equal(json.content.text, 'sampled-by-test-client 42');
  });

  test('server-to-client elicitation/create is answered by the client handler', T, async () => {
    const before = elicitationRequests.length;
    const res = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    assert.equal(elicitationRequests.length, before + 1, 'the handler ran once');
    assert.equal(elicitationRequests.at(-1).requestedSchema.type, 'object');
    const texts = res.content.map((c) => c.text).join('\n');
    assert.match(texts, /User provided the requested information/);
    assert.match(texts, /- Name: Ada Lovelace/);
    assert.match(texts, /- Agreed to terms: true/);
    assert.match(texts, /- Favorite Integer: 7/);
  });

  test('server-to-client roots/list happened after initialization', T, async () => {
    // server-everything asks for the roots 350 ms after notifications/initialized and logs it.
    const msg = await waitFor(
      () => logMessages.find((m) => String(m.data).startsWith('Roots updated')), 10_000,
      'the "Roots updated" log message');
    assert.equal(msg.data, 'Roots updated: 1 root(s) received from client');
    const res = await client.callTool({ name: 'get-roots-list', arguments: {} });
    assert.match(res.content.map((c) => c.text).join('\n'), /file:\/\/\/tmp\/mcpmw-root/);
  });

  test('cancellation: an aborted long-running call rejects, the next call works', T, async () => {
    const ac = new AbortController();
    const started = Date.now();
    const pending = client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 5, steps: 5 } },
      undefined,
      { signal: ac.signal });
    setTimeout(() => ac.abort('test cancels'), 200);
    await assert.rejects(pending);
    assert.ok(Date.now() - started < 3000, 'the abort took effect before the operation finished');
    const res = await client.callTool({ name: 'echo', arguments: { message: 'after cancel' } });
    assert.equal(res.content[0].text, 'Echo: after cancel');
  });

  test('resources: list and read', T, async () => {
    const { resources } = await client.listResources();
    const uri = 'demo://resource/static/document/features.md';
    const entry = resources.find((r) => r.uri === uri);
    assert.ok(entry, `${uri} missing from ${resources.map((r) => r.uri).join(', ')}`);
    assert.equal(entry.mimeType, 'text/markdown');
    const read = await client.readResource({ uri });
    const onDisk = readFileSync(
      path.join(path.dirname(everythingServerPath()), 'docs', 'features.md'), 'utf8');
    assert.equal(read.contents.length, 1);
    assert.equal(read.contents[0].uri, uri);
    assert.equal(read.contents[0].text, onDisk);

    const dyn = await client.readResource({ uri: 'demo://resource/dynamic/text/7' });
    assert.match(dyn.contents[0].text, /^Resource 7: This is a plaintext resource created at /);

    const { resourceTemplates } = await client.listResourceTemplates();
    assert.ok(resourceTemplates.some((t) => t.uriTemplate === 'demo://resource/dynamic/text/{resourceId}'));
  });

  test('prompts: list and get', T, async () => {
    const { prompts } = await client.listPrompts();
    const names = prompts.map((p) => p.name);
    assert.ok(names.includes('simple-prompt'), names.join(', '));
    assert.ok(names.includes('args-prompt'), names.join(', '));
    const simple = await client.getPrompt({ name: 'simple-prompt' });
    assert.equal(simple.messages[0].content.text, 'This is a simple prompt without arguments.');
    const args = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Paris', state: 'TX' } });
    assert.equal(args.messages[0].role, 'user');
    assert.equal(args.messages[0].content.text, "What's weather in Paris, TX?");
  });

  test('ping', T, async () => {
    assert.deepEqual(await client.ping(), {});
  });

  test('logging: setLoggingLevel, then a notifications/message arrives', T, async () => {
    await client.setLoggingLevel('debug');
    const before = logMessages.length;
    const res = await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    assert.match(res.content[0].text, /^Started simulated, random-leveled logging/);
    try {
      // One message is sent at once, then one every 5 s.
      const msg = await waitFor(
        () => logMessages.slice(before).find((m) => /level[- ]message/i.test(String(m.data))),
        10_000, 'a simulated log message');
      assert.ok(['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency']
        .includes(msg.level), `level ${msg.level}`);
    } finally {
      const off = await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
      assert.match(off.content[0].text, /^Stopped simulated logging/);
    }
  });

  test('the session is still healthy at the end', T, async () => {
    const res = await client.callTool({ name: 'echo', arguments: { message: 'still here' } });
    assert.equal(res.content[0].text, 'Echo: still here');
  });
});
