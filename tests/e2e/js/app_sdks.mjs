// Tool loops through the app SDKs as their docs show them: the `openai` SDK's runTools, the Vercel
// AI SDK's streamText with a tool and `execute` over several steps (@ai-sdk/openai-compatible), and
// LangChain JS's ChatOpenAI with bindTools, streamed.
// Usage: node app_sdks.mjs '<json>' with {"base_url": "http://127.0.0.1:PORT/v1", "key", "model", "steps": [...]}
// Steps: openai_run_tools, ai_sdk_stream_text, langchain_bind_tools.
// Prints one JSON line: {"<step>": result | {"error": {name, message}}}.
import OpenAI from 'openai';
import { streamText, tool, stepCountIs } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { z } from 'zod';

const config = JSON.parse(process.argv[2]);
const model = config.model ?? 'auto';
const prompt = 'What is the weather in Paris?';
const weatherSchema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };

function describe(err) {
  return { error: { name: err.constructor?.name ?? 'Error', message: String(err.message ?? err) } };
}

const steps = {
  async openai_run_tools() {
    const client = new OpenAI({ apiKey: config.key, baseURL: config.base_url, maxRetries: 0, timeout: 30000 });
    const calls = [];
    const runner = client.chat.completions.runTools({
      model,
      stream: true,
      messages: [{ role: 'user', content: prompt }],
      tools: [{
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'The weather in a city',
          parameters: weatherSchema,
          parse: JSON.parse,
          function: async (args) => { calls.push(args); return { temperature_c: 21 }; },
        },
      }],
    });
    const content = await runner.finalContent();
    return { content, calls, messages: runner.messages.length };
  },
  async ai_sdk_stream_text() {
    const provider = createOpenAICompatible({ name: 'sluice', baseURL: config.base_url, apiKey: config.key });
    const calls = [];
    const result = streamText({
      model: provider.chatModel(model),
      prompt,
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
  async langchain_bind_tools() {
    const chat = new ChatOpenAI({ model, apiKey: config.key, configuration: { baseURL: config.base_url }, maxRetries: 0 });
    const bound = chat.bindTools([{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: weatherSchema } }]);
    let merged;
    let pieces = 0;
    for await (const chunk of await bound.stream(prompt)) {
      merged = merged === undefined ? chunk : merged.concat(chunk);
      pieces += 1;
    }
    return { pieces, tool_calls: merged.tool_calls, content: merged.content };
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
