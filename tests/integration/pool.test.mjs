// Worker pools and sandboxing end to end, with real processes and real kernel features:
// `mcpmw pool check` and `mcpmw pool run` on a profiles file, SIGKILL of mcpmw with 20 warm
// workers, and the sidecar's containment flags (`mcpmw stdio --sandbox-network none`,
// `--memory-limit`, `--pids-limit`, `--namespaces pid`, `--profile FILE`) against
// fixtures/sandbox_server.mjs, whose tools try what the sandbox must stop. A test whose kernel
// feature this host lacks is skipped with the reason `mcpmw pool check` gives for it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { RawSession } from './lib/raw_session.mjs';
import {
  NODE,
  baseEnv,
  descendants,
  exited,
  fixturePath,
  isAlive,
  mcpmwArgs,
  mcpmwBin,
  spawnMcpmw,
  tailCollector,
  waitFor,
  waitGone,
  withStderrOnFailure,
} from './lib/mcpmw.mjs';

const SERVER = fixturePath('sandbox_server.mjs');
const T = { timeout: 60_000 };

const dir = mkdtempSync(path.join(tmpdir(), 'mcpmw-pool-'));
const cleanups = [];
after(() => {
  for (const c of cleanups.splice(0)) c();
  rmSync(dir, { recursive: true, force: true });
});

let fileSeq = 0;
function writeJson(name, doc) {
  const file = path.join(dir, `${++fileSeq}-${name}`);
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

/** Runs `mcpmw ARGS…` to completion; returns {status, stdout, stderr}. */
function runMcpmw(args) {
  return spawnSync(mcpmwBin(), args, { env: baseEnv(), encoding: 'utf8', timeout: 30_000 });
}

/**
 * Whether this host can provide a required sandbox step: `mcpmw pool check` on a profile that
 * requires it. Returns null when it can, else the reason (printed by the skipping test).
 */
function hostLacks(sandbox) {
  const file = writeJson('probe.json', { pools: [{ name: 'probe', command: [NODE], sandbox }] });
  const r = runMcpmw(['pool', 'check', file]);
  if (r.status === 0) return null;
  const line = r.stdout.split('\n').find((l) => l.includes('cannot start')) ?? r.stderr;
  return line.trim();
}

function skipUnless(t, sandbox) {
  const reason = hostLacks(sandbox);
  if (reason) {
    console.log(`# skipped: ${reason}`);
    t.skip(reason);
    return true;
  }
  return false;
}

/** The sidecar in front of the sandbox fixture, with `flags` before `--`. */
function sidecar(flags, o = {}) {
  const s = new RawSession(mcpmwArgs([NODE, SERVER], { killTimeoutMs: 300, extra: flags }), o);
  cleanups.push(() => s.kill());
  return s;
}

async function serverPid(s) {
  return JSON.parse(await s.callText('whoami')).pid;
}

/** The only direct child of `pid` (the sidecar's server), as the host's /proc sees it. */
function onlyChild(pid) {
  const kids = descendants(pid).filter((k) => {
    try {
      const stat = readFileSync(`/proc/${k}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
    } catch {
      return false;
    }
  });
  assert.equal(kids.length, 1, `mcpmw ${pid} has one child, the server (found ${kids})`);
  return kids[0];
}

/** A TCP listener on loopback, port 0; resolves with {port, close()}. */
function listener() {
  return new Promise((resolve) => {
    const server = net.createServer((socket) => socket.destroy());
    server.listen(0, '127.0.0.1', () => {
      resolve({ port: server.address().port, close: () => server.close() });
    });
  });
}

describe('mcpmw pool check', () => {
  test('prints each profile\'s sandbox plan and refuses a bad file with the JSON pointer', T, () => {
    const good = writeJson('pools.json', {
      pools: [
        { name: 'plain', command: [NODE, SERVER] },
        {
          name: 'boxed',
          command: [NODE, SERVER],
          env: { allow: ['PATH'] },
          sandbox: { seccomp: { require: 'optional', network: 'none' } },
        },
      ],
    });
    const ok = runMcpmw(['pool', 'check', good]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^profile `plain`: /m);
    assert.match(ok.stdout, /^ {2}no_new_privs: +applied \(required\)/m);
    assert.match(ok.stdout, /^ {2}seccomp: +(applied \(optional\): default deny list, network none|skipped \(optional\): .+)/m);
    assert.match(ok.stdout, new RegExp(`^OK: ${good.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 2 profile\\(s\\)$`, 'm'));

    const bad = writeJson('bad.json', { pools: [{ name: 'a', command: [NODE], minWarm: 3, maxWorkers: 2 }] });
    const no = runMcpmw(['pool', 'check', bad]);
    assert.equal(no.status, 1);
    assert.match(no.stderr, /INVALID: .*: \/pools\/0\/minWarm: is 3, above maxWorkers \(2\)/);
  });
});

describe('mcpmw pool run', { timeout: 240_000 }, () => {
  test('SIGKILL of mcpmw with 20 warm workers leaves zero processes', { timeout: 150_000 }, async () => {
    const file = writeJson('twenty.json', {
      pools: [{ name: 'killtest', command: [NODE, SERVER], minWarm: 20, maxWorkers: 20, startTimeoutMs: 90_000 }],
    });
    const child = spawnMcpmw(['pool', 'run', file]);
    cleanups.push(() => child.kill('SIGKILL'));
    const stderr = tailCollector(child.stderr);
    await withStderrOnFailure(stderr, async () => {
      await waitFor(() => stderr.text.includes('mcpmw: pool killtest: 20 warm'), 120_000, '20 warm workers');
      const workers = descendants(child.pid);
      assert.ok(workers.length >= 20, `20 workers under mcpmw, found ${workers.length}`);
      child.kill('SIGKILL');
      assert.equal((await exited(child)).signal, 'SIGKILL');
      for (const pid of workers) {
        assert.ok(await waitGone(pid, 5000), `worker ${pid} outlived mcpmw's SIGKILL`);
      }
    });
  });

  test('SIGTERM stops and reaps every worker; the metrics file is written on SIGUSR1 and at exit', T, async () => {
    const file = writeJson('three.json', {
      pools: [{ name: 'three', command: [NODE, SERVER], minWarm: 3, maxWorkers: 4 }],
    });
    const metrics = path.join(dir, 'pool.prom');
    const child = spawnMcpmw(['pool', 'run', file, '--metrics-file', metrics]);
    cleanups.push(() => child.kill('SIGKILL'));
    const stderr = tailCollector(child.stderr);
    await withStderrOnFailure(stderr, async () => {
      await waitFor(() => stderr.text.includes('mcpmw: pool three: 3 warm'), 30_000, '3 warm workers');
      const workers = descendants(child.pid);
      assert.equal(workers.length, 3);
      child.kill('SIGUSR1');
      const warm = await waitFor(() => {
        try {
          return readFileSync(metrics, 'utf8').match(/^mcpmw_pool_workers\{profile="three",state="warm"\} (\d+)$/m);
        } catch {
          return null;
        }
      }, 10_000, 'the metrics file after SIGUSR1');
      assert.equal(warm[1], '3');

      child.kill('SIGTERM');
      const status = await exited(child);
      assert.equal(status.code, 0, `mcpmw exit ${JSON.stringify(status)}`);
      assert.match(stderr.text, /pool run: every worker stopped and reaped/);
      for (const pid of workers) assert.ok(!isAlive(pid), `worker ${pid} is still alive`);
      const final = readFileSync(metrics, 'utf8');
      assert.match(final, /^mcpmw_pool_workers\{profile="three",state="warm"\} 0$/m);
      assert.match(final, /^mcpmw_pool_workers_spawned_total\{profile="three"\} 3$/m);
    });
  });
});

describe('mcpmw stdio containment', { timeout: 240_000 }, () => {
  test('--sandbox-network none: the server cannot open an inet socket; unconfined it can', T, async (t) => {
    if (skipUnless(t, { seccomp: { require: 'required', network: 'none' } })) return;
    const tcp = await listener();
    cleanups.push(tcp.close);
    const confined = sidecar(['--sandbox-network', 'none', '--sandbox-require', 'seccomp']);
    await confined.initialize();
    assert.equal(await confined.callText('socket', { port: tcp.port }), 'error EAFNOSUPPORT');
    assert.equal(await confined.callText('echo', { text: 'still serving' }), 'still serving');
    assert.equal((await confined.closeAndWait()).code, 0);

    const open = sidecar([]);
    await open.initialize();
    assert.equal(await open.callText('socket', { port: tcp.port }), 'connected');
    assert.equal((await open.closeAndWait()).code, 0);
  });

  test('--memory-limit 64: a 256 MiB allocation kills the server, its call gets -32000, the replacement answers', T, async (t) => {
    if (skipUnless(t, { cgroup: { require: 'required', memoryMb: 64 } })) return;
    const s = sidecar(['--memory-limit', '64', '--sandbox-require', 'cgroup', '--restart-backoff-ms', '100']);
    await s.initialize();
    const first = await serverPid(s);
    const killed = await s.call('alloc', { mb: 256 }, { timeoutMs: 30_000 });
    assert.equal(killed.error?.code, -32000, JSON.stringify(killed));
    assert.equal(killed.error.data?.reason, 'server-exited');
    assert.match(killed.error.data?.detail, /signal 9/);
    assert.equal(await s.callText('echo', { text: 'after the OOM kill' }, { timeoutMs: 10_000 }), 'after the OOM kill');
    assert.notEqual(await serverPid(s), first, 'a new server process');
    assert.equal(await s.callText('alloc', { mb: 8 }), 'allocated 8 MiB', 'small allocations still work');
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('--pids-limit 16: a fork bomb is contained, mcpmw stays healthy and the bomb dies with the server', T, async (t) => {
    if (skipUnless(t, { cgroup: { require: 'required', pidsMax: 16 } })) return;
    const s = sidecar(['--pids-limit', '16', '--sandbox-require', 'cgroup']);
    await s.initialize();
    const server = onlyChild(s.pid);
    const cgroup = readFileSync(`/proc/${server}/cgroup`, 'utf8').split('\n')
      .map((l) => l.split(':'))
      .find((f) => f[1] === 'pids' || f[0] === '0');
    assert.equal(await s.callText('forkbomb'), 'started');
    // The kernel refused forks: pids.events counts them (v1 and v2 alike).
    const events = path.join('/sys/fs/cgroup', cgroup[1] === 'pids' ? 'pids' : '', cgroup[2], 'pids.events');
    await waitFor(() => Number(/max (\d+)/.exec(readFileSync(events, 'utf8'))?.[1] ?? 0) > 0,
      20_000, `refused forks in ${events}`);
    const processes = [s.pid, ...descendants(s.pid)];
    assert.ok(descendants(s.pid).length <= 16, `at most 16 processes under mcpmw, found ${descendants(s.pid).length}`);
    assert.equal(await s.callText('echo', { text: 'healthy' }, { timeoutMs: 10_000 }), 'healthy');
    assert.equal((await s.closeAndWait(15_000)).code, 0);
    for (const pid of processes) {
      assert.ok(await waitGone(pid, 5000), `process ${pid} of the bomb outlived the session`);
    }
  });

  test('--namespaces pid: SIGKILL of mcpmw takes the server and the grandchild it started in its own session', T, async (t) => {
    if (skipUnless(t, { namespaces: { require: 'required', pid: true } })) return;
    const s = sidecar(['--namespaces', 'pid', '--sandbox-require', 'namespaces']);
    await s.initialize();
    assert.equal(await serverPid(s), 1, 'the server is pid 1 of its namespace');
    await s.callText('grandchild');
    const processes = await waitFor(() => {
      const d = descendants(s.pid);
      return d.length >= 2 ? d : null;
    }, 5000, 'the server and its grandchild');
    s.child.kill('SIGKILL');
    await s.exited;
    for (const pid of processes) {
      assert.ok(await waitGone(pid, 5000), `process ${pid} outlived mcpmw's SIGKILL`);
    }
  });

  test('--profile FILE: the server runs with the file\'s environment and sandbox', T, async (t) => {
    if (skipUnless(t, { seccomp: { require: 'required', network: 'none' } })) return;
    const tcp = await listener();
    cleanups.push(tcp.close);
    const file = writeJson('profile.json', {
      name: 'boxed',
      command: [NODE, SERVER],
      env: { allow: ['PATH'], set: { MCPMW_PROFILE_TEST: 'from the file' } },
      sandbox: { seccomp: { require: 'required', network: 'none' } },
    });
    const s = new RawSession(['stdio', '--kill-timeout-ms', '300', '--profile', file]);
    cleanups.push(() => s.kill());
    await s.initialize();
    assert.equal(await s.callText('socket', { port: tcp.port }), 'error EAFNOSUPPORT');
    const env = readFileSync(`/proc/${onlyChild(s.pid)}/environ`, 'utf8').split('\0').filter(Boolean);
    assert.deepEqual(env.map((e) => e.split('=')[0]).sort(), ['MCPMW_PROFILE_TEST', 'PATH']);
    assert.ok(env.includes('MCPMW_PROFILE_TEST=from the file'));
    assert.equal((await s.closeAndWait()).code, 0);
  });

  test('flag errors name the problem', T, () => {
    for (const [flags, message] of [
      [['--sandbox-network', 'maybe'], /--sandbox-network is none or allow, not `maybe`/],
      [['--memory-limit', '0'], /--memory-limit is 1\.\.\d+, not 0/],
      [['--namespaces', 'pid,ipc'], /--namespaces: unknown namespace `ipc`/],
      [['--sandbox-require', 'selinux'], /unknown sandbox step `selinux`/],
    ]) {
      const r = runMcpmw(['stdio', ...flags, '--', NODE, SERVER]);
      assert.equal(r.status, 2, `${flags.join(' ')}: exit ${r.status}`);
      assert.match(r.stderr, message);
    }
  });
});
