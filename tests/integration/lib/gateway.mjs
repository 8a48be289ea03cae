// Helpers for the `mcpmw serve` (Streamable HTTP gateway) integration tests: a config in a temp
// folder, the gateway started on an ephemeral port and stopped with SIGTERM, JWTs minted with
// node:crypto, and raw HTTP requests for what the SDK client cannot send (any Host or Origin,
// any Mcp-* header).
//
// Every worker a gateway starts carries MCPMW_ITEST_MARK=<unique id> in its environment, so the
// leftover-process check finds exactly this gateway's workers, even after they were reparented
// and even while other tests run their own server-everything processes.
import { spawn } from 'node:child_process';
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import {
  NODE,
  baseEnv,
  descendants,
  everythingServerPath,
  exited,
  mcpmwBin,
  sleep,
  tailCollector,
  waitGone,
  within,
} from './mcpmw.mjs';

export const ISSUER = 'https://auth.test';
export const AUDIENCE = 'mcpmw-test';
/** The Accept header every Streamable HTTP POST must send. */
export const ACCEPT_BOTH = 'application/json, text/event-stream';

// ---- keys and tokens ------------------------------------------------------------------------

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * Signing keys for the tests: RS256 and ES256 (kids "rs-1", "es-1"), plus the JWKS document
 * that holds their public halves.
 */
export function makeSigningKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsJwk = { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rs-1', alg: 'RS256', use: 'sig' };
  const esJwk = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'es-1', alg: 'ES256', use: 'sig' };
  return {
    rs: { alg: 'RS256', kid: 'rs-1', privateKey: rsa.privateKey },
    es: { alg: 'ES256', kid: 'es-1', privateKey: ec.privateKey },
    // The HS256 shared secret (hs256SecretFile); such a key has no kid.
    hs: { alg: 'HS256', secret: randomBytes(32).toString('hex') },
    jwks: { keys: [rsJwk, esJwk] },
  };
}

/**
 * A compact JWS over `claims` with `key` (from makeSigningKeys: {alg, kid, privateKey}, or
 * {alg: 'HS256', secret}). ES256 signatures are raw r||s (JWS), not DER.
 */
export function signJwt(key, claims) {
  const header = { alg: key.alg, typ: 'JWT', ...(key.kid ? { kid: key.kid } : {}) };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  let signature;
  if (key.alg === 'HS256') {
    signature = createHmac('sha256', key.secret).update(input).digest();
  } else if (key.alg === 'ES256') {
    signature = cryptoSign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  } else {
    signature = cryptoSign('sha256', Buffer.from(input), key.privateKey);
  }
  return `${input}.${b64url(signature)}`;
}

/** The claims of a token valid for the test gateway for the next hour, with `over` applied. */
export function claimsFor(over = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-a',
    azp: 'agent-a',
    tenant_id: 'acme',
    scope: 'mcp',
    iat: now - 5,
    nbf: now - 5,
    exp: now + 3600,
    ...over,
  };
}

export const sha256Hex = (s) => createHash('sha256').update(s).digest('hex');

/**
 * The gateway config's `identity` object for the keys in jwks.json and hs256.key (write both,
 * from makeSigningKeys) and one API key.
 */
export function identityConfig(apiKey) {
  return {
    jwt: {
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksFile: 'jwks.json',
      hs256SecretFile: 'hs256.key',
      clockSkewSeconds: 60,
      claims: { tenant: 'tenant_id', user: 'sub', agent: 'azp', scopes: 'scope', roles: 'roles' },
    },
    apiKeys: [{ id: 'ci-bot', sha256: sha256Hex(apiKey), tenant: 'acme', user: 'ci', scopes: ['mcp'] }],
    // The port is not known before the gateway binds; the metadata only echoes this URL.
    resource: 'http://127.0.0.1/mcp',
    authorizationServers: [ISSUER],
    anonymous: false,
  };
}

// ---- config ---------------------------------------------------------------------------------

/**
 * A pool profile that runs server-everything on stdio. `mark` goes into the worker's
 * environment (MCPMW_ITEST_MARK) for the leftover-process check.
 */
export function everythingProfile(name, mark, over = {}) {
  return {
    name,
    command: [NODE, everythingServerPath(), 'stdio'],
    env: { allow: ['PATH', 'HOME'], set: { MCPMW_ITEST_MARK: mark } },
    isolation: 'exclusive',
    minWarm: 1,
    maxWorkers: 8,
    prewarm: 'none',
    ...over,
  };
}

/**
 * A policy bundle that denies the get-tiny-image tool on the server named "everything" (only
 * there: tool.server is the gateway's server name) and allows the rest.
 */
export function denyTinyImageBundle() {
  return {
    bundleVersion: 'gateway-itest.1',
    mode: 'enforce',
    identity: { tenantId: 'default-tenant', userId: 'default-user', agentId: 'default-agent' },
    policyRules: [
      {
        ruleId: 'deny-tiny-image',
        status: 'deny',
        conditionDsl: 'method == "tools/call" && tool.name == "get-tiny-image" && tool.server == "everything"',
        reasonCode: 'no-images-here',
        message: 'Images from the everything server are not allowed through the gateway.',
      },
      { ruleId: 'allow-other', status: 'allow', conditionDsl: '*', reasonCode: 'allow-other' },
    ],
  };
}

// ---- the gateway process ------------------------------------------------------------------

/** Processes (other than zombies) whose environment holds MCPMW_ITEST_MARK=`mark`. */
export function markedProcesses(mark) {
  const needle = Buffer.from(`MCPMW_ITEST_MARK=${mark}\0`);
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') continue;
      if (readFileSync(`/proc/${name}/environ`).includes(needle)) out.push(Number(name));
    } catch { /* raced with exit, or not ours to read */ }
  }
  return out;
}

/**
 * Writes `config` (plus `files`: name → string or JSON value) to a fresh temp folder and starts
 * `mcpmw serve --config` there. `build(mark)` returns the config; `mark` is this gateway's
 * unique worker marker. Resolves once the bound port is printed and GET /readyz answers 200.
 *
 * The returned object: {proc, port, base (http://127.0.0.1:PORT), dir, mark, stderr, stop()}.
 * stop() sends SIGTERM and resolves with {code, signal, ms}; it throws when mcpmw or one of its
 * workers is still alive afterwards. Call it once (later calls return the same promise).
 */
export async function startGateway(build, { files = {}, readyTimeoutMs = 20_000 } = {}) {
  const mark = `gw-${process.pid}-${randomBytes(6).toString('hex')}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcpmw-gateway-'));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(path.join(dir, name),
      typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  const config = build(mark);
  writeFileSync(path.join(dir, 'gateway.json'), JSON.stringify(config, null, 2));
  const proc = spawn(mcpmwBin(), ['serve', '--config', path.join(dir, 'gateway.json')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: baseEnv(),
    cwd: dir,
  });
  const stderr = tailCollector(proc.stderr);
  if (process.env.MCPMW_TEST_VERBOSE) proc.stderr.on('data', (c) => process.stderr.write(c));
  const exit = exited(proc);
  const seenKids = new Set();
  const gw = { proc, dir, mark, stderr, port: 0, base: '', seenKids };

  let stopping = null;
  gw.stop = () => {
    if (!stopping) stopping = stopGateway(gw, exit);
    return stopping;
  };

  try {
    const port = await within(readyTimeoutMs, 'mcpmw serve to print its port', (async () => {
      for (;;) {
        const m = /mcpmw: serving http:\/\/127\.0\.0\.1:(\d+) \(servers: [^)]*\)/.exec(stderr.text);
        if (m) return Number(m[1]);
        if (proc.exitCode !== null || proc.signalCode !== null) {
          throw new Error(`mcpmw serve exited (${proc.exitCode ?? proc.signalCode}) before ` +
            `serving:\n${stderr.text}`);
        }
        await sleep(20);
      }
    })());
    gw.port = port;
    gw.base = `http://127.0.0.1:${port}`;
    await within(readyTimeoutMs, 'GET /readyz to answer 200', (async () => {
      for (;;) {
        try {
          const r = await fetch(`${gw.base}/readyz`);
          await r.arrayBuffer();
          if (r.status === 200) return;
        } catch { /* not listening yet */ }
        await sleep(50);
      }
    })());
    for (const k of descendants(proc.pid)) seenKids.add(k);
  } catch (err) {
    proc.kill('SIGKILL');
    await exit;
    throw err;
  }
  return gw;
}

async function stopGateway(gw, exit) {
  const { proc } = gw;
  for (const k of descendants(proc.pid)) gw.seenKids.add(k);
  const started = Date.now();
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  let status;
  try {
    status = await within(20_000, 'mcpmw serve to exit after SIGTERM', exit);
  } catch (err) {
    proc.kill('SIGKILL');
    await exit;
    throw new Error(`${err.message}\n--- mcpmw stderr (tail) ---\n${gw.stderr.text.slice(-4000)}`);
  }
  const ms = Date.now() - started;
  const leftovers = [];
  for (const k of gw.seenKids) {
    if (!(await waitGone(k, 5000))) leftovers.push(k);
  }
  const deadline = Date.now() + 5000;
  let marked = markedProcesses(gw.mark);
  while (marked.length && Date.now() < deadline) {
    await sleep(50);
    marked = markedProcesses(gw.mark);
  }
  leftovers.push(...marked.filter((p) => !leftovers.includes(p)));
  if (leftovers.length) {
    const what = leftovers.map((p) => {
      try { return `${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ')}`; } catch { return `${p}`; }
    });
    for (const p of leftovers) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    throw new Error(`processes started by mcpmw serve are still alive after it exited:\n` +
      `${what.join('\n')}\n--- mcpmw stderr (tail) ---\n${gw.stderr.text.slice(-4000)}`);
  }
  if (!process.env.MCPMW_KEEP_TMP) rmSync(gw.dir, { recursive: true, force: true });
  return { code: status.code, signal: status.signal, ms };
}

// ---- raw HTTP -----------------------------------------------------------------------------

/**
 * One HTTP/1.1 request with exactly the headers given (node:http, so Host and Origin can be
 * anything). Resolves with {status, headers, body (string)}; bounded by `timeoutMs`.
 */
export function rawRequest(base, { method = 'GET', path: p = '/', headers = {}, body, timeoutMs = 10_000 } = {}) {
  const url = new URL(p, base);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method,
      path: url.pathname + url.search,
      headers,
      agent: false,
      setHost: !Object.keys(headers).some((h) => h.toLowerCase() === 'host'),
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${p}: no answer in ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

/**
 * Writes `bytes` on a fresh TCP connection to the gateway and collects what comes back until
 * the server closes (or `timeoutMs`). Resolves with the text received.
 */
export function socketExchange(port, bytes, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; received ${JSON.stringify(got.slice(0, 200))}`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d) => { got += d; });
    s.on('error', () => { /* a reset after the answer: what arrived is what counts */ });
    s.on('close', () => { clearTimeout(timer); resolve(got); });
    s.write(bytes);
  });
}

/**
 * A JSON-RPC POST to `path` with fetch. `headers` are added to Accept and Content-Type.
 * Returns the fetch Response (body unread).
 */
export function postJson(base, p, message, headers = {}, init = {}) {
  return fetch(new URL(p, base), {
    method: 'POST',
    headers: { Accept: ACCEPT_BOTH, 'Content-Type': 'application/json', ...headers },
    body: typeof message === 'string' ? message : JSON.stringify(message),
    ...init,
  });
}

/**
 * Reads SSE events ({id, event, data}) from a fetch Response body, one at a time. `next()`
 * resolves with the next event, or null at the end of the stream.
 */
export function sseReader(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const queue = [];
  let ended = false;
  const parseBlocks = () => {
    for (;;) {
      const m = /\r?\n\r?\n/.exec(buffer);
      if (!m) return;
      const block = buffer.slice(0, m.index);
      buffer = buffer.slice(m.index + m[0].length);
      const ev = { id: undefined, event: undefined, data: undefined };
      let hasField = false;
      for (const line of block.split(/\r?\n/)) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        hasField = true;
        if (field === 'data') ev.data = ev.data === undefined ? value : `${ev.data}\n${value}`;
        else if (field === 'id') ev.id = value;
        else if (field === 'event') ev.event = value;
      }
      if (hasField) queue.push(ev);
    }
  };
  return {
    async next() {
      for (;;) {
        if (queue.length) return queue.shift();
        if (ended) return null;
        const { value, done } = await reader.read();
        if (done) {
          ended = true;
          buffer += decoder.decode();
          parseBlocks();
          continue;
        }
        buffer += decoder.decode(value, { stream: true });
        parseBlocks();
      }
    },
    async cancel() {
      try { await reader.cancel(); } catch { /* already gone */ }
    },
  };
}

/** Prometheus text → the value of the first sample of `name` whose labels include `labels`. */
export function metricValue(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const part of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      have[part[1]] = part[2];
    }
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}
