// The answers a test client gives to the requests a server sends it: sampling, elicitation and
// roots, each recorded so a test can assert what the server asked. Shared by the sidecar suite
// (sdk_everything) and the gateway suite, which check the same answers come back through mcpmw.
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

// Installs the handlers on `client` (an SDK Client, before connect). `samplingRequests` and
// `elicitationRequests` receive the params of each request as it arrives.
export function answerServerRequests(client, { samplingRequests, elicitationRequests }) {
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    samplingRequests.push(req.params);
    return {
      model: 'mcpmw-test-model',
      role: 'assistant',
      content: { type: 'text', text: 'sampled-by-test-client 42' },
      stopReason: 'endTurn',
    };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    elicitationRequests.push(req.params);
    return { action: 'accept', content: { name: 'Ada Lovelace', check: true, integer: 7 } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => ({
    roots: [{ uri: 'file:///tmp/mcpmw-root', name: 'mcpmw-root' }],
  }));
}
