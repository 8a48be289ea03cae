// A raw newline-delimited JSON-RPC session with an mcpmw process: no SDK, so tests can send
// anything (malformed lines, oversized frames, CRLF) and see every byte-level answer.
import { spawnMcpmw, exited, tailCollector } from './mcpmw.mjs';

export class RawSession {
  /**
   * @param {string[]} args  mcpmw's arguments
   * @param {object} [o]
   * @param {object} [o.env]  added to this process's environment
   */
  constructor(args, { env = {} } = {}) {
    this.args = args;
    this.child = spawnMcpmw(args, { env });
    this.stderr = tailCollector(this.child.stderr);
    this.exited = exited(this.child);
    this.received = []; // every message, in arrival order, never consumed
    this.queue = []; // messages not yet taken by next()
    this.badLines = []; // stdout lines that were not JSON
    this.waiters = [];
    this.nextId = 1000;
    let pending = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        let line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line.trim() === '') continue;
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          this.badLines.push(line);
          continue;
        }
        this.received.push(msg);
        this.queue.push(msg);
      }
      this._wake();
    });
    this.child.stdin.on('error', () => {}); // EPIPE after mcpmw exited: the test checks exits
  }

  get pid() {
    return this.child.pid;
  }

  _wake() {
    for (const w of [...this.waiters]) w();
  }

  /** Writes raw text to mcpmw's stdin. */
  writeRaw(text) {
    this.child.stdin.write(text);
  }

  /** Sends one message (object or preformatted string) followed by LF. */
  send(message) {
    this.writeRaw((typeof message === 'string' ? message : JSON.stringify(message)) + '\n');
  }

  /** Takes the first queued message matching `pred`, waiting up to `timeoutMs` for it. */
  next(pred, timeoutMs = 5000, what = 'a message') {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.queue.findIndex(pred);
        if (i >= 0) {
          const [msg] = this.queue.splice(i, 1);
          done();
          resolve(msg);
          return true;
        }
        return false;
      };
      const onExit = () => {
        if (!check()) {
          done();
          reject(new Error(`mcpmw exited while waiting for ${what}${this._diag()}`));
        }
      };
      const timer = setTimeout(() => {
        if (!check()) {
          done();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${this._diag()}`));
        }
      }, timeoutMs);
      const waiter = () => check();
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        this.child.off('exit', onExit);
      };
      if (check()) return;
      this.waiters.push(waiter);
      this.child.once('exit', onExit);
    });
  }

  /** The response (or error response) with this id. */
  response(id, timeoutMs = 5000) {
    return this.next((m) => m.id === id && m.method === undefined, timeoutMs,
      `the response to id ${JSON.stringify(id)}`);
  }

  /** Sends a request and waits for its response. */
  async request(method, params, { id = this.nextId++, timeoutMs = 5000 } = {}) {
    this.send({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
    return this.response(id, timeoutMs);
  }

  /** tools/call; returns the response message. */
  call(name, args = {}, o = {}) {
    return this.request('tools/call', { name, arguments: args }, o);
  }

  /** tools/call that must succeed; returns the first content text. */
  async callText(name, args = {}, o = {}) {
    const res = await this.call(name, args, o);
    if (res.error) throw new Error(`${name} failed: ${JSON.stringify(res.error)}${this._diag()}`);
    return res.result.content[0].text;
  }

  /** initialize (id 1) + notifications/initialized; returns the initialize result. */
  async initialize({ protocolVersion = '2025-06-18', name = 'raw-test-client' } = {}) {
    const res = await this.request('initialize', {
      protocolVersion,
      capabilities: { roots: {} },
      clientInfo: { name, version: '1.0.0' },
    }, { id: 1, timeoutMs: 10_000 });
    if (res.error) throw new Error(`initialize failed: ${JSON.stringify(res.error)}`);
    this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return res.result;
  }

  /** Closes stdin (EOF) and waits for mcpmw to exit; returns {code, signal, ms}. */
  async closeAndWait(timeoutMs = 10_000) {
    const t0 = Date.now();
    this.child.stdin.end();
    return this.waitExit(timeoutMs, t0);
  }

  async waitExit(timeoutMs = 10_000, t0 = Date.now()) {
    let timer;
    const status = await Promise.race([
      this.exited,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`mcpmw did not exit within ${timeoutMs} ms${this._diag()}`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    return { ...status, ms: Date.now() - t0 };
  }

  /** Last resort cleanup: SIGKILL mcpmw if it is still running. */
  kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  _diag() {
    const tail = this.stderr.text.slice(-3000);
    const unread = this.queue.map((m) => JSON.stringify(m).slice(0, 300)).join('\n  ');
    return `\n--- unread messages ---\n  ${unread || '(none)'}\n--- mcpmw stderr (tail) ---\n${tail}`;
  }
}
