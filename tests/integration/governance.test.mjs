// Governance end to end: the official SDK client → `mcpmw stdio --policy BUNDLE …` →
// server-everything (or demo/server.mjs --governance). Each test writes its own bundle, audit key
// and audit log into a fresh temp dir, and checks what a client sees (the documented errors, the
// filtered tools/list, the redacted arguments and results), what the audit log holds, and that
// bundle reloads (file rename, in-place write, SIGHUP, invalid file) are atomic under traffic.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CreateMessageRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';

import {
  NODE,
  REPO_ROOT,
  baseEnv,
  closeStdioClient,
  everythingServerPath,
  mcpmwArgs,
  mcpmwBin,
  sleep,
  tailCollector,
  waitFor,
  within,
  withStderrOnFailure,
} from './lib/mcpmw.mjs';

const T = { timeout: 30_000 };
const DEMO_SERVER = path.join(REPO_ROOT, 'demo', 'server.mjs');
const DEMO_BUNDLES = path.join(REPO_ROOT, 'demo', 'bundles');

const EMAIL = 'jane.doe@example.com';
const CARD = '4111 1111 1111 1111'; // the Visa test number: Luhn-valid

/** A bundle document: `bundleVersion` plus whatever `fields` add. */
const bundleDoc = (version, fields = {}) => ({ bundleVersion: version, ...fields });

const denyRule = (ruleId, tool, reasonCode) => ({
  ruleId,
  status: 'deny',
  conditionDsl: `method == "tools/call" && tool.name == ${JSON.stringify(tool)}`,
  reasonCode,
});

/**
 * One governed session in its own temp dir: bundle.json, audit.key (32 random bytes), audit.jsonl.
 * Returns {client, transport, stderr, dir, bundlePath, logPath, keyPath, close()}; close() ends
 * the session (mcpmw must exit 0) and leaves the dir for the test to inspect, cleanup() removes it.
 */
async function startSession(bundle, {
  server = 'everything', extra = [], env = {}, capabilities = {}, setup = () => {},
} = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'mcpmw-gov-'));
  const bundlePath = path.join(dir, 'bundle.json');
  const keyPath = path.join(dir, 'audit.key');
  const logPath = path.join(dir, 'audit.jsonl');
  writeFileSync(bundlePath, JSON.stringify(bundle, null, 2));
  writeFileSync(keyPath, randomBytes(32));
  const serverCommand = server === 'demo'
    ? [NODE, DEMO_SERVER, '--governance']
    : [NODE, everythingServerPath(), 'stdio'];
  const transport = new StdioClientTransport({
    command: mcpmwBin(),
    args: mcpmwArgs(serverCommand, {
      killTimeoutMs: 500,
      extra: ['--policy', bundlePath, '--audit-log', logPath, '--audit-key', keyPath, ...extra],
    }),
    env: baseEnv(env),
    stderr: 'pipe',
  });
  const stderr = tailCollector(transport.stderr, 256 * 1024);
  if (process.env.MCPMW_TEST_VERBOSE) transport.stderr.on('data', (c) => process.stderr.write(c));
  const client = new Client({ name: 'mcpmw-governance-test', version: '1.0.0' }, { capabilities });
  setup(client);
  await withStderrOnFailure(stderr, () => client.connect(transport, { timeout: 15_000 }));
  let closed = false;
  return {
    client,
    transport,
    stderr,
    dir,
    bundlePath,
    logPath,
    keyPath,
    async close() {
      if (closed) return;
      closed = true;
      const status = await closeStdioClient(client, transport);
      assert.deepEqual(status, { code: 0, signal: null },
        `mcpmw exit status ${JSON.stringify(status)}\n${stderr.text.slice(-4000)}`);
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `fn(session)` and always closes the session and removes its dir. */
async function withSession(bundle, options, fn) {
  const s = await startSession(bundle, options);
  try {
    await withStderrOnFailure(s.stderr, () => fn(s));
    await s.close();
  } finally {
    if (!process.env.MCPMW_TEST_KEEP) s.cleanup();
    await s.close().catch(() => {});
  }
}

/** The McpError a tools/call is answered with; fails when the call succeeds. */
async function callError(client, name, args = {}) {
  try {
    const result = await client.callTool({ name, arguments: args }, undefined, { timeout: 15_000 });
    assert.fail(`${name} should have been refused, got ${JSON.stringify(result)}`);
  } catch (e) {
    if (e instanceof McpError) return e;
    throw e;
  }
}

const callText = async (client, name, args) =>
  (await client.callTool({ name, arguments: args }, undefined, { timeout: 15_000 })).content[0].text;

/** The governance error.data every refusal carries. */
function assertGovernanceData(e, { code, stage, reasonCode }) {
  assert.equal(e.code, code, `error code, in ${JSON.stringify({ message: e.message, data: e.data })}`);
  assert.equal(e.data?.stage, stage, `data.stage in ${JSON.stringify(e.data)}`);
  assert.equal(e.data?.reasonCode, reasonCode, `data.reasonCode in ${JSON.stringify(e.data)}`);
  assert.equal(typeof e.data?.decisionId, 'string', `data.decisionId in ${JSON.stringify(e.data)}`);
  assert.ok(e.data.decisionId.length > 0, 'data.decisionId is non-empty');
}

/** The audit log's records ({seq, ts, prev, report}), in file order. */
function auditRecords(logPath) {
  return readFileSync(logPath, 'utf8').split('\n').filter((l) => l.startsWith('{"seq":'))
    .map((l) => JSON.parse(l));
}

function auditVerify(logPath, keyPath) {
  const r = spawnSync(mcpmwBin(), ['audit', 'verify', logPath, '--key', keyPath],
    { encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

function policyCheck(file) {
  const r = spawnSync(mcpmwBin(), ['policy', 'check', file], { encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Writes `doc` next to `target` and renames it over `target` (one IN_MOVED_TO). */
function renameOver(target, doc) {
  const tmp = `${target}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(doc, null, 2));
  renameSync(tmp, target);
}

const listedNames = async (client) => (await client.listTools()).tools.map((t) => t.name);

/**
 * `loops` concurrent loops of echo calls until `stop()` returns true; each loop checks every
 * answer. Resolves with the number of calls made.
 */
async function echoTraffic(client, loops, stop, tag = 'loop') {
  let calls = 0;
  const loop = async (i) => {
    for (let n = 0; !stop(); n++) {
      const message = `${tag}-${i}-${n}`;
      const text = await callText(client, 'echo', { message });
      assert.equal(text, `Echo: ${message}`, 'every answer belongs to its own call');
      calls++;
    }
  };
  await Promise.all(Array.from({ length: loops }, (_, i) => loop(i)));
  return calls;
}

/**
 * Counts every request the client sends and every response it receives, by id, under the SDK
 * (its own handlers still run).
 */
function tapMessages(transport) {
  const sent = new Map();
  const answered = new Map();
  const sdkSend = transport.send.bind(transport);
  transport.send = (message, options) => {
    if (message.method !== undefined && message.id !== undefined) {
      sent.set(message.id, (sent.get(message.id) ?? 0) + 1);
    }
    return sdkSend(message, options);
  };
  const sdkOnMessage = transport.onmessage;
  transport.onmessage = (message, extra) => {
    if (message.method === undefined && message.id !== undefined) {
      answered.set(message.id, (answered.get(message.id) ?? 0) + 1);
    }
    sdkOnMessage(message, extra);
  };
  return { sent, answered };
}

function assertOneAnswerEach({ sent, answered }) {
  const problems = [];
  for (const [id, n] of sent) {
    if (n !== 1) problems.push(`id ${id} sent ${n} times`);
    if (answered.get(id) !== 1) problems.push(`id ${id} answered ${answered.get(id) ?? 0} times`);
  }
  for (const id of answered.keys()) {
    if (!sent.has(id)) problems.push(`answer for unknown id ${id}`);
  }
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
}

describe('governance: SDK client ⇄ mcpmw --policy ⇄ server', { timeout: 120_000 }, () => {
  test('a denied tool is answered with -32011 and the server never runs it', T, async () => {
    const samplingRequests = [];
    const bundle = bundleDoc('deny-1', {
      policyRules: [
        denyRule('deny-sampling', 'trigger-sampling-request', 'sampling-forbidden'),
        { ruleId: 'allow-rest', status: 'allow', conditionDsl: '*' },
      ],
    });
    const options = {
      capabilities: { sampling: {} },
      setup: (client) => client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
        samplingRequests.push(req.params);
        return { model: 'm', role: 'assistant', content: { type: 'text', text: 'x' } };
      }),
    };
    let logPath;
    await withSession(bundle, options, async (s) => {
      logPath = s.logPath;
      const e = await callError(s.client, 'trigger-sampling-request',
        { prompt: 'should never be sampled', maxTokens: 5 });
      assertGovernanceData(e, { code: -32011, stage: 'policy', reasonCode: 'sampling-forbidden' });
      assert.equal(e.data.ruleId, 'deny-sampling');
      // Everything else still works.
      assert.equal(await callText(s.client, 'echo', { message: 'after the denial' }),
        'Echo: after the denial');
      await s.close();
      assert.equal(samplingRequests.length, 0, 'the server never ran the denied tool');
      const blocked = auditRecords(logPath).map((r) => r.report)
        .filter((r) => r.tool === 'trigger-sampling-request');
      assert.equal(blocked.length, 1, 'one audit record for the denied call');
      assert.equal(blocked[0].outcome, 'blocked');
      assert.equal(blocked[0].dispatched, false);
      assert.equal(blocked[0].error?.code, -32011);
      assert.equal(blocked[0].bundleVersion, 'deny-1');
    });
  });

  test('a hidden tool is absent from tools/list and a call of it is answered with -32012', T, async () => {
    const bundle = bundleDoc('hidden-1', {
      toolCatalog: [
        { toolName: 'get-env', visibility: 'private' },
        { toolName: 'get-sum', visibility: 'public', scopeRequirements: ['math:write'] },
        { toolName: 'echo', visibility: 'public', scopeRequirements: ['tools:read'] },
      ],
    });
    await withSession(bundle, { extra: ['--user', 'u1', '--scopes', 'tools:read'] }, async (s) => {
      const names = await listedNames(s.client);
      assert.ok(names.includes('echo'), `echo is listed: ${names.join(', ')}`);
      assert.ok(names.includes('get-tiny-image'), 'an uncataloged tool stays visible');
      assert.ok(!names.includes('get-env'), 'the private tool is not listed');
      assert.ok(!names.includes('get-sum'), 'the tool needing a missing scope is not listed');

      const priv = await callError(s.client, 'get-env');
      assertGovernanceData(priv, { code: -32012, stage: 'tool_filter', reasonCode: 'tool-private' });
      const scoped = await callError(s.client, 'get-sum', { a: 1, b: 2 });
      assertGovernanceData(scoped,
        { code: -32012, stage: 'tool_filter', reasonCode: 'missing-scope' });
      assert.equal(await callText(s.client, 'echo', { message: 'visible' }), 'Echo: visible');
    });
  });

  test('with a fixed window of N calls the N+1st is limited and retryAfterMs matches the window', T, async () => {
    const N = 5;
    const windowMs = 3000;
    const bundle = bundleDoc('rate-1', {
      rateLimitRules: [{
        ruleId: 'per-user', dimension: 'user', algorithm: 'fixed-window', limit: N,
        windowSeconds: windowMs / 1000,
      }],
    });
    await withSession(bundle, { extra: ['--user', 'rate-user'] }, async (s) => {
      const add = (a) => s.client.callTool({ name: 'get-sum', arguments: { a, b: 1 } });
      // Windows are aligned to the clock, not to our first call: run into the limit once to
      // find where the current window ends.
      let first;
      let firstRefusedSent = 0;
      for (let n = 0; n <= 2 * N && !first; n++) {
        const sent = performance.now();
        try {
          await add(n);
        } catch (e) {
          if (!(e instanceof McpError)) throw e;
          first = e;
          firstRefusedSent = sent;
        }
      }
      assert.ok(first, `no refusal within ${2 * N + 1} calls`);
      assertGovernanceData(first,
        { code: -32013, stage: 'rate_limit', reasonCode: 'rate-limit-exceeded' });
      assert.ok(first.data.retryAfterMs > 0 && first.data.retryAfterMs <= windowMs,
        `retryAfterMs ${first.data.retryAfterMs}`);

      // Wait for the next window; its first N calls are admitted, the N+1st is not.
      await sleep(first.data.retryAfterMs + 20);
      await add(100);
      const firstAnswered = performance.now();
      for (let n = 1; n < N; n++) await add(100 + n);
      const lastSent = performance.now();
      const limited = await callError(s.client, 'get-sum', { a: 1, b: 2 });
      const lastAnswered = performance.now();
      assertGovernanceData(limited,
        { code: -32013, stage: 'rate_limit', reasonCode: 'rate-limit-exceeded' });
      const retry = limited.data.retryAfterMs;
      assert.ok(Number.isInteger(retry) && retry > 0 && retry <= windowMs, `retryAfterMs ${retry}`);
      // The window began no later than the first call was handled and ends retry ms after the
      // refusal was decided: retry ≤ window − (time from the first answer to the last send).
      const upper = windowMs - (lastSent - firstAnswered) + 2;
      // It began where the first refusal said the previous window ends (its retryAfterMs is
      // rounded up): after firstRefusedSent + that retry − 1 ms.
      const windowStart = firstRefusedSent + first.data.retryAfterMs - 1;
      const lower = windowMs - (lastAnswered - windowStart) - 2;
      assert.ok(retry <= upper && retry >= lower,
        `retryAfterMs ${retry} not within [${lower.toFixed(1)}, ${upper.toFixed(1)}]`);
    });
  });

  test('an e-mail and a card number are redacted in both directions (request before the server, response before the client)', T, async () => {
    // Distinct markers per direction say which side rewrote what.
    const bundle = bundleDoc('redact-1', {
      redactionRules: [
        { ruleId: 'req-email', direction: 'request', detector: 'email', replacement: '[REQ-EMAIL]' },
        { ruleId: 'req-card', direction: 'request', detector: 'card_number', replacement: '[REQ-CARD]' },
        { ruleId: 'resp-email', direction: 'response', detector: 'email', replacement: '[RESP-EMAIL]' },
        { ruleId: 'resp-card', direction: 'response', detector: 'card_number', replacement: '[RESP-CARD]' },
      ],
    });
    // The server's environment is data the client never sent: get-env returns it.
    const env = { MCPMW_TEST_PII: `contact ${EMAIL} card ${CARD}` };
    await withSession(bundle, { env }, async (s) => {
      const echoed = await callText(s.client, 'echo', { message: `mail ${EMAIL}, card ${CARD}.` });
      assert.equal(echoed, 'Echo: mail [REQ-EMAIL], card [REQ-CARD].',
        'the server echoed the redacted argument: it never saw the original');

      const envText = await callText(s.client, 'get-env', {});
      assert.ok(envText.includes('[RESP-EMAIL]') && envText.includes('[RESP-CARD]'),
        `get-env's answer is redacted: ${envText.slice(0, 200)}`);
      assert.ok(!envText.includes(EMAIL) && !envText.includes(CARD), 'no original reaches the client');
      const { MCPMW_TEST_PII: shown } = JSON.parse(envText);
      assert.equal(shown, 'contact [RESP-EMAIL] card [RESP-CARD]');

      await s.close();
      const reports = auditRecords(s.logPath).map((r) => r.report)
        .filter((r) => r.method === 'tools/call');
      const sides = (r) => (r.redactions ?? []).map((x) => `${x.direction}:${x.ruleId}`).sort();
      assert.deepEqual(sides(reports[0]), ['request:req-card', 'request:req-email']);
      assert.deepEqual(sides(reports[1]), ['response:resp-card', 'response:resp-email']);
      const log = readFileSync(s.logPath, 'utf8');
      // The card as sent, its digits run together, or any two of its groups: not a bare '4111',
      // which a hash, a timestamp or a latency in the log can hold by chance.
      for (const secret of [EMAIL, CARD, CARD.replaceAll(' ', ''), CARD.slice(0, 9)]) {
        assert.ok(!log.includes(secret), `the audit log holds no secret, but it holds ${secret}`);
      }
    });
  });

  test('a tool result with personal data from the demo server reaches the client redacted, text and structuredContent', T, async () => {
    const bundle = JSON.parse(readFileSync(path.join(DEMO_BUNDLES, '04-redact-pii.json'), 'utf8'));
    await withSession(bundle, { server: 'demo' }, async (s) => {
      const r = await s.client.callTool({ name: 'customer.lookup', arguments: { customerId: 'cust-123' } });
      assert.deepEqual(r.structuredContent, {
        customerId: 'cust-123',
        name: 'Jane Doe',
        email: '[EMAIL_REDACTED]',
        ssn: '[SSN_REDACTED]',
        phone: '[PHONE_REDACTED]',
        card: '[CC_REDACTED]',
      });
      assert.equal(r.content[0].text, 'Customer cust-123: Jane Doe, email [EMAIL_REDACTED], ' +
        'SSN [SSN_REDACTED], phone [PHONE_REDACTED], card [CC_REDACTED]');
      const echoed = await callText(s.client, 'echo.uppercase',
        { text: `to ${EMAIL} ssn 123-45-6789 card ${CARD} tel 555-123-4567` });
      assert.equal(echoed, 'TO [EMAIL_REDACTED] SSN [SSN_REDACTED] CARD [CC_REDACTED] TEL [PHONE_REDACTED]');
    });
  });

  test('the audit log verifies after a session and names record k after one byte of its report changes', T, async () => {
    const bundle = bundleDoc('audit-1', {
      policyRules: [denyRule('deny-env', 'get-env', 'env-hidden')],
    });
    let logPath;
    let keyPath;
    let dir;
    const s = await startSession(bundle);
    try {
      ({ logPath, keyPath, dir } = s);
      for (let i = 0; i < 6; i++) {
        assert.equal(await callText(s.client, 'echo', { message: `m${i}` }), `Echo: m${i}`);
      }
      await callError(s.client, 'get-env');
      await s.close();

      const intact = auditVerify(logPath, keyPath);
      assert.equal(intact.code, 0, `verify of the untouched log: ${intact.output}`);
      const records = auditRecords(logPath);
      assert.ok(records.length >= 8, `records: ${records.length}`); // initialize + 6 echo + 1 denied
      assert.deepEqual(records.map((r) => r.seq), records.map((_, i) => i));

      // Change one letter inside record k's report (not the last record).
      const k = 3;
      const lines = readFileSync(logPath, 'utf8').split('\n');
      const at = lines.findIndex((l) => l.startsWith(`{"seq":${k},`));
      const line = lines[at];
      const i = line.indexOf('"outcome":"served"');
      assert.ok(i > line.indexOf('"report":'), `record ${k} is a served call: ${line}`);
      const j = i + '"outcome":"'.length;
      lines[at] = `${line.slice(0, j)}S${line.slice(j + 1)}`; // served → Served
      const tampered = path.join(dir, 'tampered.jsonl');
      writeFileSync(tampered, lines.join('\n'));
      const bad = auditVerify(tampered, keyPath);
      assert.equal(bad.code, 1, `verify of the tampered log: ${bad.output}`);
      // The edit is seen at record k+1, whose prev no longer matches, and blamed on record k.
      assert.match(bad.output, /prev-mismatch/, bad.output);
      assert.match(bad.output, new RegExp(`record ${k + 1} \\(line \\d+\\)`), bad.output);
      assert.match(bad.output, new RegExp(`record ${k} was edited`), `names record ${k}: ${bad.output}`);
    } finally {
      await s.close().catch(() => {});
      s.cleanup();
    }
  });

  test('a bundle renamed over the file under steady traffic switches version with no lost or duplicated answer', T, async () => {
    const v1 = bundleDoc('swap-v1', {
      policyRules: [{ ruleId: 'allow-all', status: 'allow', conditionDsl: '*' }],
    });
    const v2 = bundleDoc('swap-v2', {
      policyRules: [
        { ruleId: 'allow-all', status: 'allow', conditionDsl: '*' },
        denyRule('deny-env', 'get-env', 'env-hidden'),
      ],
    });
    const s = await startSession(v1);
    try {
      await withStderrOnFailure(s.stderr, async () => {
        const tap = tapMessages(s.transport);
        assert.ok((await listedNames(s.client)).includes('get-env'), 'v1 lists get-env');
        let stop = false;
        const traffic = echoTraffic(s.client, 4, () => stop, 'swap');
        await sleep(700);
        renameOver(s.bundlePath, v2);
        await waitFor(async () => !(await listedNames(s.client)).includes('get-env'), 10_000,
          'the renamed bundle to take effect (get-env hidden)');
        await waitFor(() => /policy bundle reloaded .*now running version swap-v2/.test(s.stderr.text),
          10_000, 'stderr to report the reload');
        await sleep(700);
        stop = true;
        const calls = await within(20_000, 'the echo loops to finish', traffic);
        assert.ok(calls >= 40, `only ${calls} calls in ~1.4 s`);
        const denied = await callError(s.client, 'get-env');
        assertGovernanceData(denied, { code: -32011, stage: 'policy', reasonCode: 'env-hidden' });
        assertOneAnswerEach(tap);
      });
      await s.close();
      // Records are written as exchanges complete, and concurrent calls may complete out of
      // order; the swap happens between two arriving requests, so order by arrival: the
      // invocation number the session gave each request ("<session>-<n>").
      const arrival = (r) => Number(r.report.invocationId.slice(r.report.invocationId.lastIndexOf('-') + 1));
      const versions = auditRecords(s.logPath)
        .sort((a, b) => arrival(a) - arrival(b))
        .map((r) => r.report.bundleVersion);
      const lastV1 = versions.lastIndexOf('swap-v1');
      const firstV2 = versions.indexOf('swap-v2');
      assert.ok(lastV1 >= 0 && firstV2 >= 0, `both versions recorded: ${[...new Set(versions)]}`);
      assert.ok(lastV1 < firstV2,
        `every request that arrived under swap-v1 came before every one under swap-v2 (last v1 #${lastV1}, first v2 #${firstV2})`);
      assert.deepEqual([...new Set(versions)], ['swap-v1', 'swap-v2']);
      const verify = auditVerify(s.logPath, s.keyPath);
      assert.equal(verify.code, 0, verify.output);
    } finally {
      await s.close().catch(() => {});
      s.cleanup();
    }
  });

  test('an invalid bundle written over the file is refused and the running one stays in force', T, async () => {
    const v1 = bundleDoc('keep-v1', { policyRules: [denyRule('deny-sum', 'get-sum', 'sum-denied')] });
    await withSession(v1, {}, async (s) => {
      let stop = false;
      const traffic = echoTraffic(s.client, 2, () => stop, 'invalid');
      const broken = JSON.stringify(bundleDoc('keep-v2-broken', {
        policyRules: [{ ruleId: 'bad', status: 'deny', conditionDsl: 'tool.name == ' }],
      }));
      writeFileSync(s.bundlePath, broken); // in place: IN_CLOSE_WRITE
      await waitFor(() => /not reloaded/.test(s.stderr.text), 10_000,
        'stderr to say the invalid bundle was not reloaded');
      assert.match(s.stderr.text, /\/policyRules\/0\/conditionDsl/,
        'the refusal names the offending place');
      const denied = await callError(s.client, 'get-sum', { a: 1, b: 2 });
      assertGovernanceData(denied, { code: -32011, stage: 'policy', reasonCode: 'sum-denied' });
      assert.equal(denied.data.ruleId, 'deny-sum');
      stop = true;
      const calls = await within(20_000, 'the echo loops to finish', traffic);
      assert.ok(calls > 0, 'calls kept succeeding');
      assert.equal(await callText(s.client, 'echo', { message: 'still here' }), 'Echo: still here');
      await s.close();
      const versions = new Set(auditRecords(s.logPath).map((r) => r.report.bundleVersion));
      assert.deepEqual([...versions], ['keep-v1']);
    });
  });

  test('SIGHUP reloads the bundle', T, async () => {
    const v1 = bundleDoc('hup-v1', {});
    const v2 = bundleDoc('hup-v2', { policyRules: [denyRule('deny-sum', 'get-sum', 'sum-denied')] });
    await withSession(v1, {}, async (s) => {
      assert.equal(await callText(s.client, 'get-sum', { a: 1, b: 2 }), 'The sum of 1 and 2 is 3.');
      // Rewrite the file in place but keep it open: no IN_CLOSE_WRITE, no IN_MOVED_TO yet, so
      // only the signal can make mcpmw read the new content.
      const fd = openSync(s.bundlePath, 'r+');
      try {
        const bytes = Buffer.from(JSON.stringify(v2));
        ftruncateSync(fd, 0);
        writeSync(fd, bytes, 0, bytes.length, 0);
        assert.equal(await callText(s.client, 'get-sum', { a: 2, b: 2 }), 'The sum of 2 and 2 is 4.',
          'no reload without an event');
        process.kill(s.transport.pid, 'SIGHUP');
        await waitFor(async () => {
          try {
            await s.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 1 } });
            return false;
          } catch (e) {
            if (e instanceof McpError && e.code === -32011) return true;
            throw e;
          }
        }, 10_000, 'SIGHUP to reload the bundle');
        await waitFor(
          () => /policy bundle reloaded \(SIGHUP\): now running version hup-v2/.test(s.stderr.text),
          10_000, 'stderr to report the reload');
      } finally {
        closeSync(fd);
      }
      assert.equal(await callText(s.client, 'echo', { message: 'alive' }), 'Echo: alive',
        'the session survives SIGHUP');
      await s.close();
      const versions = auditRecords(s.logPath).map((r) => r.report.bundleVersion);
      assert.ok(versions.includes('hup-v1') && versions.includes('hup-v2'), String(versions));
    });
  });

  test('mcpmw policy check accepts valid bundles and names the JSON pointer of what is wrong', T, () => {
    for (const name of readdirSync(DEMO_BUNDLES).filter((f) => f.endsWith('.json')).sort()) {
      const r = policyCheck(path.join(DEMO_BUNDLES, name));
      assert.equal(r.code, 0, `demo bundle ${name}: ${r.stdout}${r.stderr}`);
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'mcpmw-gov-check-'));
    try {
      const valid = path.join(dir, 'valid.json');
      writeFileSync(valid, JSON.stringify(bundleDoc('check-1', {
        policyRules: [denyRule('deny-sum', 'get-sum', 'sum-denied')],
        rateLimitRules: [{ ruleId: 'r', algorithm: 'token-bucket', burst: 5, refillPerSecond: 1 }],
      })));
      assert.equal(policyCheck(valid).code, 0);

      const cases = [
        [{ policyRules: [{ ruleId: 'ok', status: 'allow', conditionDsl: '*' },
          { ruleId: 'bad', status: 'deny', conditionDsl: 'tool.name == ' }] },
        '/policyRules/1/conditionDsl'],
        [{ rateLimitRules: [{ ruleId: 'r', algorithm: 'fixed-window', limit: 3 }] },
          '/rateLimitRules/0/windowSeconds'],
        [{ redactionRules: [{ ruleId: 'x', detector: 'phone_number' }] }, '/redactionRules/0/detector'],
      ];
      for (const [fields, pointer] of cases) {
        const file = path.join(dir, 'invalid.json');
        writeFileSync(file, JSON.stringify(bundleDoc('check-2', fields)));
        const r = policyCheck(file);
        assert.equal(r.code, 1, `exit code for ${pointer}: ${r.stderr}`);
        assert.ok(r.stderr.includes(`INVALID: ${file}: ${pointer}: `),
          `stderr names ${pointer}: ${r.stderr}`);
      }
      const missing = path.join(dir, 'missing-version.json');
      writeFileSync(missing, '{"policyRules": []}');
      const r = policyCheck(missing);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /INVALID: .*missing-version\.json: \/bundleVersion: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
