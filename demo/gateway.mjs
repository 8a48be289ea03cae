#!/usr/bin/env node
// The mcpmw gateway demo: dependency-free (Node 20+: fetch and node:crypto).
//
// It writes a gateway config to a temporary folder — two upstream servers, both demo/server.mjs
// over stdio: `demo` (the four plain tools) and `crm` (with --governance: customer.* and file.*
// tools); the policy bundle demo/bundles/02-deny-specific-tools.json; JWT identity with an RS256
// key it generates now and publishes as a JWKS file — and starts
//     $MCPMW_BIN serve --config <tmp>/gateway.json
// Then, as an agent holding a JWT (tenant acme, user alice, scope mcp):
//   1. a request without a token → 401 with WWW-Authenticate and resource_metadata
//   2. POST initialize on /servers/demo/mcp → a session (Mcp-Session-Id)
//   3. tools/call echo.uppercase → "HELLO THROUGH THE GATEWAY"
//   4. on the aggregated /mcp: tools/list (names <server>__<tool>), then crm__customer.delete →
//      denied by policy (-32011, customer-data-protected); crm__customer.lookup → allowed
//   5. GET /metrics → the gateway's call counters, decisions and pool gauges
//   6. SIGTERM → mcpmw drains and exits 0
// Exit 0 when every step showed what it should; otherwise `Demo failed: <reason>` and exit 1.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

import { mcpmwBinary } from './mcpmw_binary.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVER = path.join(HERE, 'server.mjs');
const BUNDLE = path.join(HERE, 'bundles', '02-deny-specific-tools.json');
const TIMEOUT_MS = 30_000;

let child = null;
function fail(reason) {
  console.log(`Demo failed: ${reason}`);
  if (child && child.exitCode === null) child.kill('SIGKILL');
  process.exit(1);
}
const overall = setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);

let bin;
try {
  bin = mcpmwBinary();
} catch (e) {
  fail(e.message);
}

// ---- identity: an RS256 key, its JWKS, and a token ----
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpmw-gateway-demo-'));
const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'demo-key-1', alg: 'RS256', use: 'sig' };
fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
function mintJwt(claims) {
  const head = b64url({ alg: 'RS256', typ: 'JWT', kid: 'demo-key-1' });
  const body = b64url(claims);
  const sig = crypto.sign('sha256', Buffer.from(`${head}.${body}`), privateKey).toString('base64url');
  return `${head}.${body}.${sig}`;
}
const now = Math.floor(Date.now() / 1000);
const token = mintJwt({
  iss: 'https://auth.demo.example', aud: 'mcpmw-demo', sub: 'alice', azp: 'research-agent',
  tenant_id: 'acme', scope: 'mcp tools:call', iat: now, exp: now + 600,
});

// ---- the gateway ----
const config = {
  listen: { address: '127.0.0.1', port: 0 },
  policy: BUNDLE,
  identity: {
    jwt: {
      issuer: 'https://auth.demo.example', audience: 'mcpmw-demo', jwksFile: 'jwks.json',
      claims: { tenant: 'tenant_id', user: 'sub', agent: 'azp', scopes: 'scope' },
    },
    requiredScopes: ['mcp'],
    resource: 'http://127.0.0.1/mcp',
    authorizationServers: ['https://auth.demo.example'],
  },
  servers: [
    { name: 'demo', command: [process.execPath, SERVER], isolation: 'shared', minWarm: 1, prewarm: 'initialize' },
    { name: 'crm', command: [process.execPath, SERVER, '--governance'], isolation: 'exclusive', minWarm: 1, maxWorkers: 4 },
  ],
};
fs.writeFileSync(path.join(dir, 'gateway.json'), JSON.stringify(config, null, 2));
console.log(`$ mcpmw serve --config ${path.join(dir, 'gateway.json')}`);
child = spawn(bin, ['serve', '--config', path.join(dir, 'gateway.json')], { stdio: ['ignore', 'inherit', 'pipe'] });
const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
const port = await new Promise((resolve) => {
  let seen = '';
  child.stderr.on('data', (chunk) => {
    process.stderr.write(chunk);
    seen += chunk;
    const m = seen.match(/serving http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) resolve(Number(m[1]));
  });
});
const base = `http://127.0.0.1:${port}`;
for (let i = 0; i < 100; i++) {
  const r = await fetch(`${base}/readyz`).catch(() => null);
  if (r && r.status === 200) break;
  await new Promise((r2) => setTimeout(r2, 50));
}

// ---- a tiny Streamable HTTP client ----
let nextId = 1;
async function post(endpoint, message, { session, auth = true } = {}) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
  if (auth) headers.Authorization = `Bearer ${token}`;
  if (session) Object.assign(headers, { 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-06-18' });
  const res = await fetch(`${base}${endpoint}`, { method: 'POST', headers, body: JSON.stringify(message) });
  const type = res.headers.get('content-type') || '';
  const text = await res.text();
  let body = null;
  if (type.startsWith('application/json') && text) body = JSON.parse(text);
  if (type.startsWith('text/event-stream')) {
    const events = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
    body = events.find((e) => e.id === message.id) ?? events.at(-1);
  }
  return { status: res.status, headers: res.headers, body, text };
}
const request = (method, params) => ({ jsonrpc: '2.0', id: nextId++, method, params });
const initParams = { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'gateway-demo', version: '1.0.0' } };
async function open(endpoint) {
  const r = await post(endpoint, request('initialize', initParams));
  const session = r.headers.get('mcp-session-id');
  if (r.status !== 200 || !session) fail(`initialize on ${endpoint}: HTTP ${r.status} ${r.text}`);
  await post(endpoint, { jsonrpc: '2.0', method: 'notifications/initialized' }, { session });
  return { session, server: r.body.result.serverInfo };
}

console.log('\n1. no token');
const anon = await post('/servers/demo/mcp', request('initialize', initParams), { auth: false });
console.log(`   HTTP ${anon.status}  WWW-Authenticate: ${anon.headers.get('www-authenticate')}`);
if (anon.status !== 401 || !/resource_metadata=/.test(anon.headers.get('www-authenticate') || '')) {
  fail('a request without a token was not refused with 401 and resource_metadata');
}

console.log('\n2. initialize on /servers/demo/mcp with a JWT (tenant acme, user alice)');
const demo = await open('/servers/demo/mcp');
console.log(`   session ${demo.session}, server ${demo.server.name} ${demo.server.version}`);

console.log('\n3. tools/call echo.uppercase');
const echo = await post('/servers/demo/mcp', request('tools/call', { name: 'echo.uppercase', arguments: { text: 'hello through the gateway' } }), { session: demo.session });
const echoed = echo.body?.result?.content?.[0]?.text;
console.log(`   ← ${echoed}`);
if (echoed !== 'HELLO THROUGH THE GATEWAY') fail(`echo.uppercase answered ${echo.text}`);

console.log('\n4. the aggregated endpoint /mcp');
const agg = await open('/mcp');
const list = await post('/mcp', request('tools/list', {}), { session: agg.session });
const names = (list.body?.result?.tools ?? []).map((t) => t.name);
console.log(`   tools: ${names.join(', ')}`);
if (!names.includes('demo__echo.uppercase') || !names.includes('crm__customer.lookup')) fail(`tools/list on /mcp: ${list.text}`);
const denied = await post('/mcp', request('tools/call', { name: 'crm__customer.delete', arguments: { customerId: 'c-1001' } }), { session: agg.session });
const err = denied.body?.error;
console.log(`   crm__customer.delete → error ${err?.code} ${err?.message} (${err?.data?.reasonCode})`);
if (err?.code !== -32011 || err?.data?.reasonCode !== 'customer-data-protected') fail(`customer.delete was not denied: ${denied.text}`);
const lookup = await post('/mcp', request('tools/call', { name: 'crm__customer.lookup', arguments: { customerId: 'cust-123' } }), { session: agg.session });
console.log(`   crm__customer.lookup → allowed: ${(lookup.body?.result?.content?.[0]?.text ?? lookup.text).slice(0, 120)}`);
if (!lookup.body?.result) fail(`customer.lookup failed: ${lookup.text}`);

console.log('\n5. GET /metrics (excerpt)');
const metrics = await (await fetch(`${base}/metrics`)).text();
const shown = metrics.split('\n').filter((l) => /^(mcpmw_gateway_calls_total|mcpmw_decisions_total|mcpmw_pool_workers)/.test(l));
for (const line of shown.slice(0, 14)) console.log(`   ${line}`);
if (!shown.some((l) => l.startsWith('mcpmw_gateway_calls_total'))) fail('/metrics has no mcpmw_gateway_calls_total');

console.log('\n6. SIGTERM: drain');
child.kill('SIGTERM');
const { code, signal } = await exited;
if (code !== 0) fail(`mcpmw serve exited with ${code ?? signal}`);
fs.rmSync(dir, { recursive: true, force: true });
clearTimeout(overall);
console.log('\nGateway demo passed: JWT accepted and required, a call served, a call denied by policy, metrics shown, clean drain.');
