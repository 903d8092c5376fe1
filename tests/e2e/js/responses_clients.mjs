// The Responses API through the clients that speak it by default, used as their docs show: the
// official `openai` SDK (responses.stream(...).finalResponse(), create, retrieve, inputItems, delete)
// and the Vercel AI SDK's @ai-sdk/openai default model (streamText, with a tool over several steps).
// Usage: node responses_clients.mjs '<json>' with
//   {"base_url": "http://127.0.0.1:PORT/v1", "key": "sk-...", "other_key": "sk-...", "model": "auto",
//    "steps": [...], "response_id": "resp_..." (the retrieve steps)}
// Steps: openai_stream_text, openai_stream_call, openai_call_output, openai_previous, openai_create,
//        openai_retrieve, openai_other_key, openai_delete, ai_sdk_text, ai_sdk_tool
// Prints one JSON line: {"<step>": result | {"error": {status, name, message}}}.
import OpenAI from 'openai';
import { createOpenAI } from '@ai-sdk/openai';
import { streamText, tool, stepCountIs } from 'ai';
import { z } from 'zod';

const config = JSON.parse(process.argv[2]);
const model = config.model ?? 'auto';
const client = new OpenAI({ apiKey: config.key, baseURL: config.base_url, maxRetries: 0, timeout: 30000 });
const weather = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

function describe(err) {
  return { error: { status: err.status ?? null, name: err.constructor?.name ?? 'Error', message: String(err.message ?? err) } };
}

// One streamed response: its events (type, sequence_number, ids) and the SDK's final response.
async function streamed(params) {
  const stream = client.responses.stream({ model, ...params });
  const events = [];
  for await (const event of stream) {
    events.push({
      type: event.type,
      sequence_number: event.sequence_number,
      item_id: event.item_id ?? event.item?.id ?? null,
      output_index: event.output_index ?? null,
      delta: event.delta ?? null,
    });
  }
  const final = await stream.finalResponse();
  return { events, final, output_text: final.output_text };
}

const steps = {
  async openai_stream_text() {
    return streamed({ instructions: 'Be brief.', input: 'Say hello.' });
  },
  async openai_stream_call() {
    return streamed({ input: 'What is the weather in Paris?', tools: [weather] });
  },
  // The tool loop without stored state: the call and its output go back as input items.
  async openai_call_output() {
    const first = await streamed({ input: [{ role: 'user', content: 'What is the weather in Paris?' }], tools: [weather], store: false });
    const call = first.final.output.find((item) => item.type === 'function_call');
    const second = await streamed({
      input: [
        { role: 'user', content: 'What is the weather in Paris?' },
        ...first.final.output,
        { type: 'function_call_output', call_id: call.call_id, output: '{"temperature_c": 21}' },
      ],
      tools: [weather],
      store: false,
    });
    return { first: first.final, second: second.final, output_text: second.output_text };
  },
  // The tool loop on stored state: only the call's output goes with previous_response_id.
  async openai_previous() {
    const first = await client.responses.create({ model, input: 'What is the weather in Paris?', tools: [weather] });
    const call = first.output.find((item) => item.type === 'function_call');
    const second = await client.responses.create({
      model,
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temperature_c": 21}' }],
      tools: [weather],
    });
    const third = await client.responses.create({ model, previous_response_id: second.id, input: 'And tomorrow?' });
    return { first, second, third };
  },
  async openai_create() {
    const response = await client.responses.create({ model, input: 'Say hello.', metadata: { run: 'e2e' } });
    return { response, output_text: response.output_text };
  },
  async openai_retrieve() {
    const response = await client.responses.retrieve(config.response_id);
    const items = [];
    for await (const item of client.responses.inputItems.list(config.response_id)) items.push(item);
    return { response, items };
  },
  async openai_other_key() {
    const other = new OpenAI({ apiKey: config.other_key, baseURL: config.base_url, maxRetries: 0 });
    return other.responses.retrieve(config.response_id);
  },
  async openai_delete() {
    const deleted = await client.responses.delete(config.response_id);
    let after;
    try {
      after = await client.responses.retrieve(config.response_id);
    } catch (err) {
      after = describe(err);
    }
    return { deleted: deleted ?? null, after };
  },
  async ai_sdk_text() {
    const provider = createOpenAI({ baseURL: config.base_url, apiKey: config.key });
    const result = streamText({ model: provider(model), prompt: 'Say hello.' });
    let text = '';
    let pieces = 0;
    for await (const delta of result.textStream) {
      text += delta;
      pieces += 1;
    }
    const usage = await result.usage;
    return { text, pieces, usage, finishReason: await result.finishReason };
  },
  async ai_sdk_tool() {
    const provider = createOpenAI({ baseURL: config.base_url, apiKey: config.key });
    const calls = [];
    const result = streamText({
      model: provider(model),
      prompt: 'What is the weather in Paris?',
      tools: {
        get_weather: tool({
          description: 'The weather in a city',
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => { calls.push(city); return { city, temperature_c: 21 }; },
        }),
      },
      stopWhen: stepCountIs(3),
    });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    const stepList = await result.steps;
    return {
      text,
      calls,
      steps: stepList.map((s) => ({ finishReason: s.finishReason, toolCalls: s.toolCalls.map((c) => ({ name: c.toolName, input: c.input })) })),
    };
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
