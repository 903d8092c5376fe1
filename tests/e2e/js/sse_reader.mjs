// Reads POST /api/v1/chat/stream with an off-the-shelf SSE parser (`eventsource-parser`), the way a
// browser or Node app would: fetch + a ReadableStream piped through EventSourceParserStream.
// Usage: node sse_reader.mjs '<json>' with {"url": "http://127.0.0.1:PORT", "key": "sk-...",
//   "body": {"message": "hi"}}
// Prints one JSON line: {"status", "content_type", "events": [{"event", "data", "at_ms"}], "comments"}.
import { EventSourceParserStream } from 'eventsource-parser/stream';

const config = JSON.parse(process.argv[2]);
const started = Date.now();
const response = await fetch(`${config.url}/api/v1/chat/stream`, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${config.key}` },
  body: JSON.stringify(config.body),
});

const events = [];
let comments = 0;
const parser = new EventSourceParserStream({ onComment: () => { comments += 1; } });
const reader = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(parser).getReader();
for (;;) {
  const { value, done } = await reader.read();
  if (done) break;
  events.push({ event: value.event ?? null, data: value.data, at_ms: Date.now() - started });
}
console.log(JSON.stringify({
  status: response.status,
  content_type: response.headers.get('content-type'),
  events,
  comments,
}));
