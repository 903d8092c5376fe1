// The official `openai` npm SDK pointed at sluice, used exactly as its README shows.
// Usage: node openai_sdk.mjs '<json>' with
//   {"base_url": "http://127.0.0.1:PORT/v1", "key": "sk-...", "model": "auto",
//    "steps": ["completion", "stream", "stream_helper", "models", "abort"], "messages": [...],
//    "headers": {"X-Sluice-Session": "s1"}, "params": {"max_tokens": 20}}
// Prints one JSON line: {"<step>": result | {"error": {status, name, message, code, type}}}.
import OpenAI from 'openai';

const config = JSON.parse(process.argv[2]);
const client = new OpenAI({
  baseURL: config.base_url,
  apiKey: config.key,
  maxRetries: 0,
  timeout: config.timeout_ms ?? 30000,
  defaultHeaders: config.headers ?? {},
});
const messages = config.messages ?? [{ role: 'user', content: 'Say hello' }];
const request = { model: config.model ?? 'auto', messages, ...(config.params ?? {}) };

function describe(err) {
  return {
    error: {
      status: err.status ?? null,
      name: err.constructor?.name ?? 'Error',
      message: err.message,
      code: err.code ?? null,
      type: err.type ?? null,
    },
  };
}

const steps = {
  async completion() {
    const completion = await client.chat.completions.create(request);
    return completion;
  },
  // The low-level iterator: every chunk as the SDK parsed it, and when it arrived.
  async stream() {
    const started = Date.now();
    const stream = await client.chat.completions.create({
      ...request, stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    const arrivals = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      arrivals.push(Date.now() - started);
    }
    return { chunks, arrivals };
  },
  // The SDK's accumulating helper: it checks the chunks' shape and order as it builds the message.
  async stream_helper() {
    const deltas = [];
    const runner = client.chat.completions.stream({ ...request, stream: true });
    runner.on('content', (delta) => deltas.push(delta));
    const final = await runner.finalChatCompletion();
    return { deltas, final };
  },
  async models() {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    return { ids };
  },
  // Reads a little of a long answer, then walks away as an app's "stop" button does.
  async abort() {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { ...request, stream: true }, { signal: controller.signal });
    let text = '';
    let thrown = null;
    try {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        if (text.length >= (config.abort_after_chars ?? 1)) controller.abort();
      }
    } catch (err) {
      thrown = err.constructor.name;  // some versions end the iteration quietly instead
    }
    return { text, aborted: controller.signal.aborted, thrown };
  },
};

const result = {};
for (const name of config.steps) {
  try {
    result[name] = await steps[name]();
  } catch (err) {
    result[name] = describe(err);
  }
}
console.log(JSON.stringify(result));
