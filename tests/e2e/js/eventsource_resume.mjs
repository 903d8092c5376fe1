// Resumes a resumable stream (GET /api/v1/streams/{id}) with an off-the-shelf EventSource client,
// the way a web app that kept the last event id would after a reload: the `eventsource` package
// (the WHATWG EventSource for Node, its fetch given the Bearer key and the first Last-Event-ID) or
// `@microsoft/fetch-event-source`. Reads until data: [DONE], then closes.
// Usage: node eventsource_resume.mjs '<json>' with {"url", "key", "stream_id", "last_event_id",
//   "client": "eventsource" | "fetch-event-source"}
// Prints one JSON line: {"events": [{"id", "data"}], "opens": N, "sent_last_event_id": [...]}.
import { EventSource } from 'eventsource';
import { fetchEventSource } from '@microsoft/fetch-event-source';

const config = JSON.parse(process.argv[2]);
const url = `${config.url}/api/v1/streams/${config.stream_id}`;
const events = [];
const sentLastEventId = [];
let opens = 0;
const timeout = setTimeout(() => {
  console.log(JSON.stringify({ error: 'timed out', events, opens }));
  process.exit(1);
}, 30000);

function finish() {
  clearTimeout(timeout);
  console.log(JSON.stringify({ events, opens, sent_last_event_id: sentLastEventId }));
}

if (config.client === 'eventsource') {
  const es = new EventSource(url, {
    fetch: (input, init) => {
      const headers = { ...(init.headers ?? {}), Authorization: `Bearer ${config.key}` };
      if (!('Last-Event-ID' in headers) && !('last-event-id' in headers))
        headers['Last-Event-ID'] = String(config.last_event_id);
      sentLastEventId.push(headers['Last-Event-ID'] ?? headers['last-event-id']);
      opens += 1;
      return fetch(input, { ...init, headers });
    },
  });
  await new Promise((resolve, reject) => {
    es.onmessage = (event) => {
      events.push({ id: event.lastEventId, data: event.data });
      if (event.data === '[DONE]') {
        es.close();
        resolve();
      }
    };
    es.onerror = (error) => {
      if (es.readyState === EventSource.CLOSED) reject(new Error(`closed: ${error.message ?? error.code}`));
    };
  });
  finish();
} else {
  // fetch-event-source reads window timers and the page's visibility; Node has neither (with
  // openWhenHidden it only ever removes its visibility listener).
  globalThis.window = globalThis;
  globalThis.document = { hidden: false, addEventListener() {}, removeEventListener() {} };
  const controller = new AbortController();
  await fetchEventSource(url, {
    headers: { Authorization: `Bearer ${config.key}`, 'Last-Event-ID': String(config.last_event_id) },
    signal: controller.signal,
    openWhenHidden: true,
    async onopen(response) {
      opens += 1;
      sentLastEventId.push(String(config.last_event_id));
      if (response.status !== 200) throw new Error(`status ${response.status}`);
    },
    onmessage(event) {
      // Unlike the WHATWG EventSource it also hands over blocks without data (the `retry:` hint).
      if (event.data === '' && event.id === '') return;
      events.push({ id: event.id, data: event.data });
      if (event.data === '[DONE]') controller.abort();
    },
    onclose() {
      if (events.at(-1)?.data !== '[DONE]') throw new Error('closed before [DONE]');
    },
    onerror(error) {
      throw error;  // no retry: a second open would replay from the first Last-Event-ID again
    },
  }).catch((error) => {
    if (!controller.signal.aborted) throw error;
  });
  finish();
}
