#!/usr/bin/env node
// The mcpmw governance demo: dependency-free, like client.mjs. For each policy bundle in
// demo/bundles/ (the prototype's five scenarios) it starts
//     $MCPMW_BIN stdio --policy demo/bundles/<file> --audit-log <tmp>/audit.jsonl
//                      --audit-key <tmp>/audit.key [identity flags] -- node demo/server.mjs --governance
// drives a short MCP session over newline-delimited JSON, prints what was allowed, blocked,
// filtered, limited and redacted, and checks each scenario's expectation. All five sessions
// append to one audit log (signed with a fresh random key), which is then checked with
// `mcpmw audit verify`.
//
// MCPMW_BIN defaults to build/release/src/app/mcpmw in this repository. Exit 0 when every
// expectation holds; otherwise (or after 60 s) it prints `Demo failed: <reason>` and exits 1.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

import { mcpmwBinary } from './mcpmw_binary.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const SERVER = path.join(HERE, 'server.mjs');
const BUNDLES = path.join(HERE, 'bundles');
const TIMEOUT_MS = 60_000;

const workDir = mkdtempSync(path.join(tmpdir(), 'mcpmw-scenarios-'));
const auditLog = path.join(workDir, 'audit.jsonl');
const auditKey = path.join(workDir, 'audit.key');
let current = null; // the running mcpmw child, killed on failure

function fail(reason) {
  console.log(`Demo failed: ${reason}`);
  if (current && current.exitCode === null && current.signalCode === null) current.kill('SIGKILL');
  rmSync(workDir, { recursive: true, force: true });
  process.exit(1);
}

const overall = setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);

function expect(ok, what) {
  if (!ok) throw new Error(what);
}

function resolveBinary() {
  try {
    return mcpmwBinary();
  } catch (e) {
    return fail(e.message);
  }
}

// One mcpmw session: newline-delimited JSON-RPC over the child's stdio.
class Session {
  constructor(bin, bundle, extraArgs = []) {
    const args = ['stdio', '--policy', path.join(BUNDLES, bundle), '--audit-log', auditLog,
      '--audit-key', auditKey, '--kill-timeout-ms', '1000', ...extraArgs,
      '--', process.execPath, SERVER, '--governance'];
    this.child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: REPO });
    current = this.child;
    this.nextId = 1;
    this.pending = new Map();
    this.stderr = '';
    this.child.stdin.on('error', () => {});
    this.child.stderr.setEncoding('utf8').on('data', (c) => { this.stderr += c; });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        for (const { reject } of this.pending.values()) {
          reject(new Error(`mcpmw exited (code ${code}, signal ${signal}): ${this.stderr.trim()}`));
        }
        this.pending.clear();
        resolve({ code, signal });
      });
    });
    let buffered = '';
    this.child.stdout.setEncoding('utf8').on('data', (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        const waiter = msg.method === undefined ? this.pending.get(msg.id) : undefined;
        if (waiter) {
          this.pending.delete(msg.id);
          waiter.resolve(msg);
        }
      }
    });
  }

  request(method, params) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  }

  call(name, args = {}) {
    return this.request('tools/call', { name, arguments: args });
  }

  async open() {
    const init = await this.request('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'mcpmw-scenarios', version: '1.0.0' },
    });
    expect(init.result?.serverInfo?.name === 'mcpmw-demo-server',
      `initialize failed: ${JSON.stringify(init.error ?? init.result)}`);
    this.child.stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n');
    return init;
  }

  async close() {
    this.child.stdin.end();
    const status = await this.exited;
    current = null;
    expect(status.code === 0, `mcpmw exited with ${JSON.stringify(status)}: ${this.stderr.trim()}`);
  }
}

const text = (response) => response.result?.content?.[0]?.text;
const toolNames = (response) => (response.result?.tools ?? []).map((t) => t.name);

function expectAllowed(response, what) {
  expect(response.result && !response.error && !response.result.isError,
    `${what} should be allowed, got ${JSON.stringify(response.error ?? response.result)}`);
  return response;
}

function expectRefused(response, code, what) {
  const e = response.error;
  expect(e?.code === code, `${what} should be refused with ${code}, got ${JSON.stringify(response)}`);
  expect(typeof e.data?.stage === 'string' && typeof e.data?.reasonCode === 'string' &&
    typeof e.data?.decisionId === 'string', `${what}: error.data lacks stage/reasonCode/decisionId`);
  return e;
}

const describeError = (e) =>
  `${e.code} ${e.data.reasonCode}${e.data.ruleId ? ` (rule ${e.data.ruleId})` : ''}`;

// Audit records (reports) of one bundle version, in log order.
function auditReports(bundleVersion) {
  return readFileSync(auditLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((r) => r.report?.bundleVersion === bundleVersion).map((r) => r.report);
}

async function scenario01(bin) {
  console.log('\n[01 allow-all] permissive policy: every call passes');
  const s = new Session(bin, '01-allow-all.json');
  await s.open();
  const list = expectAllowed(await s.request('tools/list', {}), 'tools/list');
  const echo = expectAllowed(await s.call('echo.uppercase', { text: 'hello through proxy' }), 'echo');
  const sum = expectAllowed(await s.call('math.add', { a: 2, b: 40 }), 'math.add');
  await s.close();
  expect(text(echo) === 'HELLO THROUGH PROXY', `unexpected echo ${text(echo)}`);
  console.log(`  allowed: initialize, tools/list (${toolNames(list).length} tools), ` +
    `echo.uppercase → "${text(echo)}", math.add → ${text(sum)}`);
}

async function scenario02(bin) {
  console.log('\n[02 deny-specific-tools] file.delete/file.write, customer.export/delete denied');
  const s = new Session(bin, '02-deny-specific-tools.json');
  await s.open();
  const echo = expectAllowed(await s.call('echo.uppercase', { text: 'still allowed' }), 'echo');
  const lookup = expectAllowed(await s.call('customer.list'), 'customer.list');
  console.log(`  allowed: echo.uppercase → "${text(echo)}", customer.list → "${text(lookup)}"`);
  const denied = [
    ['file.delete', { path: '/etc/important' }, 'deny-file-operations'],
    ['file.write', { path: '/tmp/x', content: 'x' }, 'deny-file-operations'],
    ['customer.export', {}, 'deny-customer-export'],
    ['customer.delete', { customerId: 'cust-123' }, 'deny-customer-export'],
  ];
  for (const [tool, args, ruleId] of denied) {
    const e = expectRefused(await s.call(tool, args), -32011, tool);
    expect(e.data.stage === 'policy' && e.data.ruleId === ruleId,
      `${tool}: expected rule ${ruleId} in stage policy, got ${JSON.stringify(e.data)}`);
    console.log(`  blocked: ${tool.padEnd(16)} → ${describeError(e)}`);
  }
  const listed = toolNames(await s.request('tools/list', {}));
  await s.close();
  const stillListed = denied.map(([t]) => t).filter((t) => listed.includes(t));
  expect(stillListed.length === 0, `denied tools still listed: ${stillListed.join(', ')}`);
  console.log(`  filtered: tools/list shows ${listed.length} tools, none of the denied ones`);
}

async function scenario03(bin) {
  console.log('\n[03 rate-limit] 10 tools/call per 60 s per user (fixed window)');
  const s = new Session(bin, '03-rate-limit.json', ['--user', 'demo-user']);
  await s.open();
  let refusedAt = 0;
  let refusal = null;
  // Windows are aligned to the clock, so a burst may (rarely) straddle a window boundary: then
  // the first refusal comes later than call #11, and never later than #21.
  for (let n = 1; n <= 21 && !refusedAt; n++) {
    const r = await s.call('math.add', { a: n, b: 0 });
    if (r.error) {
      refusal = expectRefused(r, -32013, `call #${n}`);
      refusedAt = n;
    }
  }
  await s.close();
  expect(refusedAt >= 11, `call #${refusedAt} was refused, fewer than 10 were admitted`);
  expect(refusal, 'no call was rate limited');
  const retry = refusal.data.retryAfterMs;
  expect(Number.isInteger(retry) && retry > 0 && retry <= 60_000, `retryAfterMs ${retry}`);
  console.log(`  allowed: calls #1-#${refusedAt - 1}` +
    (refusedAt > 11 ? ' (the burst crossed a window boundary)' : ''));
  console.log(`  limited: call #${refusedAt} → ${describeError(refusal)}, retryAfterMs ${retry}`);
}

async function scenario04(bin) {
  console.log('\n[04 redact-pii] e-mail, SSN, card (detectors) and phone (pattern), both ways');
  const s = new Session(bin, '04-redact-pii.json');
  await s.open();
  const sent = 'mail jane.doe@example.com, ssn 123-45-6789, card 4111 1111 1111 1111, ' +
    'phone 555-123-4567';
  const echo = expectAllowed(await s.call('echo.uppercase', { text: sent }), 'echo');
  const lookup = expectAllowed(await s.call('customer.lookup', { customerId: 'cust-123' }),
    'customer.lookup');
  await s.close();
  const echoed = text(echo);
  expect(echoed === 'MAIL [EMAIL_REDACTED], SSN [SSN_REDACTED], CARD [CC_REDACTED], ' +
    'PHONE [PHONE_REDACTED]', `the server echoed ${JSON.stringify(echoed)}`);
  // The audit log says on which side each redaction happened: the echo was rewritten on its
  // way to the server only, so the server never saw the originals.
  const [echoReport, lookupReport] = auditReports('demo-04-redact-pii.1')
    .filter((r) => r.method === 'tools/call');
  const sides = (report, direction) =>
    (report?.redactions ?? []).filter((x) => x.direction === direction).length;
  expect(sides(echoReport, 'request') === 4 && sides(echoReport, 'response') === 0,
    `echo redactions: ${JSON.stringify(echoReport?.redactions)}`);
  console.log(`  request:  sent          "${sent}"`);
  console.log(`            server echoed "${echoed}"`);
  console.log(`            (audit: ${sides(echoReport, 'request')} request-side redactions, ` +
    `${sides(echoReport, 'response')} response-side)`);
  const record = lookup.result.structuredContent;
  const expected = { email: '[EMAIL_REDACTED]', ssn: '[SSN_REDACTED]', phone: '[PHONE_REDACTED]',
    card: '[CC_REDACTED]' };
  for (const [field, marker] of Object.entries(expected)) {
    expect(record?.[field] === marker, `customer.lookup ${field} reached the client as ` +
      `${JSON.stringify(record?.[field])}`);
  }
  const lookupText = text(lookup);
  expect(!/jane\.doe@|123-45-6789|4111 1111|555-123-4567/.test(lookupText),
    `customer.lookup text content leaked: ${lookupText}`);
  expect(record.name === 'Jane Doe' && record.customerId === 'cust-123', 'other fields changed');
  console.log(`  response: customer.lookup cust-123 → email ${record.email}, ssn ${record.ssn},`);
  console.log(`            phone ${record.phone}, card ${record.card}; name "${record.name}" kept`);
  console.log(`            (audit: ${sides(lookupReport, 'response')} response-side redactions, ` +
    'text content included)');
}

async function scenario05(bin) {
  console.log('\n[05 tool-scope-filter] reader-user with scopes tools:read');
  const before = new Session(bin, '01-allow-all.json');
  await before.open();
  const all = toolNames(await before.request('tools/list', {}));
  await before.close();
  const s = new Session(bin, '05-tool-scope-filter.json',
    ['--user', 'reader-user', '--scopes', 'tools:read']);
  await s.open();
  const visible = toolNames(await s.request('tools/list', {}));
  const hidden = all.filter((t) => !visible.includes(t));
  console.log(`  filtered: tools/list ${all.length} → ${visible.length} tools; hidden: ` +
    hidden.join(', '));
  const readers = ['customer.lookup', 'customer.list'];
  for (const tool of readers) {
    expect(visible.includes(tool), `${tool} should be visible`);
    expectAllowed(await s.call(tool, tool === 'customer.lookup' ? { customerId: 'cust-456' } : {}),
      tool);
  }
  console.log(`  allowed: ${readers.join(', ')}`);
  for (const tool of ['customer.create', 'customer.delete']) {
    expect(!visible.includes(tool), `${tool} should be hidden`);
    const e = expectRefused(await s.call(tool, { name: 'x', customerId: 'cust-456' }), -32012, tool);
    expect(e.data.stage === 'tool_filter', `${tool}: stage ${e.data.stage}`);
    console.log(`  blocked: ${tool.padEnd(16)} → ${describeError(e)}`);
  }
  await s.close();
  expect(JSON.stringify(hidden) ===
    JSON.stringify(['customer.create', 'customer.delete', 'file.write', 'file.delete']),
  `unexpected hidden tools ${hidden.join(', ')}`);
}

async function main() {
  const bin = resolveBinary();
  writeFileSync(auditKey, randomBytes(32), { mode: 0o600 });
  console.log(`mcpmw governance scenarios (${bin})`);
  await scenario01(bin);
  await scenario02(bin);
  await scenario03(bin);
  await scenario04(bin);
  await scenario05(bin);

  const verify = spawnSync(bin, ['audit', 'verify', auditLog, '--key', auditKey],
    { encoding: 'utf8' });
  const records = readFileSync(auditLog, 'utf8').split('\n')
    .filter((l) => l.startsWith('{"seq":')).length;
  console.log(`\n[audit] ${records} signed records; mcpmw audit verify exit ${verify.status}:`);
  console.log(`  ${(verify.stdout + verify.stderr).trim().split('\n').join('\n  ')}`);
  expect(verify.status === 0, 'the audit log did not verify');
  console.log('\nAll scenarios behaved as expected.');
}

main().then(() => {
  clearTimeout(overall);
  rmSync(workDir, { recursive: true, force: true });
  process.exit(0);
}, (e) => fail(e.message));
