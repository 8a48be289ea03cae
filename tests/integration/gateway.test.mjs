// `mcpmw serve`: the shared Streamable HTTP gateway, driven by the official MCP SDK's Streamable
// HTTP client and by raw HTTP, in front of server-everything workers from the pool. Covers the
// 2025-era session protocol end to end (sampling, elicitation, progress, cancellation, 1 MiB
// bodies, SSE resume), session binding to the caller, Origin and Host admission, JWT and API-key
// identity, the aggregated /mcp endpoint with a policy deny, the stateless 2026-07-28 era, the
// SIGTERM drain and the operational endpoints.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';

import { answerServerRequests } from './lib/client_answers.mjs';

import {
  ACCEPT_BOTH,
  claimsFor,
  denyTinyImageBundle,
  everythingProfile,
  identityConfig,
  makeSigningKeys,
  metricValue,
  postJson,
  rawRequest,
  signJwt,
  socketExchange,
  sseReader,
  startGateway,
} from './lib/gateway.mjs';
import { bigPayload, sleep, waitFor, within, withStderrOnFailure } from './lib/mcpmw.mjs';

const T = { timeout: 30_000 };
const API_KEY = 'mcpmw-itest-api-key-0123456789abcdef0123456789abcdef';
const ALLOWED_ORIGIN = 'http://localhost:6274';
const EVERYTHING = '/servers/everything/mcp';
const LONG_DONE = (d, s) => `Long running operation completed. Duration: ${d} seconds, Steps: ${s}.`;

const keys = makeSigningKeys();
const tokenA = signJwt(keys.rs, claimsFor({ sub: 'user-a' }));
const tokenB = signJwt(keys.rs, claimsFor({ sub: 'user-b' }));
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

const initializeMessage = (id = 1, capabilities = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities,
    clientInfo: { name: 'mcpmw-gateway-itest', version: '1.0.0' },
  },
});

/** Parses a POST answer: one JSON body, or the SSE event that carries the response to `id`. */
async function rpcAnswer(res, id) {
  const type = res.headers.get('content-type') ?? '';
  if (type.startsWith('application/json')) return res.json();
  assert.match(type, /^text\/event-stream/, `unexpected Content-Type ${type}`);
  const sse = sseReader(res);
  for (;;) {
    const ev = await sse.next();
    if (ev === null) throw new Error(`the SSE stream ended without the response to id ${id}`);
    if (ev.data === undefined) continue;
    const msg = JSON.parse(ev.data);
    if (msg.id === id && msg.method === undefined) {
      await sse.cancel();
      return msg;
    }
  }
}

/**
 * The next SSE event that carries a notifications/progress. Other server messages may share a
 * request's stream (server-everything's notifications/tools/list_changed right after
 * initialization rides on the first request still open).
 */
async function nextProgress(sse, timeoutMs = 5000) {
  return within(timeoutMs, 'a progress notification on the SSE stream', (async () => {
    for (;;) {
      const ev = await sse.next();
      if (ev === null) throw new Error('the SSE stream ended before a progress notification');
      if (ev.data && JSON.parse(ev.data).method === 'notifications/progress') return ev;
    }
  })());
}

const progressOf = (messages) =>
  messages.filter((m) => m.method === 'notifications/progress').map((m) => m.params.progress);

/**
 * A 2025-era session opened with raw HTTP (initialize + notifications/initialized).
 * Returns {sid, headers (for later requests), close()} — close() DELETEs the session.
 */
async function rawSession(gw, path, auth) {
  const res = await postJson(gw.base, path, initializeMessage(), auth);
  assert.equal(res.status, 200, `initialize: ${res.status} ${await res.clone().text()}`);
  const sid = res.headers.get('mcp-session-id');
  assert.match(sid ?? '', /^[\x21-\x7e]{16,}$/, 'an Mcp-Session-Id of visible ASCII');
  const init = await rpcAnswer(res, 1);
  assert.equal(init.result.serverInfo.name, 'mcp-servers/everything');
  const headers = { ...auth, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-06-18' };
  const note = await postJson(gw.base, path, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers);
  assert.equal(note.status, 202);
  await note.arrayBuffer();
  return {
    sid,
    headers,
    async close() {
      const del = await fetch(new URL(path, gw.base), { method: 'DELETE', headers });
      await del.arrayBuffer();
      return del.status;
    },
  };
}

/** An SDK client over Streamable HTTP. `requests` records every POST body and its status. */
function sdkClient(gw, path, headers, capabilities = {}) {
  const requests = [];
  const recordingFetch = async (url, init) => {
    const res = await fetch(url, init);
    if (init?.method === 'POST') {
      let body;
      try { body = JSON.parse(init.body); } catch { body = init.body; }
      requests.push({ body, status: res.status });
    }
    return res;
  };
  const transport = new StreamableHTTPClientTransport(new URL(path, gw.base), {
    requestInit: { headers },
    fetch: recordingFetch,
    reconnectionOptions: { maxReconnectionDelay: 1000, initialReconnectionDelay: 100, reconnectionDelayGrowFactor: 1.5, maxRetries: 2 },
  });
  const client = new Client({ name: 'mcpmw-gateway-itest', version: '1.0.0' }, { capabilities });
  client.onerror = () => { /* reconnect noise after the gateway stops */ };
  return { client, transport, requests };
}

async function closeSdk({ client, transport }) {
  try { await transport.terminateSession(); } catch { /* gateway already gone */ }
  await client.close();
}

async function metrics(gw) {
  const res = await fetch(`${gw.base}/metrics`);
  assert.equal(res.status, 200);
  return { type: res.headers.get('content-type'), text: await res.text() };
}

function gatewayConfig(mark) {
  return {
    listen: { address: '127.0.0.1', port: 0 },
    allowedOrigins: [ALLOWED_ORIGIN],
    http: { maxBodyBytes: 4 * 1024 * 1024 },
    sessions: { resumeBufferEvents: 256, idleTimeoutMs: 600_000, maxSessions: 100 },
    policy: 'bundle.json',
    identity: identityConfig(API_KEY),
    servers: [
      everythingProfile('everything', mark),
      everythingProfile('second', mark, { maxWorkers: 4 }),
    ],
    drainTimeoutMs: 10_000,
  };
}

describe('mcpmw serve: the Streamable HTTP gateway', { timeout: 150_000 }, () => {
  let gw;

  before(async () => {
    gw = await startGateway(gatewayConfig, {
      files: { 'jwks.json': keys.jwks, 'hs256.key': keys.hs.secret, 'bundle.json': denyTinyImageBundle() },
    });
  });

  after(async () => {
    if (!gw) return;
    const status = await gw.stop();
    assert.equal(status.signal, null, `mcpmw was killed by ${status.signal}`);
    assert.equal(status.code, 0, `mcpmw exit code\n${gw.stderr.text.slice(-3000)}`);
  });

  describe('SDK client on /servers/everything/mcp with a JWT', () => {
    let sdk;
    const samplingRequests = [];
    const elicitationRequests = [];

    before(async () => {
      sdk = sdkClient(gw, EVERYTHING, bearer(tokenA),
        { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } });
      answerServerRequests(sdk.client, { samplingRequests, elicitationRequests });
      await withStderrOnFailure(gw.stderr,
        () => sdk.client.connect(sdk.transport, { timeout: 15_000 }));
    });

    after(async () => {
      if (sdk) await closeSdk(sdk);
    });

    test('initialize: the worker\'s server info comes through, with a session id', T, () => {
      const info = sdk.client.getServerVersion();
      assert.equal(info.name, 'mcp-servers/everything');
      assert.equal(info.version, '2.0.0');
      assert.ok(sdk.client.getServerCapabilities().tools, 'tools capability');
      assert.match(sdk.transport.sessionId ?? '', /^[0-9a-f]{32}$/);
    });

    test('tools/list lists the reference tools, without the one the policy denies', T, async () => {
      const { tools } = await sdk.client.listTools();
      const names = tools.map((t) => t.name);
      for (const expected of ['echo', 'get-sum', 'trigger-long-running-operation',
        'trigger-sampling-request', 'trigger-elicitation-request', 'get-env']) {
        assert.ok(names.includes(expected), `tool ${expected} missing from ${names.join(', ')}`);
      }
      assert.ok(!names.includes('get-tiny-image'), `the denied tool is listed: ${names.join(', ')}`);
    });

    test('tools/call echo', T, async () => {
      const res = await sdk.client.callTool({ name: 'echo', arguments: { message: 'hello over HTTP' } });
      assert.deepEqual(res.content, [{ type: 'text', text: 'Echo: hello over HTTP' }]);
    });

    test('a policy-denied tool gets the policy\'s JSON-RPC error', T, async () => {
      const err = await sdk.client.callTool({ name: 'get-tiny-image', arguments: {} }).then(
        () => assert.fail('get-tiny-image was not denied'), (e) => e);
      assert.ok(err instanceof McpError, `not an McpError: ${err}`);
      assert.equal(err.code, -32011);
      assert.match(err.message, /Images from the everything server are not allowed/);
    });

    test('sampling/createMessage from the server is answered by the client handler', T, async () => {
      const before = samplingRequests.length;
      const res = await sdk.client.callTool({
        name: 'trigger-sampling-request',
        arguments: { prompt: 'what is six times seven?', maxTokens: 17 },
      });
      assert.equal(samplingRequests.length, before + 1, 'the handler ran once');
      assert.equal(samplingRequests.at(-1).maxTokens, 17);
      const text = res.content[0].text;
      assert.match(text, /^LLM sampling result:/);
      const json = JSON.parse(text.slice(text.indexOf('{')));
      assert.equal(json.model, 'mcpmw-test-model');
      assert.equal(json.content.text, 'sampled-by-test-client 42');
      // The client's answer went back as a POST the gateway accepted with 202.
      // (recorded when its fetch resolves, which may be after the tool result arrived)
      const answer = await waitFor(
        () => sdk.requests.find((r) => r.body?.result?.model === 'mcpmw-test-model'), 5000,
        'the POST of the sampling answer');
      assert.equal(answer.status, 202);
    });

    test('elicitation/create from the server is answered by the client handler', T, async () => {
      const before = elicitationRequests.length;
      const res = await sdk.client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
      assert.equal(elicitationRequests.length, before + 1, 'the handler ran once');
      assert.equal(elicitationRequests.at(-1).requestedSchema.type, 'object');
      const texts = res.content.map((c) => c.text).join('\n');
      assert.match(texts, /- Name: Ada Lovelace/);
      assert.match(texts, /- Favorite Integer: 7/);
    });

    test('progress notifications reach onprogress, in order', T, async () => {
      const progress = [];
      const res = await sdk.client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } },
        undefined,
        { onprogress: (p) => progress.push(p) });
      assert.equal(res.content[0].text, LONG_DONE(1, 4));
      assert.ok(progress.length >= 3, `progress notifications: ${JSON.stringify(progress)}`);
      assert.ok(progress.every((p, i) => p.progress === i + 1 && p.total === 4),
        `in order with total 4: ${JSON.stringify(progress)}`);
    });

    test('cancellation: the call rejects, notifications/cancelled is accepted, nothing stays in flight', T, async () => {
      const ac = new AbortController();
      const started = Date.now();
      const pending = sdk.client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 3, steps: 3 } },
        undefined,
        { signal: ac.signal });
      await waitFor(async () => metricValue((await metrics(gw)).text, 'mcpmw_gateway_in_flight') === 1,
        5000, 'the call to be in flight');
      ac.abort('test cancels');
      await assert.rejects(pending);
      assert.ok(Date.now() - started < 2500, 'the abort took effect before the operation finished');
      const cancelled = await waitFor(
        () => sdk.requests.find((r) => r.body?.method === 'notifications/cancelled'), 5000,
        'the SDK to POST notifications/cancelled');
      assert.equal(cancelled.status, 202, 'the gateway accepted notifications/cancelled');
      const res = await sdk.client.callTool({ name: 'echo', arguments: { message: 'after cancel' } });
      assert.equal(res.content[0].text, 'Echo: after cancel');
      // The server never answers a cancelled request, so the gateway must forget it itself;
      // otherwise a SIGTERM drain waits for it until drainTimeoutMs.
      await waitFor(async () => metricValue((await metrics(gw)).text, 'mcpmw_gateway_in_flight') === 0,
        2000, 'mcpmw_gateway_in_flight to return to 0 after the cancellation');
    });

    test('100 concurrent calls on one session all get their own answer', T, async () => {
      const calls = [];
      for (let i = 0; i < 100; i++) {
        calls.push(i % 2 === 0
          ? sdk.client.callTool({ name: 'echo', arguments: { message: `concurrent-${i}` } })
            .then((r) => [i, r.content[0].text, `Echo: concurrent-${i}`])
          : sdk.client.callTool({ name: 'get-sum', arguments: { a: i, b: 1000 * i } })
            .then((r) => [i, r.content[0].text, `The sum of ${i} and ${1000 * i} is ${1001 * i}.`]));
      }
      const results = await withStderrOnFailure(gw.stderr, () => Promise.all(calls));
      for (const [i, got, want] of results) assert.equal(got, want, `call ${i}`);
    });

    test('1 MiB argument round trip comes back exactly', T, async () => {
      const message = bigPayload(1024 * 1024);
      const res = await sdk.client.callTool({ name: 'echo', arguments: { message } });
      const text = res.content[0].text;
      assert.equal(text.length, 'Echo: '.length + message.length, 'length of the echoed text');
      assert.ok(text === `Echo: ${message}`, 'echoed text differs from what was sent');
    });
  });

  describe('SSE resume after a dropped connection', () => {
    const callBody = (id, token, duration = 2, steps = 4) => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: {
        name: 'trigger-long-running-operation',
        arguments: { duration, steps },
        _meta: { progressToken: token },
      },
    });

    test('drop after the first event, GET with Last-Event-ID replays the rest and the result', T, async () => {
      const s = await rawSession(gw, EVERYTHING, bearer(tokenA));
      try {
        const ac = new AbortController();
        const res = await postJson(gw.base, EVERYTHING, callBody(7, 'resume-1'), s.headers,
          { signal: ac.signal });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type'), /^text\/event-stream/);
        const sse = sseReader(res);
        const first = await nextProgress(sse);
        assert.ok(first.id, 'the event carries an id');
        assert.equal(JSON.parse(first.data).params.progress, 1);
        ac.abort();  // the connection drops; the call keeps running in the gateway
        await sse.cancel();

        const resumed = await fetch(new URL(EVERYTHING, gw.base), {
          headers: { ...s.headers, Accept: 'text/event-stream', 'Last-Event-ID': first.id },
        });
        assert.equal(resumed.status, 200);
        assert.match(resumed.headers.get('content-type'), /^text\/event-stream/);
        const rest = sseReader(resumed);
        const events = [];
        await within(10_000, 'the resumed stream to deliver the result and end', (async () => {
          for (let ev; (ev = await rest.next()) !== null;) if (ev.data) events.push(ev);
        })());
        const messages = events.map((e) => JSON.parse(e.data));
        assert.deepEqual(progressOf(messages), [2, 3, 4]);
        const final = messages.at(-1);
        assert.equal(final.id, 7);
        assert.equal(final.result.content[0].text, LONG_DONE(2, 4));
        const ids = events.map((e) => Number(e.id));
        assert.ok(ids.every((id, i) => id > (i === 0 ? Number(first.id) : ids[i - 1])),
          `event ids increase past ${first.id}: ${ids}`);
      } finally {
        assert.equal(await s.close(), 204);
      }
    });

    test('the SDK resumes a call with resumptionToken and gets the result', T, async () => {
      const s = await rawSession(gw, EVERYTHING, bearer(tokenA));
      const ac = new AbortController();
      const res = await postJson(gw.base, EVERYTHING, callBody(9, 'resume-2', 1, 4), s.headers,
        { signal: ac.signal });
      const sse = sseReader(res);
      const first = await nextProgress(sse);
      ac.abort();
      await sse.cancel();
      // A new SDK transport on the same session: connect() skips initialize when the session
      // id is known, and a request with a resumptionToken is a GET with Last-Event-ID.
      const transport = new StreamableHTTPClientTransport(new URL(EVERYTHING, gw.base), {
        sessionId: s.sid,
        requestInit: { headers: bearer(tokenA) },
      });
      const client = new Client({ name: 'resumer', version: '1.0.0' });
      client.onerror = () => {};
      await client.connect(transport);
      try {
        // (SDK 1.32 does not report the resumed stream's event ids to onresumptiontoken.)
        const result = await client.request(
          { method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } } },
          CallToolResultSchema,
          { resumptionToken: first.id, timeout: 10_000 });
        assert.equal(result.content[0].text, LONG_DONE(1, 4));
      } finally {
        await client.close();
        assert.equal(await s.close(), 204);
      }
    });

    test('resuming before the gateway noticed the drop: the old connection closing later does not detach the resumed stream', T, async () => {
      const s = await rawSession(gw, EVERYTHING, bearer(tokenA));
      try {
        const ac = new AbortController();
        const res = await postJson(gw.base, EVERYTHING, callBody(11, 'resume-3', 2, 4), s.headers,
          { signal: ac.signal });
        const sse = sseReader(res);
        const first = await nextProgress(sse);
        // A half-open connection, as after a network drop the server has not seen yet: the
        // client resumes while the original POST's socket is still open.
        const resumed = await fetch(new URL(EVERYTHING, gw.base), {
          headers: { ...s.headers, Accept: 'text/event-stream', 'Last-Event-ID': first.id },
        });
        assert.equal(resumed.status, 200);
        const rest = sseReader(resumed);
        const second = await nextProgress(rest);
        assert.equal(JSON.parse(second.data).params.progress, 2);
        ac.abort();  // now the old connection goes away
        await sse.cancel();
        const events = [];
        await within(8000, 'the resumed stream to deliver the rest and end', (async () => {
          for (let ev; (ev = await rest.next()) !== null;) if (ev.data) events.push(ev);
        })()).catch((err) => {
          err.message += `; it delivered only ${JSON.stringify(events.map((e) => e.data))}`;
          throw err;
        });
        const messages = events.map((e) => JSON.parse(e.data));
        assert.deepEqual(progressOf(messages), [3, 4]);
        assert.equal(messages.at(-1).result.content[0].text, LONG_DONE(2, 4));
      } finally {
        assert.equal(await s.close(), 204);
      }
    });
  });

  describe('2025-era request rules', () => {
    test('resuming after the call finished replays the buffered events and ends the stream', T, async () => {
      const s = await rawSession(gw, EVERYTHING, bearer(tokenA));
      try {
        const ac = new AbortController();
        const res = await postJson(gw.base, EVERYTHING, {
          jsonrpc: '2.0', id: 21, method: 'tools/call',
          params: { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 }, _meta: { progressToken: 'late' } },
        }, s.headers, { signal: ac.signal });
        const sse = sseReader(res);
        const first = await nextProgress(sse);
        ac.abort();
        await sse.cancel();
        await waitFor(async () => metricValue((await metrics(gw)).text, 'mcpmw_gateway_in_flight') === 0,
          5000, 'the call to finish while nobody listens');
        const resumed = await fetch(new URL(EVERYTHING, gw.base), {
          headers: { ...s.headers, Accept: 'text/event-stream', 'Last-Event-ID': first.id },
        });
        assert.equal(resumed.status, 200);
        const rest = sseReader(resumed);
        const messages = [];
        await within(3000, 'the replay to end', (async () => {
          for (let ev; (ev = await rest.next()) !== null;) if (ev.data) messages.push(JSON.parse(ev.data));
        })());
        assert.deepEqual(progressOf(messages), [2, 3]);
        assert.equal(messages.at(-1).id, 21);
        assert.equal(messages.at(-1).result.content[0].text, LONG_DONE(1, 3));
        const bogus = await fetch(new URL(EVERYTHING, gw.base), {
          headers: { ...s.headers, Accept: 'text/event-stream', 'Last-Event-ID': '999999' },
        });
        assert.equal(bogus.status, 404, 'an event id the session never sent');
        await bogus.arrayBuffer();
      } finally {
        assert.equal(await s.close(), 204);
      }
    });

    test('one GET stream per session: a second is refused with 409', T, async () => {
      const s = await rawSession(gw, EVERYTHING, bearer(tokenA));
      const ac = new AbortController();
      try {
        const get1 = await fetch(new URL(EVERYTHING, gw.base),
          { headers: { ...s.headers, Accept: 'text/event-stream' }, signal: ac.signal });
        assert.equal(get1.status, 200);
        assert.match(get1.headers.get('content-type'), /^text\/event-stream/);
        const get2 = await fetch(new URL(EVERYTHING, gw.base),
          { headers: { ...s.headers, Accept: 'text/event-stream' } });
        assert.equal(get2.status, 409);
        await get2.arrayBuffer();
        const noAccept = await fetch(new URL(EVERYTHING, gw.base),
          { headers: { ...s.headers, Accept: 'application/json' } });
        assert.equal(noAccept.status, 406);
        await noAccept.arrayBuffer();
      } finally {
        ac.abort();
        assert.equal(await s.close(), 204);
      }
    });

    test('bad requests: a wrong Accept, a batch, an unknown protocol version, a body over maxBodyBytes', T, async () => {
      const s = await rawSession(gw, EVERYTHING, bearer(tokenA));
      try {
        const echo = { jsonrpc: '2.0', id: 31, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } };
        const jsonOnly = await postJson(gw.base, EVERYTHING, echo, { ...s.headers, Accept: 'application/json' });
        assert.equal(jsonOnly.status, 406);
        await jsonOnly.arrayBuffer();
        const batch = await postJson(gw.base, EVERYTHING, [echo], s.headers);
        assert.equal(batch.status, 400);
        assert.equal((await batch.json()).error.code, -32600);
        const version = await postJson(gw.base, EVERYTHING, echo, { ...s.headers, 'MCP-Protocol-Version': '1999-01-01' });
        assert.equal(version.status, 400);
        assert.equal((await version.json()).error.code, -32022);
        // Announced only: a client writing the whole body gets EPIPE once mcpmw closes, and
        // fetch then loses the answer, so the check reads the raw socket.
        const huge = await socketExchange(gw.port,
          `POST ${EVERYTHING} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: ${ACCEPT_BOTH}\r\n` +
          `Content-Type: application/json\r\nAuthorization: Bearer ${tokenA}\r\n` +
          `Mcp-Session-Id: ${s.sid}\r\nContent-Length: ${5 * 1024 * 1024}\r\n\r\n`);
        assert.match(huge, /^HTTP\/1\.1 413 /);
        assert.match(huge, /exceeds 4194304 bytes/);
        // The session still works afterwards.
        const ok = await postJson(gw.base, EVERYTHING, echo, s.headers);
        assert.equal((await rpcAnswer(ok, 31)).result.content[0].text, 'Echo: x');
      } finally {
        assert.equal(await s.close(), 204);
      }
    });
  });

  describe('sessions are bound to the principal that opened them', () => {
    const echo = (id, message) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } });

    test('another principal, an unknown id, a missing id, and a deleted session', T, async () => {
      const s = await rawSession(gw, EVERYTHING, bearer(tokenA));
      let deleted = false;
      try {
        const mine = await postJson(gw.base, EVERYTHING, echo(2, 'mine'), s.headers);
        assert.equal(mine.status, 200);
        assert.equal((await rpcAnswer(mine, 2)).result.content[0].text, 'Echo: mine');

        const theirs = await postJson(gw.base, EVERYTHING, echo(3, 'theirs'),
          { ...s.headers, ...bearer(tokenB) });
        assert.equal(theirs.status, 404, 'token B on token A\'s session');
        assert.equal((await theirs.json()).error.code, -32006);

        const unknown = await postJson(gw.base, EVERYTHING, echo(4, 'x'),
          { ...s.headers, 'Mcp-Session-Id': '0123456789abcdef0123456789abcdef' });
        assert.equal(unknown.status, 404, 'unknown session id');
        await unknown.arrayBuffer();

        const missing = await postJson(gw.base, EVERYTHING, echo(5, 'x'),
          { ...bearer(tokenA), 'MCP-Protocol-Version': '2025-06-18' });
        assert.equal(missing.status, 400, 'no Mcp-Session-Id on a non-initialize POST');
        const missingBody = await missing.json();
        assert.equal(missingBody.id, 5);
        assert.equal(missingBody.error.code, -32600);

        const delTheirs = await fetch(new URL(EVERYTHING, gw.base),
          { method: 'DELETE', headers: { ...s.headers, ...bearer(tokenB) } });
        assert.equal(delTheirs.status, 404, 'token B cannot DELETE token A\'s session');
        await delTheirs.arrayBuffer();

        assert.equal(await s.close(), 204);
        deleted = true;
        const after = await postJson(gw.base, EVERYTHING, echo(6, 'x'), s.headers);
        assert.equal(after.status, 404, 'the deleted session');
        await after.arrayBuffer();
      } finally {
        if (!deleted) await s.close();
      }
    });
  });

  describe('Origin and Host admission', () => {
    const post = (headers) => rawRequest(gw.base, {
      method: 'POST',
      path: EVERYTHING,
      headers: { Accept: ACCEPT_BOTH, 'Content-Type': 'application/json', ...bearer(tokenA), ...headers },
      body: initializeMessage(),
    });

    test('an Origin not listed is refused with 403', T, async () => {
      const res = await post({ Origin: 'http://evil.example' });
      assert.equal(res.status, 403);
      assert.match(res.body, /Origin http:\/\/evil\.example is not allowed/);
    });

    test('a listed Origin is served', T, async () => {
      const res = await post({ Origin: ALLOWED_ORIGIN });
      assert.equal(res.status, 200, res.body);
      const sid = res.headers['mcp-session-id'];
      assert.ok(sid);
      const del = await rawRequest(gw.base, { method: 'DELETE', path: EVERYTHING,
        headers: { ...bearer(tokenA), 'Mcp-Session-Id': sid, Origin: ALLOWED_ORIGIN } });
      assert.equal(del.status, 204);
    });

    test('a foreign Host is refused with 403 (DNS rebinding)', T, async () => {
      const res = await post({ Host: 'evil.example' });
      assert.equal(res.status, 403);
      assert.match(res.body, /Host evil\.example is not served here/);
      const withPort = await post({ Host: `evil.example:${gw.port}` });
      assert.equal(withPort.status, 403);
    });
  });

  describe('identity: JWT and API keys', () => {
    const init = (headers) => postJson(gw.base, EVERYTHING, initializeMessage(), headers);
    async function assertAccepted(headers, what) {
      const res = await init(headers);
      assert.equal(res.status, 200, `${what}: ${res.status} ${await res.clone().text()}`);
      const sid = res.headers.get('mcp-session-id');
      assert.equal((await rpcAnswer(res, 1)).result.serverInfo.name, 'mcp-servers/everything');
      const del = await fetch(new URL(EVERYTHING, gw.base),
        { method: 'DELETE', headers: { ...headers, 'Mcp-Session-Id': sid } });
      assert.equal(del.status, 204);
    }
    async function assertRejected(headers, what) {
      const res = await init(headers);
      const body = await res.text();
      assert.equal(res.status, 401, `${what}: ${body}`);
      return { challenge: res.headers.get('www-authenticate') ?? '', body };
    }

    test('RS256, ES256 and HS256 tokens are accepted', T, async () => {
      await assertAccepted(bearer(signJwt(keys.rs, claimsFor())), 'RS256');
      await assertAccepted(bearer(signJwt(keys.es, claimsFor({ sub: 'user-es' }))), 'ES256');
      await assertAccepted(bearer(signJwt(keys.hs, claimsFor({ sub: 'user-hs' }))), 'HS256');
      const wrongSecret = signJwt({ alg: 'HS256', secret: `${keys.hs.secret}x` }, claimsFor());
      const { challenge } = await assertRejected(bearer(wrongSecret), 'HS256 with another secret');
      assert.match(challenge, /error="invalid_token"/);
    });

    test('a token signed with alg "none" is refused', T, async () => {
      const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.` +
        `${Buffer.from(JSON.stringify(claimsFor())).toString('base64url')}.`;
      const { challenge } = await assertRejected(bearer(unsigned), 'alg none');
      assert.match(challenge, /error="invalid_token"/);
    });

    test('an expired token: 401 invalid_token with resource_metadata', T, async () => {
      const now = Math.floor(Date.now() / 1000);
      const expired = signJwt(keys.rs, claimsFor({ iat: now - 7200, nbf: now - 7200, exp: now - 600 }));
      const { challenge } = await assertRejected(bearer(expired), 'expired');
      assert.match(challenge, /^Bearer /);
      assert.match(challenge, /error="invalid_token"/);
      assert.match(challenge, /resource_metadata="http:\/\/127\.0\.0\.1\/\.well-known\/oauth-protected-resource\/mcp"/);
      assert.ok(!challenge.includes(expired), 'the token is not echoed');
    });

    test('a token for another audience, or signed by an unknown key, is refused', T, async () => {
      const wrongAud = await assertRejected(bearer(signJwt(keys.rs, claimsFor({ aud: 'someone-else' }))), 'audience');
      assert.match(wrongAud.challenge, /error="invalid_token"/);
      const wrongIss = await assertRejected(bearer(signJwt(keys.rs, claimsFor({ iss: 'https://evil.test' }))), 'issuer');
      assert.match(wrongIss.challenge, /error="invalid_token"/);
      const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const forged = signJwt({ alg: 'RS256', kid: 'rs-1', privateKey: stranger }, claimsFor());
      const bad = await assertRejected(bearer(forged), 'forged signature');
      assert.match(bad.challenge, /error="invalid_token"/);
    });

    test('no credentials: 401 with resource_metadata and no error attribute', T, async () => {
      const { challenge } = await assertRejected({}, 'no token');
      assert.match(challenge, /^Bearer resource_metadata="[^"]+"/);
      assert.doesNotMatch(challenge, /error=/);
    });

    test('the protected-resource metadata names the resource and the authorization server', T, async () => {
      const { challenge } = await assertRejected({}, 'no token');
      const url = new URL(/resource_metadata="([^"]+)"/.exec(challenge)[1]);
      for (const p of [url.pathname, '/.well-known/oauth-protected-resource']) {
        const res = await fetch(new URL(p, gw.base));
        assert.equal(res.status, 200, p);
        assert.match(res.headers.get('content-type'), /^application\/json/);
        const doc = await res.json();
        assert.equal(doc.resource, 'http://127.0.0.1/mcp');
        assert.deepEqual(doc.authorization_servers, ['https://auth.test']);
      }
    });

    test('an API key is accepted in X-API-Key and as a Bearer value; a wrong one is not', T, async () => {
      await assertAccepted({ 'X-API-Key': API_KEY }, 'X-API-Key');
      await assertAccepted(bearer(API_KEY), 'Bearer API key');
      await assertRejected({ 'X-API-Key': `${API_KEY}x` }, 'wrong API key');
    });
  });

  describe('the aggregated /mcp endpoint', () => {
    let sdk;
    before(async () => {
      sdk = sdkClient(gw, '/mcp', bearer(tokenA), { sampling: {} });
      sdk.client.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
        model: 'aggregated-model',
        role: 'assistant',
        content: { type: 'text', text: `aggregated answer to ${req.params.messages[0].content.text}` },
        stopReason: 'endTurn',
      }));
      await withStderrOnFailure(gw.stderr,
        () => sdk.client.connect(sdk.transport, { timeout: 15_000 }));
    });
    after(async () => {
      if (sdk) await closeSdk(sdk);
    });

    test('tools/list shows every server\'s tools as <server>__<tool>', T, async () => {
      const { tools } = await withStderrOnFailure(gw.stderr, () => sdk.client.listTools());
      const names = tools.map((t) => t.name);
      for (const expected of ['everything__echo', 'everything__get-sum', 'second__echo',
        'second__get-sum', 'second__get-tiny-image']) {
        assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
      }
      assert.ok(!names.includes('everything__get-tiny-image'),
        `the tool the policy denies on everything is listed: ${names.join(', ')}`);
      assert.ok(names.every((n) => /^(everything|second)__/.test(n)), names.join(', '));
    });

    test('calls reach the right server', T, async () => {
      const a = await sdk.client.callTool({ name: 'everything__echo', arguments: { message: 'via /mcp' } });
      assert.equal(a.content[0].text, 'Echo: via /mcp');
      const b = await sdk.client.callTool({ name: 'second__get-sum', arguments: { a: 40, b: 2 } });
      assert.equal(b.content[0].text, 'The sum of 40 and 2 is 42.');
    });

    test('the policy-denied tool gets a JSON-RPC error with the policy\'s reason', T, async () => {
      const err = await sdk.client.callTool({ name: 'everything__get-tiny-image', arguments: {} }).then(
        () => assert.fail('everything__get-tiny-image was not denied'), (e) => e);
      assert.ok(err instanceof McpError, `not an McpError: ${err}`);
      assert.equal(err.code, -32011);
      assert.match(err.message, /Images from the everything server are not allowed through the gateway/);
      // The rule names the server: the same tool on `second` is allowed.
      const ok = await sdk.client.callTool({ name: 'second__get-tiny-image', arguments: {} });
      assert.ok(ok.content.some((c) => c.type === 'image' && c.mimeType === 'image/png'),
        JSON.stringify(ok.content.map((c) => c.type)));
    });

    test('a server-to-client request (sampling) and progress pass through /mcp', T, async () => {
      const res = await sdk.client.callTool({
        name: 'second__trigger-sampling-request',
        arguments: { prompt: 'ping from second', maxTokens: 5 },
      });
      const text = res.content[0].text;
      assert.match(text, /^LLM sampling result:/);
      const json = JSON.parse(text.slice(text.indexOf('{')));
      assert.equal(json.model, 'aggregated-model');
      assert.match(json.content.text, /ping from second/);
      // The client saw a gateway-made request id, not the worker's.
      const answer = await waitFor(
        () => sdk.requests.find((r) => r.body?.result?.model === 'aggregated-model'), 5000,
        'the POST of the sampling answer');
      assert.equal(answer.status, 202);
      assert.match(String(answer.body.id), /^s2c-\d+$/);

      const progress = [];
      const long = await sdk.client.callTool(
        { name: 'everything__trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
        undefined, { onprogress: (p) => progress.push(p.progress) });
      assert.equal(long.content[0].text, LONG_DONE(1, 3));
      assert.ok(progress.length >= 2 && progress.every((p, i) => p === i + 1), JSON.stringify(progress));
    });

    test('cancellation on /mcp: the call rejects and nothing stays in flight', T, async () => {
      const ac = new AbortController();
      const pending = sdk.client.callTool(
        { name: 'second__trigger-long-running-operation', arguments: { duration: 3, steps: 3 } },
        undefined, { signal: ac.signal });
      await waitFor(async () => metricValue((await metrics(gw)).text, 'mcpmw_gateway_in_flight') === 1,
        5000, 'the call to be in flight');
      ac.abort('test cancels');
      await assert.rejects(pending);
      await waitFor(async () => metricValue((await metrics(gw)).text, 'mcpmw_gateway_in_flight') === 0,
        2000, 'mcpmw_gateway_in_flight to return to 0 after the cancellation');
      const res = await sdk.client.callTool({ name: 'second__echo', arguments: { message: 'after cancel' } });
      assert.equal(res.content[0].text, 'Echo: after cancel');
    });

    test('an unknown tool is an error naming it', T, async () => {
      const err = await sdk.client.callTool({ name: 'nowhere__echo', arguments: {} }).then(
        () => assert.fail('nowhere__echo was called'), (e) => e);
      assert.equal(err.code, -32602);
      assert.match(err.message, /nowhere__echo/);
    });
  });

  describe('the stateless 2026-07-28 era against a 2025-era worker', () => {
    const V = '2026-07-28';
    const meta = { 'io.modelcontextprotocol/protocolVersion': V };
    const send = (method, params, { name, id = 1, headers = {} } = {}) => postJson(gw.base, EVERYTHING,
      { jsonrpc: '2.0', id, method, params: { ...params, _meta: meta } },
      {
        ...bearer(tokenA),
        'MCP-Protocol-Version': V,
        'Mcp-Method': method,
        ...(name !== undefined ? { 'Mcp-Name': name } : {}),
        ...headers,
      });

    test('server/discover returns the worker\'s info and capabilities', T, async () => {
      const res = await send('server/discover', {});
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(res.headers.get('mcp-session-id'), null, 'no session in this era');
      const { result } = await rpcAnswer(res, 1);
      assert.ok(result.supportedVersions.includes(V), JSON.stringify(result.supportedVersions));
      assert.equal(result.serverInfo.name, 'mcp-servers/everything');
      assert.equal(result._meta['io.modelcontextprotocol/serverInfo'].name, 'mcp-servers/everything');
      assert.ok(result.capabilities.tools, 'tools capability');
      assert.equal(result.protocolVersion, undefined);
    });

    test('tools/list and tools/call with Mcp-Method and Mcp-Name', T, async () => {
      const list = await send('tools/list', {}, { id: 2 });
      assert.equal(list.status, 200, await list.clone().text());
      const names = (await rpcAnswer(list, 2)).result.tools.map((t) => t.name);
      assert.ok(names.includes('echo'), names.join(', '));
      const call = await send('tools/call', { name: 'echo', arguments: { message: 'stateless' } },
        { name: 'echo', id: 3 });
      assert.equal(call.status, 200);
      assert.equal((await rpcAnswer(call, 3)).result.content[0].text, 'Echo: stateless');
    });

    test('a tool call with progress is answered on an SSE stream', T, async () => {
      const res = await postJson(gw.base, EVERYTHING,
        { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 }, _meta: { ...meta, progressToken: 'p' } } },
        { ...bearer(tokenA), 'MCP-Protocol-Version': V, 'Mcp-Method': 'tools/call', 'Mcp-Name': 'trigger-long-running-operation' });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^text\/event-stream/);
      const sse = sseReader(res);
      const got = [];
      for (let ev; (ev = await within(5000, 'an SSE event', sse.next())) !== null;) if (ev.data) got.push(JSON.parse(ev.data));
      assert.deepEqual(got.filter((m) => m.method === 'notifications/progress').map((m) => m.params.progress), [1, 2]);
      assert.equal(got.at(-1).result.content[0].text, LONG_DONE(1, 2));
    });

    test('an Mcp-Name that contradicts the body: 400 with -32020', T, async () => {
      const res = await send('tools/call', { name: 'echo', arguments: { message: 'x' } },
        { name: 'get-sum', id: 5 });
      assert.equal(res.status, 400);
      const body = await res.json();
      assert.equal(body.id, 5);
      assert.equal(body.error.code, -32020);
    });

    test('closing the answer stream cancels a stateless request', T, async () => {
      const ac = new AbortController();
      const res = await postJson(gw.base, EVERYTHING,
        { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 6, steps: 6 }, _meta: { ...meta, progressToken: 'q' } } },
        { ...bearer(tokenA), 'MCP-Protocol-Version': V, 'Mcp-Method': 'tools/call', 'Mcp-Name': 'trigger-long-running-operation' },
        { signal: ac.signal });
      const sse = sseReader(res);
      await nextProgress(sse, 5000);
      const m0 = await metrics(gw);
      assert.equal(metricValue(m0.text, 'mcpmw_gateway_in_flight'), 1);
      ac.abort();
      await sse.cancel();
      await waitFor(async () => metricValue((await metrics(gw)).text, 'mcpmw_gateway_in_flight') === 0,
        2000, 'the stateless request to be dropped when its stream closed');
    });

    test('a policy-denied tool is refused statelessly too', T, async () => {
      const res = await send('tools/call', { name: 'get-tiny-image', arguments: {} }, { name: 'get-tiny-image', id: 6 });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.error.code, -32011);
    });
  });

  describe('operational endpoints', () => {
    test('/metrics is Prometheus text with the gateway and pool families', T, async () => {
      const { type, text } = await metrics(gw);
      assert.match(type, /^text\/plain; version=0\.0\.4/);
      assert.match(text, /^# TYPE mcpmw_gateway_calls_total counter$/m);
      const ok = metricValue(text, 'mcpmw_gateway_calls_total', { method: 'tools/call', status: 'ok', server: 'everything' });
      assert.ok(ok >= 3, `ok tools/call count on everything: ${ok}`);
      const denied = metricValue(text, 'mcpmw_gateway_calls_total', { method: 'tools/call', status: 'denied', server: 'everything' });
      assert.ok(denied >= 2, `denied tools/call count: ${denied}`);
      assert.match(text, /^mcpmw_pool_workers\{profile="everything",state="[a-z_]+"\} \d+$/m);
      assert.match(text, /^mcpmw_pool_workers\{profile="second",state="[a-z_]+"\} \d+$/m);
      assert.equal(metricValue(text, 'mcpmw_gateway_in_flight'), 0);
    });

    test('/healthz and /readyz answer 200; an unknown path 404', T, async () => {
      for (const [p, want] of [['/healthz', 200], ['/readyz', 200], ['/nope', 404], ['/servers/nope/mcp', 404]]) {
        const res = await fetch(new URL(p, gw.base));
        await res.arrayBuffer();
        assert.equal(res.status, want, p);
      }
    });
  });
});

describe('mcpmw serve: SIGTERM drains without losing a call', { timeout: 60_000 }, () => {
  const anonymousConfig = (drainTimeoutMs) => (mark) => ({
    listen: { address: '127.0.0.1', port: 0 },
    identity: { anonymous: true, resource: 'http://127.0.0.1/mcp' },
    servers: [everythingProfile('everything', mark, { minWarm: 2 })],
    drainTimeoutMs,
  });

  test('every call in flight gets its result, mcpmw exits 0, no worker remains', { timeout: 45_000 }, async () => {
    const gw = await startGateway(anonymousConfig(15_000));
    const clients = [];
    let stopped = false;
    try {
      for (let i = 0; i < 4; i++) {
        const c = sdkClient(gw, EVERYTHING, {});
        await c.client.connect(c.transport, { timeout: 15_000 });
        clients.push(c);
      }
      const seen = clients.map(() => 0);
      const calls = clients.map((c, i) => c.client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } },
        undefined,
        { onprogress: () => { seen[i] += 1; }, timeout: 30_000 }));
      // Every call is in flight (its first progress notification arrived) before the signal.
      await waitFor(() => seen.every((n) => n >= 1), 10_000, 'each call to report progress');
      const stop = gw.stop();
      stopped = true;
      const results = await within(20_000, 'the calls to finish during the drain', Promise.all(calls));
      for (const r of results) assert.equal(r.content[0].text, LONG_DONE(2, 4));
      const status = await stop;
      assert.deepEqual({ code: status.code, signal: status.signal }, { code: 0, signal: null },
        gw.stderr.text.slice(-3000));
      assert.match(gw.stderr.text, /serve: received SIGTERM/);
      assert.match(gw.stderr.text, /drained; every worker stopped and reaped/);
      // New connections are refused once mcpmw is gone.
      await assert.rejects(fetch(`${gw.base}/healthz`));
    } finally {
      for (const c of clients) await c.client.close().catch(() => {});
      if (!stopped) await gw.stop();
    }
  });

  test('a cancelled call does not hold the drain until drainTimeoutMs', { timeout: 30_000 }, async () => {
    const gw = await startGateway(anonymousConfig(8000));
    const c = sdkClient(gw, EVERYTHING, {});
    let stopped = false;
    try {
      await c.client.connect(c.transport, { timeout: 15_000 });
      const ac = new AbortController();
      const call = c.client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } },
        undefined, { signal: ac.signal });
      await waitFor(async () => metricValue((await metrics(gw)).text, 'mcpmw_gateway_in_flight') === 1,
        5000, 'the call to be in flight');
      ac.abort('test cancels');
      await assert.rejects(call);
      await waitFor(() => c.requests.find((r) => r.body?.method === 'notifications/cancelled'), 5000,
        'notifications/cancelled to be sent');
      await sleep(1500);  // the operation is over; the server sends no answer for it
      const stop = gw.stop();
      stopped = true;
      const status = await stop;
      assert.deepEqual({ code: status.code, signal: status.signal }, { code: 0, signal: null });
      assert.ok(status.ms < 4000, `the drain took ${status.ms} ms (drainTimeoutMs is 8000): ` +
        `${/drain timeout[^\n]*/.exec(gw.stderr.text)?.[0] ?? ''}`);
    } finally {
      await c.client.close().catch(() => {});
      if (!stopped) await gw.stop();
    }
  });
});
