// An MCP SDK client Transport that spawns a process (here: mcpmw) and speaks Content-Length
// framing with it, as the earlier TypeScript prototype's clients did. It implements the SDK's
// Transport interface (start / send / close, onmessage / onerror / onclose), so an SDK Client
// runs over it unchanged.
import { spawn } from 'node:child_process';

import { JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';

import { ContentLengthDecoder, encodeFrame } from './content_length.mjs';

export class ContentLengthClientTransport {
  /**
   * @param {object} p
   * @param {string} p.command
   * @param {string[]} [p.args]
   * @param {object} [p.env]   the whole environment of the child (default: this process's)
   * @param {'pipe'|'inherit'} [p.stderr='pipe']
   * @param {number} [p.closeTimeoutMs=5000]  how long close() waits after stdin EOF before SIGTERM
   * @param {boolean} [p.validate=true]  check messages against the SDK's JSON-RPC schema (off:
   *   deliver any parsed JSON, e.g. error responses with id null, which the schema rejects)
   */
  constructor({ command, args = [], env = process.env, stderr = 'pipe', closeTimeoutMs = 5000, validate = true }) {
    this.params = { command, args, env, stderr, closeTimeoutMs, validate };
    this.decoder = new ContentLengthDecoder();
    this.process = undefined;
    this.exitStatus = undefined; // {code, signal} once the child exited
    this.framingError = undefined; // set when the child's output was not Content-Length framed
    this._exited = undefined;
  }

  get pid() {
    return this.process?.pid ?? null;
  }

  get stderr() {
    return this.process?.stderr ?? null;
  }

  /** Resolves with {code, signal} when the child has exited. */
  get exited() {
    return this._exited;
  }

  async start() {
    if (this.process) throw new Error('ContentLengthClientTransport already started');
    const { command, args, env, stderr } = this.params;
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', stderr], env });
    this.process = child;
    this._exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
    child.once('close', () => this.onclose?.());
    child.stdin.on('error', (e) => this.onerror?.(e));
    child.stdout.on('data', (chunk) => {
      let bodies;
      try {
        bodies = this.decoder.push(chunk);
      } catch (e) {
        // The stream cannot be resynchronised: report and end the session, so that pending
        // requests fail at once (Connection closed) instead of timing out.
        this.framingError = e;
        this.onerror?.(e);
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
        this.close().catch(() => {});
        return;
      }
      for (const body of bodies) {
        let message;
        try {
          message = JSON.parse(body);
          if (this.params.validate) message = JSONRPCMessageSchema.parse(message);
        } catch (e) {
          this.onerror?.(new Error(`bad message from ${command}: ${e.message}: ${body.slice(0, 200)}`));
          continue;
        }
        this.onmessage?.(message);
      }
    });
    await new Promise((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  }

  send(message) {
    return new Promise((resolve, reject) => {
      const stdin = this.process?.stdin;
      if (!stdin || stdin.destroyed || stdin.writableEnded) {
        reject(new Error('Not connected'));
        return;
      }
      if (stdin.write(encodeFrame(message))) resolve();
      else stdin.once('drain', resolve);
    });
  }

  /** Writes raw bytes (for tests that need to send something the encoder would not). */
  writeRaw(bytes) {
    this.process.stdin.write(bytes);
  }

  /** Closes stdin and waits for the child; SIGTERM, then SIGKILL, if it does not exit. */
  async close() {
    const child = this.process;
    if (!child || this.exitStatus) return;
    const wait = (ms) => Promise.race([
      this._exited,
      new Promise((r) => setTimeout(r, ms).unref()),
    ]);
    try {
      child.stdin.end();
    } catch { /* already closed */ }
    await wait(this.params.closeTimeoutMs);
    if (!this.exitStatus) {
      child.kill('SIGTERM');
      await wait(2000);
    }
    if (!this.exitStatus) {
      child.kill('SIGKILL');
      await this._exited;
    }
  }
}
