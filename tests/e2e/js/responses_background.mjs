// Background responses through the official `openai` SDK, as its docs show them: create with
// background (streamed: read a few events, then drop), responses.retrieve (status),
// responses.retrieve with stream + starting_after and responses.stream({response_id, starting_after})
// to resume, responses.cancel.
// Usage: node responses_background.mjs '<json>' with {"base_url", "key", "model", "steps": [...]}
// Steps: resume_stream, retrieve_until_done, cancel
// Prints one JSON line: {"<step>": result | {"error": {status, name, message}}}.
import OpenAI from 'openai';

const config = JSON.parse(process.argv[2]);
const model = config.model ?? 'auto';
const client = new OpenAI({ apiKey: config.key, baseURL: config.base_url, maxRetries: 0, timeout: 30000 });

function describe(err) {
  return { error: { status: err.status ?? null, name: err.constructor?.name ?? 'Error', message: String(err.message ?? err) } };
}

function summary(event) {
  return { type: event.type, sequence_number: event.sequence_number, delta: event.delta ?? null };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitDone(id) {
  for (let i = 0; i < 200; ++i) {
    const got = await client.responses.retrieve(id);
    if (got.status !== 'queued' && got.status !== 'in_progress') return got;
    await sleep(50);
  }
  throw new Error('the response never finished');
}

const steps = {
  // Streams a background response, leaves after a few events, resumes twice (retrieve with
  // stream + starting_after, then the SDK's responses.stream helper) and checks the status.
  async resume_stream() {
    const first = await client.responses.create({ model, input: 'Count slowly.', background: true, stream: true });
    const head = [];
    let id = null;
    for await (const event of first) {
      head.push(summary(event));
      if (event.response?.id) id = event.response.id;
      if (head.filter((e) => e.type === 'response.output_text.delta').length >= 3) break;  // the client leaves
    }
    const during = await client.responses.retrieve(id);
    const after = head[head.length - 1].sequence_number;
    const rest = [];
    const resumed = await client.responses.retrieve(id, { stream: true, starting_after: after });
    for await (const event of resumed) rest.push(summary(event));
    const helper = [];
    const again = client.responses.stream({ response_id: id, starting_after: after });
    for await (const event of again) helper.push(summary(event));
    const final = await again.finalResponse();
    const done = await client.responses.retrieve(id);
    return { id, head, rest, helper, during_status: during.status, status: done.status,
             output_text: done.output_text, final_text: final.output_text };
  },
  // Background without a stream: the queued object at once, then retrieve until it is done.
  async retrieve_until_done() {
    const created = await client.responses.create({ model, input: 'Say hello.', background: true });
    const done = await waitDone(created.id);
    return { id: created.id, created_status: created.status, status: done.status, output_text: done.output_text };
  },
  // Cancel while it runs: the partial output stays, status cancelled.
  async cancel() {
    const created = await client.responses.create({ model, input: 'Count for a long time.', background: true });
    let running = await client.responses.retrieve(created.id);
    for (let i = 0; i < 100 && running.status === 'queued'; ++i) {
      await sleep(50);
      running = await client.responses.retrieve(created.id);
    }
    await sleep(600);
    const cancelled = await client.responses.cancel(created.id);
    const later = await client.responses.retrieve(created.id);
    return { id: created.id, running_status: running.status, status: cancelled.status,
             later_status: later.status, output_text: later.output_text };
  },
};

const results = {};
for (const name of config.steps) {
  try {
    results[name] = await steps[name]();
  } catch (err) {
    results[name] = describe(err);
  }
}
console.log(JSON.stringify(results));
