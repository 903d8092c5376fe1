// Tool calls and reasoning through the official `openai` and `@anthropic-ai/sdk` npm SDKs, used as
// their READMEs show: the accumulating stream helpers, the low-level chunk iterator, non-streaming
// calls, a two-turn tool loop and Anthropic's countTokens.
// Usage: node sdk_tools.mjs '<json>' with
//   {"base_url": "http://127.0.0.1:PORT", "key": "sk-...", "model": "m", "steps": [...],
//    "messages": [...], "tools": [...] (the wire's own tool format), "params": {...},
//    "tool_result": "..." (the tool loops' answer to every call), "openai_base_path": "/v1"}
// Steps: openai_stream_helper, openai_chunks, openai_completion, openai_tool_loop,
//        anthropic_stream_helper, anthropic_events, anthropic_create, anthropic_tool_loop, anthropic_count_tokens,
//        anthropic_models
// Prints one JSON line: {"<step>": result | {"error": {status, name, message}}}.
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const config = JSON.parse(process.argv[2]);
const common = { apiKey: config.key ?? 'sk-test', maxRetries: 0, timeout: config.timeout_ms ?? 30000 };
const openai = new OpenAI({ ...common, baseURL: config.base_url + (config.openai_base_path ?? '/v1') });
const anthropic = new Anthropic({ ...common, baseURL: config.base_url });
const model = config.model ?? 'scripted';
const params = config.params ?? {};
const toolResult = config.tool_result ?? '{"temperature_c": 21}';

const openaiTools = config.tools ?? [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];
const anthropicTools = config.tools ?? [{
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}];
const userMessages = config.messages ?? [{ role: 'user', content: 'What is the weather in Paris?' }];

function describe(err) {
  return { error: { status: err.status ?? null, name: err.constructor?.name ?? 'Error', message: err.message } };
}

async function openaiStreamHelper(messages) {
  const runner = openai.chat.completions.stream({
    model, messages, tools: openaiTools, stream: true, stream_options: { include_usage: true }, ...params,
  });
  const argument_deltas = [];
  const arguments_done = [];
  const content = [];
  runner.on('content', (delta) => content.push(delta));
  runner.on('tool_calls.function.arguments.delta', (e) => argument_deltas.push({ index: e.index, delta: e.arguments_delta }));
  runner.on('tool_calls.function.arguments.done', (e) => arguments_done.push({ index: e.index, name: e.name, arguments: e.arguments }));
  const final = await runner.finalChatCompletion();
  return { final, content, argument_deltas, arguments_done };
}

async function anthropicStreamHelper(messages) {
  const stream = anthropic.messages.stream({ model, max_tokens: 1024, messages, tools: anthropicTools, ...params });
  const input_json = [];
  const thinking = [];
  const signatures = [];
  const text = [];
  stream.on('inputJson', (partial, snapshot) => input_json.push({ partial, snapshot }));
  stream.on('thinking', (delta) => thinking.push(delta));
  stream.on('signature', (signature) => signatures.push(signature));
  stream.on('text', (delta) => text.push(delta));
  const final = await stream.finalMessage();
  return { final, input_json, thinking, signatures, text };
}

const steps = {
  openai_stream_helper: () => openaiStreamHelper(userMessages),
  // Every chunk exactly as the SDK's SSE decoder parsed it.
  async openai_chunks() {
    const stream = await openai.chat.completions.create({
      model, messages: userMessages, tools: openaiTools, stream: true, stream_options: { include_usage: true }, ...params,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    return { chunks };
  },
  openai_completion: () => openai.chat.completions.create({ model, messages: userMessages, tools: openaiTools, ...params }),
  // The tool loop an agent runs: answer every call, send the results back, get the text.
  async openai_tool_loop() {
    const first = await openaiStreamHelper(userMessages);
    const message = first.final.choices[0].message;
    const messages = [...userMessages, { role: 'assistant', content: message.content ?? null, tool_calls: message.tool_calls }];
    for (const call of message.tool_calls ?? []) messages.push({ role: 'tool', tool_call_id: call.id, content: toolResult });
    const second = await openaiStreamHelper(messages);
    return { first: first.final, second: second.final, sent: messages };
  },
  anthropic_stream_helper: () => anthropicStreamHelper(userMessages),
  // The raw events as the SDK's iterator yields them.
  async anthropic_events() {
    const stream = await anthropic.messages.create({
      model, max_tokens: 1024, messages: userMessages, tools: anthropicTools, stream: true, ...params,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    return { events };
  },
  anthropic_create: () => anthropic.messages.create({ model, max_tokens: 1024, messages: userMessages, tools: anthropicTools, ...params }),
  async anthropic_tool_loop() {
    const first = await anthropicStreamHelper(userMessages);
    const calls = first.final.content.filter((block) => block.type === 'tool_use');
    const messages = [
      ...userMessages,
      { role: 'assistant', content: first.final.content },
      { role: 'user', content: calls.map((call) => ({ type: 'tool_result', tool_use_id: call.id, content: toolResult })) },
    ];
    const second = await anthropicStreamHelper(messages);
    return { first: first.final, second: second.final, sent: messages };
  },
  anthropic_count_tokens: () => anthropic.messages.countTokens({ model, messages: userMessages, tools: anthropicTools }),
  // Every page of the model list, as the SDK's auto-pagination walks it.
  async anthropic_models() {
    const models = [];
    for await (const entry of anthropic.models.list()) models.push(entry);
    return { models };
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
