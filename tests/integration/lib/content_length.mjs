// Content-Length (LSP-style) framing: "Content-Length: N\r\n\r\n" followed by N bytes of UTF-8
// JSON. Used by the test client transport and by the Content-Length fixture server. No
// dependencies, so fixtures can import it directly.

/** Frames one JSON-RPC message (an object, or an already serialized string). */
export function encodeFrame(message) {
  const body = Buffer.from(typeof message === 'string' ? message : JSON.stringify(message), 'utf8');
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]);
}

/** Incremental decoder: push() bytes, get back the complete bodies (as strings). */
export class ContentLengthDecoder {
  constructor({ maxBodyBytes = 256 * 1024 * 1024 } = {}) {
    this.chunks = [];
    this.length = 0;
    this.want = -1; // body length of the frame being read, -1 while reading a header
    this.maxBodyBytes = maxBodyBytes;
  }

  /** @returns {string[]} bodies completed by this chunk */
  push(chunk) {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const out = [];
    for (;;) {
      let buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
      this.chunks = [buf];
      if (this.want < 0) {
        let first = 0;
        while (first < buf.length && (buf[first] === 0x0d || buf[first] === 0x0a)) first++;
        if (first < buf.length && (buf[first] === 0x7b || buf[first] === 0x5b)) {
          // '{' or '[' where a header should start: the peer is speaking newline-delimited JSON.
          throw new Error(`expected a Content-Length header, got JSON text: ${
            buf.subarray(first, first + 120).toString('utf8')}`);
        }
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buf.length > 8192) throw new Error('Content-Length header block longer than 8 KiB');
          return out;
        }
        const header = buf.subarray(0, end).toString('ascii');
        let len = -1;
        for (const line of header.split('\r\n')) {
          const m = /^content-length:\s*(\d+)\s*$/i.exec(line);
          if (m) len = Number(m[1]);
        }
        if (len < 0) throw new Error(`header block without Content-Length: ${JSON.stringify(header)}`);
        if (len > this.maxBodyBytes) throw new Error(`frame of ${len} bytes is over the limit`);
        this.want = len;
        buf = buf.subarray(end + 4);
        this.chunks = [buf];
        this.length = buf.length;
      }
      if (this.length < this.want) return out;
      out.push(buf.subarray(0, this.want).toString('utf8'));
      const rest = buf.subarray(this.want);
      this.chunks = [rest];
      this.length = rest.length;
      this.want = -1;
    }
  }

  /** Bytes held of an incomplete frame. */
  pending() {
    return this.length;
  }
}
