#!/usr/bin/env node
// A dependency-free MCP server for the mcpmw demo: newline-delimited JSON-RPC on stdio (the MCP
// stdio transport), with protocol version negotiation and four small tools. Logs go to stderr.
//
// Tools:
//   echo.uppercase {text}   → the text upper-cased (so what the server received is visible:
//                             a redacted argument comes back as its upper-cased marker)
//   math.add {a, b}         → a + b
//   text.reverse {text}     → the text reversed (by code point)
//   clock.sleep {ms}        → sleeps ms (≤ 60000), sending notifications/progress every 100 ms
//                             when the request carries _meta.progressToken
//
// With `--governance` (demo/scenarios.mjs), eight more tools for the policy scenarios; they are
// off by default so the plain demo keeps its four tools:
//   customer.lookup {customerId}  → a fake customer record (e-mail, US SSN, phone, a Luhn-valid
//                                   test card number) as text content AND structuredContent
//   customer.list {}              → customer ids
//   customer.create {name, email?} → the new customer's id
//   customer.delete {customerId}  → "deleted <id>"
//   customer.export {format?}     → every record as CSV text
//   file.write {path, content}    → "wrote N bytes to <path>" (in memory only)
//   file.delete {path}            → "deleted <path>" (in memory only)
// Errors: unknown tool or bad arguments → -32602; unknown method → -32601. Lines that are not
// JSON are logged and ignored. Exits 0 on stdin EOF.
import { Buffer } from 'node:buffer';
import process from 'node:process';

const SUPPORTED_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'];
const DEFAULT_VERSION = '2025-06-18';
const SERVER_INFO = { name: 'mcpmw-demo-server', version: '1.0.0' };

const TOOLS = [
  {
    name: 'echo.uppercase',
    description: 'Uppercase input text',
    inputSchema: {
      type: 'object',
      properties: { text: { type: 'string' } },
      required: ['text'],
      additionalProperties: false,
    },
  },
  {
    name: 'math.add',
    description: 'Add two numbers',
    inputSchema: {
      type: 'object',
      properties: { a: { type: 'number' }, b: { type: 'number' } },
      required: ['a', 'b'],
      additionalProperties: false,
    },
  },
  {
    name: 'text.reverse',
    description: 'Reverse input text',
    inputSchema: {
      type: 'object',
      properties: { text: { type: 'string' } },
      required: ['text'],
      additionalProperties: false,
    },
  },
  {
    name: 'clock.sleep',
    description: 'Sleep for ms milliseconds, reporting progress',
    inputSchema: {
      type: 'object',
      properties: { ms: { type: 'integer', minimum: 0, maximum: 60000 } },
      required: ['ms'],
      additionalProperties: false,
    },
  },
];

const GOVERNANCE = process.argv.slice(2).includes('--governance');

const objectSchema = (properties, required = []) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});

const GOVERNANCE_TOOLS = [
  {
    name: 'customer.lookup',
    description: 'Look up one customer record (contains personal data)',
    inputSchema: objectSchema({ customerId: { type: 'string' } }, ['customerId']),
  },
  { name: 'customer.list', description: 'List customer ids', inputSchema: objectSchema({}) },
  {
    name: 'customer.create',
    description: 'Create a customer',
    inputSchema: objectSchema({ name: { type: 'string' }, email: { type: 'string' } }, ['name']),
  },
  {
    name: 'customer.delete',
    description: 'Delete a customer',
    inputSchema: objectSchema({ customerId: { type: 'string' } }, ['customerId']),
  },
  {
    name: 'customer.export',
    description: 'Export every customer record as CSV',
    inputSchema: objectSchema({ format: { type: 'string', enum: ['csv'] } }),
  },
  {
    name: 'file.write',
    description: 'Write a file (in memory)',
    inputSchema: objectSchema({ path: { type: 'string' }, content: { type: 'string' } },
      ['path', 'content']),
  },
  {
    name: 'file.delete',
    description: 'Delete a file (in memory)',
    inputSchema: objectSchema({ path: { type: 'string' } }, ['path']),
  },
];
if (GOVERNANCE) TOOLS.push(...GOVERNANCE_TOOLS);

// Fake data only: example.com addresses, a 555 phone number, the well-known Visa test card.
const customers = new Map([
  ['cust-123', {
    customerId: 'cust-123',
    name: 'Jane Doe',
    email: 'jane.doe@example.com',
    ssn: '123-45-6789',
    phone: '555-123-4567',
    card: '4111 1111 1111 1111',
  }],
  ['cust-456', {
    customerId: 'cust-456',
    name: 'John Roe',
    email: 'john.roe@example.org',
    ssn: '234-56-7890',
    phone: '555-987-6543',
    card: '5555 5555 5555 4444',
  }],
]);
const files = new Map();
let nextCustomer = 1000;

const log = (msg) => process.stderr.write(`[demo-server] ${msg}\n`);
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const result = (id, value) => send({ jsonrpc: '2.0', id, result: value });
const error = (id, code, message) => send({ jsonrpc: '2.0', id, error: { code, message } });
const textResult = (text) => ({ content: [{ type: 'text', text }], isError: false });

class InvalidParams extends Error {}

function requireString(args, key) {
  if (typeof args[key] !== 'string') throw new InvalidParams(`Argument "${key}" must be a string`);
  return args[key];
}

function requireNumber(args, key) {
  if (typeof args[key] !== 'number' || !Number.isFinite(args[key])) {
    throw new InvalidParams(`Argument "${key}" must be a number`);
  }
  return args[key];
}

const sleeping = new Map(); // request id (JSON) → {timer, interval}

function callTool(id, params) {
  const name = params?.name;
  const args = params?.arguments ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw new InvalidParams('arguments must be an object');
  }
  switch (name) {
    case 'echo.uppercase':
      return result(id, textResult(requireString(args, 'text').toUpperCase()));
    case 'math.add':
      return result(id, textResult(String(requireNumber(args, 'a') + requireNumber(args, 'b'))));
    case 'text.reverse':
      return result(id, textResult([...requireString(args, 'text')].reverse().join('')));
    case 'clock.sleep': {
      const ms = requireNumber(args, 'ms');
      if (!Number.isInteger(ms) || ms < 0 || ms > 60000) {
        throw new InvalidParams('Argument "ms" must be an integer in 0..60000');
      }
      const token = params?._meta?.progressToken;
      const started = Date.now();
      const key = JSON.stringify(id);
      const interval = token === undefined ? null : setInterval(() => {
        send({
          jsonrpc: '2.0',
          method: 'notifications/progress',
          params: { progressToken: token, progress: Math.min(Date.now() - started, ms), total: ms },
        });
      }, 100);
      const timer = setTimeout(() => {
        if (interval) clearInterval(interval);
        sleeping.delete(key);
        if (token !== undefined) {
          send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: ms, total: ms } });
        }
        result(id, textResult(`slept ${ms}ms`));
      }, ms);
      sleeping.set(key, { timer, interval });
      return undefined;
    }
    default:
      if (GOVERNANCE) return callGovernanceTool(id, name, args);
      return error(id, -32602, `Unknown tool: ${name}`);
  }
}

function callGovernanceTool(id, name, args) {
  switch (name) {
    case 'customer.lookup': {
      const customerId = requireString(args, 'customerId');
      const record = customers.get(customerId);
      if (!record) throw new InvalidParams(`Unknown customer: ${customerId}`);
      const text = `Customer ${record.customerId}: ${record.name}, email ${record.email}, ` +
        `SSN ${record.ssn}, phone ${record.phone}, card ${record.card}`;
      return result(id, { ...textResult(text), structuredContent: { ...record } });
    }
    case 'customer.list':
      return result(id, textResult([...customers.keys()].join(', ')));
    case 'customer.create': {
      const customerId = `cust-${nextCustomer++}`;
      const email = args.email === undefined ? '' : requireString(args, 'email');
      customers.set(customerId, { customerId, name: requireString(args, 'name'), email });
      return result(id, textResult(`created ${customerId}`));
    }
    case 'customer.delete': {
      const customerId = requireString(args, 'customerId');
      if (!customers.delete(customerId)) throw new InvalidParams(`Unknown customer: ${customerId}`);
      return result(id, textResult(`deleted ${customerId}`));
    }
    case 'customer.export': {
      const rows = [...customers.values()].map((c) =>
        [c.customerId, c.name, c.email, c.ssn ?? '', c.phone ?? '', c.card ?? ''].join(','));
      return result(id, textResult(['customerId,name,email,ssn,phone,card', ...rows].join('\n')));
    }
    case 'file.write': {
      const file = requireString(args, 'path');
      const content = requireString(args, 'content');
      files.set(file, content);
      return result(id, textResult(`wrote ${Buffer.byteLength(content)} bytes to ${file}`));
    }
    case 'file.delete': {
      const file = requireString(args, 'path');
      files.delete(file);
      return result(id, textResult(`deleted ${file}`));
    }
    default:
      return error(id, -32602, `Unknown tool: ${name}`);
  }
}

function handleRequest(msg) {
  const { id, method, params } = msg;
  switch (method) {
    case 'initialize': {
      const asked = params?.protocolVersion;
      return result(id, {
        protocolVersion: SUPPORTED_VERSIONS.includes(asked) ? asked : DEFAULT_VERSION,
        capabilities: { tools: { listChanged: false } },
        serverInfo: SERVER_INFO,
      });
    }
    case 'ping':
      return result(id, {});
    case 'tools/list':
      return result(id, { tools: TOOLS });
    case 'tools/call':
      try {
        return callTool(id, params);
      } catch (e) {
        if (e instanceof InvalidParams) return error(id, -32602, e.message);
        throw e;
      }
    default:
      return error(id, -32601, `Method not found: ${method}`);
  }
}

function handleNotification(msg) {
  if (msg.method === 'notifications/cancelled') {
    const entry = sleeping.get(JSON.stringify(msg.params?.requestId));
    if (entry) {
      clearTimeout(entry.timer);
      if (entry.interval) clearInterval(entry.interval);
      sleeping.delete(JSON.stringify(msg.params?.requestId));
      log(`cancelled request ${JSON.stringify(msg.params?.requestId)}`);
    }
  }
  // notifications/initialized and any other notification: nothing to do.
}

function handleLine(line) {
  if (line.endsWith('\r')) line = line.slice(0, -1);
  if (line.trim() === '') return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    log(`ignoring a line that is not JSON (${line.length} bytes)`);
    return;
  }
  if (!msg || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.method !== 'string') {
    return; // a response, or not JSON-RPC: nothing to answer
  }
  if (msg.id === undefined) handleNotification(msg);
  else handleRequest(msg);
}

let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    handleLine(line);
  }
});
process.stdin.on('end', () => {
  if (buffered.trim() !== '') handleLine(buffered);
  process.exit(0);
});
log(`ready (pid ${process.pid})`);
