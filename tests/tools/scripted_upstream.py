#!/usr/bin/python3
"""A scripted cloud upstream for tests: OpenAI /v1/chat/completions and Anthropic /v1/messages.

Usage: /usr/bin/python3 scripted_upstream.py --port 0 [--host 127.0.0.1]
The first stdout line is `PORT <n>` (flushed); nothing else is printed on stdout.

Control endpoints:
  POST /_script  {"chunks": [...], ...}  sets the default script for every later request (fields not
                 given take the defaults below); {"queue": [script, ...]} gives one script to each
                 upcoming request, in order, then the default applies again. Both may be combined.
  GET  /_log     {"requests": [{"id", "path", "body", "headers", "key_sha256", "t_start", "t_end",
                 "t_closed", "closed_by_client", "status"}]}; times are time.monotonic() seconds.
                 t_closed: when the server saw the client close the connection mid-response (the
                 transport's connection_lost callback, so within a few ms). t_end: when the server
                 finished (or gave up on) the response. Header names are logged as sent and also in
                 lower case. Authorization and x-api-key values are replaced by the sha256 hex of the
                 whole header value; key_sha256 is the sha256 hex of the bare key (without "Bearer ").
  POST /_reset   clears the log, the queue and the default script.

Script fields (defaults):
  chunks ["Hel", "lo"]       content deltas, one event each ([] = no text)
  chunk_delay_ms 0           pause before each delta (thinking, content and tool-argument deltas alike)
  first_byte_delay_ms 0      pause before the response headers
  status 200                 non-200: the error body below, no stream
  error_body null            dict (sent as JSON) or string; null = a provider-shaped error
  retry_after null           Retry-After header value on the response
  reset_after null           abort the TCP connection (RST) after N deltas (thinking, content and
                             tool-call deltas are all counted; with text only, N content deltas)
  hang false                 send the response headers, then nothing until the client leaves
  usage {"prompt_tokens": 5, "completion_tokens": 2}
                             Anthropic stream: "cache_read_input_tokens" / "cache_creation_input_tokens"
                             given here go into message_start's usage too
  finish_reason null         null = "tool_calls" when tool_calls are scripted, else "stop"; or
                             "stop" | "length" | "tool_calls" | any string (Anthropic: mapped to
                             end_turn | max_tokens | tool_use, other values sent as given)
  split_bytes null           write the SSE byte stream in pieces of N bytes
  error_event null           {"message", "type"}: after the last delta, an in-stream error instead of the end
  tool_calls []              [{"id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}, ...]
                             emitted after the text chunks, in order (parallel calls). "arguments" is the
                             JSON text exactly as sent (a dict/list is json.dumps'ed); "id" defaults to
                             call_<n> (OpenAI) / toolu_<n> (Anthropic), n from 1, and is sent verbatim
                             on either wire when given.
  arguments_split 8          stream each call's arguments in pieces of N characters, one delta each;
                             0 = the whole arguments in one delta
  openai_tool_quirk null     OpenAI stream only, deviations some OpenAI-compatible servers make:
                             "no_index"    no "index" in any tool-call delta (meant for a single call)
                             "repeat_name" function.name (and id, type) repeated in every delta
                             "whole"       the whole arguments in the first delta (no fragment deltas)
  thinking null              {"text": "...", "signature": "sig...", "chunks": [...]} reasoning before the
                             text: "chunks" (default: "text" in pieces of 8 characters) are the deltas,
                             "signature" defaults to "sig-scripted". Anthropic: a first "thinking" block
                             (thinking_delta events, one signature_delta, content_block_stop); whole: a
                             {"type": "thinking", "thinking", "signature"} block. OpenAI: the pieces as
                             delta.reasoning_content (as DeepSeek, vLLM and llama-server send it);
                             whole: message.reasoning_content (the openai npm SDK's stream helper
                             keeps only the last fragment of this non-standard field: read the chunks).

Wire shapes (as the real APIs send them):
  OpenAI stream: a role chunk {"role": "assistant", "content": ""} ("content": null when there is no
    text), reasoning_content deltas, content deltas, then per tool call a first delta {"index", "id",
    "type": "function", "function": {"name", "arguments": ""}} and argument deltas {"index",
    "function": {"arguments": fragment}}; the finish chunk (delta {}), the usage chunk (choices [])
    when stream_options.include_usage, data: [DONE]. Whole: choices[0].message {"role", "content"
    (null with tool calls and no text), "tool_calls": [{"id", "type": "function", "function": {"name",
    "arguments"}}]}.
  Anthropic stream: message_start, [thinking block], [text block: when there is text or no tool call],
    per tool call content_block_start {"type": "tool_use", "id", "name", "input": {}}, input_json_delta
    events {"partial_json"}, content_block_stop; a ping after the first content_block_start;
    message_delta {"stop_reason", "stop_sequence"} + usage, message_stop. Whole: content blocks, the
    tool_use blocks with "input" parsed from the arguments.
  POST /v1/messages/count_tokens: {"input_tokens": N}, N = len(json.dumps([system, messages, tools],
    separators=(",", ":"), sort_keys=True)) // 4 of the request body (missing fields are null); logged
    like any request, consumes no script.

Multi-turn tool loops: {"queue": [{"chunks": [], "tool_calls": [...]}, {"chunks": ["It is sunny"]}]}
  answers the first request with the call and the second with text; /_log has both bodies, so a test
  reads the tool result message the client sent in the second.
"""

import argparse
import asyncio
import hashlib
import json
import socket
import struct
import sys
import time

from aiohttp import web, web_protocol

DEFAULT_SCRIPT = {
    "chunks": ["Hel", "lo"],
    "chunk_delay_ms": 0,
    "first_byte_delay_ms": 0,
    "status": 200,
    "error_body": None,
    "reset_after": None,
    "hang": False,
    "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    "finish_reason": None,
    "retry_after": None,
    "split_bytes": None,
    "error_event": None,
    "tool_calls": [],
    "arguments_split": 8,
    "openai_tool_quirk": None,
    "thinking": None,
}

OPENAI_TOOL_QUIRKS = (None, "no_index", "repeat_name", "whole")
THINKING_PIECE = 8

HANG_LIMIT_S = 600


class State:
    def __init__(self):
        self.reset()

    def reset(self):
        self.default = dict(DEFAULT_SCRIPT)
        self.queue = []
        self.log = []
        self.next_id = 1

    def next_script(self):
        if self.queue:
            return self.queue.pop(0)
        return dict(self.default)


STATE = State()


def make_script(fields):
    script = dict(DEFAULT_SCRIPT)
    script.update(fields or {})
    return script


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def logged_headers(request):
    headers = {}
    key_hash = None
    for name, value in request.headers.items():
        lower = name.lower()
        if lower in ("authorization", "x-api-key"):
            bare = value[len("Bearer "):] if lower == "authorization" and value.startswith("Bearer ") else value
            key_hash = sha256_hex(bare)
            value = sha256_hex(value)
        headers[name] = value
        headers[lower] = value
    return headers, key_hash


# protocol -> {"future": the current request's close future or None}
WATCHES = {}


def install_close_hook():
    """aiohttp 3.8 does not cancel a handler when its client leaves, and its RequestHandler has slots,
    so connection_lost is wrapped on the class to resolve the current request's close future."""
    original = web_protocol.RequestHandler.connection_lost

    def connection_lost(self, exc):
        watch = WATCHES.pop(self, None)
        if watch is not None:
            current = watch["future"]
            if current is not None and not current.done():
                current.set_result(time.monotonic())
        original(self, exc)

    web_protocol.RequestHandler.connection_lost = connection_lost


def close_watcher(request):
    """A future resolved with time.monotonic() the moment the client's connection is lost."""
    future = asyncio.get_running_loop().create_future()
    watch = WATCHES.setdefault(request.protocol, {"future": None})
    watch["future"] = future
    transport = request.transport
    if transport is None or transport.is_closing():
        future.set_result(time.monotonic())
    return future, watch


class ClientGone(Exception):
    pass


class Exchange:
    """One request/response: the script, its log entry, and waits that end when the client leaves."""

    def __init__(self, request, script, entry):
        self.request = request
        self.script = script
        self.entry = entry
        self.closed, self.watch = close_watcher(request)
        self.response = None

    def client_left(self, when=None):
        if self.entry["t_closed"] is None:
            self.entry["t_closed"] = when if when is not None else time.monotonic()
            self.entry["closed_by_client"] = True
        raise ClientGone()

    async def pause(self, seconds):
        if self.closed.done():
            self.client_left(self.closed.result())
        if seconds <= 0:
            return
        try:
            when = await asyncio.wait_for(asyncio.shield(self.closed), seconds)
        except asyncio.TimeoutError:
            return
        self.client_left(when)

    async def start_stream(self, content_type):
        await self.pause(self.script["first_byte_delay_ms"] / 1000)
        self.response = web.StreamResponse(status=200)
        self.response.content_type = content_type
        self.response.headers["Cache-Control"] = "no-cache"
        await self.write_guarded(lambda: self.response.prepare(self.request))

    async def write_guarded(self, action):
        if self.closed.done():
            self.client_left(self.closed.result())
        try:
            await action()
        except (ConnectionResetError, ConnectionError, RuntimeError):
            self.client_left(self.closed.result() if self.closed.done() else None)

    async def emit(self, data):
        split = self.script.get("split_bytes")
        pieces = [data] if not split else [data[i:i + split] for i in range(0, len(data), split)]
        for piece in pieces:
            await self.write_guarded(lambda: self.response.write(piece))

    async def hang(self):
        try:
            when = await asyncio.wait_for(asyncio.shield(self.closed), HANG_LIMIT_S)
        except asyncio.TimeoutError:
            return
        self.client_left(when)

    def reset_connection(self):
        # Our own abort must not be logged as the client leaving.
        self.watch["future"] = None
        transport = self.request.transport
        sock = transport.get_extra_info("socket") if transport else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if transport is not None:
            transport.abort()

    def finish(self):
        self.watch["future"] = None
        self.entry["t_end"] = time.monotonic()


def sse(data, event=None):
    text = "" if event is None else f"event: {event}\n"
    text += f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
    return text.encode()


def error_response(script, default_body):
    body = script["error_body"] if script["error_body"] is not None else default_body
    headers = {}
    if script["retry_after"] is not None:
        headers["Retry-After"] = str(script["retry_after"])
    if isinstance(body, str):
        return web.Response(status=script["status"], text=body, content_type="application/json", headers=headers)
    return web.json_response(body, status=script["status"], headers=headers)


async def read_body(request):
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def log_request(request, body):
    headers, key_hash = logged_headers(request)
    entry = {
        "id": STATE.next_id,
        "path": request.path,
        "body": body,
        "headers": headers,
        "key_sha256": key_hash,
        "t_start": time.monotonic(),
        "t_end": None,
        "t_closed": None,
        "closed_by_client": False,
        "status": None,
        # The client's source port: equal on two requests when the client reused its connection.
        "peer_port": (request.transport.get_extra_info("peername") or (None, None))[1]
        if request.transport else None,
    }
    STATE.next_id += 1
    STATE.log.append(entry)
    return entry


async def run_exchange(request, wire):
    body = await read_body(request)
    entry = log_request(request, body)
    script = STATE.next_script()
    entry["status"] = script["status"]
    exchange = Exchange(request, script, entry)
    try:
        if script["status"] != 200:
            await exchange.pause(script["first_byte_delay_ms"] / 1000)
            return error_response(script, wire.error_body(script))
        streaming = isinstance(body, dict) and bool(body.get("stream"))
        if not streaming and not script["hang"] and script["reset_after"] is None:
            await exchange.pause(script["first_byte_delay_ms"] / 1000)
            for kind, _ in wire.events(script, body):
                if kind == DELTA:
                    await exchange.pause(script["chunk_delay_ms"] / 1000)
            return web.json_response(wire.whole(script, body))
        await exchange.start_stream("text/event-stream")
        if script["hang"]:
            await exchange.hang()
            return exchange.response
        if await play(exchange, wire.events(script, body), wire.error_event(script)):
            transport = exchange.request.transport
            if exchange.response is not None and transport is not None and not transport.is_closing():
                await exchange.write_guarded(exchange.response.write_eof)
        return exchange.response
    except ClientGone:
        return exchange.response or web.Response(status=499)
    finally:
        exchange.finish()


# A wire's stream is a list of (kind, bytes): FRAME events are always written, DELTA events carry model
# output (counted by reset_after, each after chunk_delay_ms), END marks where an error_event or a
# reset_after that outlasted the deltas cuts the stream.
FRAME, DELTA, END = "frame", "delta", "end"


async def play(exchange, events, error_event):
    """Writes the events; False when the stream was cut (reset or in-stream error)."""
    script = exchange.script
    reset_after = script["reset_after"]
    sent = 0
    for kind, data in events:
        if kind == DELTA:
            if reset_after is not None and sent >= reset_after:
                exchange.reset_connection()
                return False
            await exchange.pause(script["chunk_delay_ms"] / 1000)
            await exchange.emit(data)
            sent += 1
        elif kind == END:
            if reset_after is not None:
                exchange.reset_connection()
                return False
            if error_event is not None:
                await exchange.emit(error_event)
                return True
        else:
            await exchange.emit(data)
    return True


def finish_reason(script):
    if script["finish_reason"] is not None:
        return script["finish_reason"]
    return "tool_calls" if script["tool_calls"] else "stop"


def scripted_tool_calls(script, id_prefix):
    calls = []
    for n, call in enumerate(script["tool_calls"] or [], 1):
        arguments = call.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append({"id": call.get("id") or f"{id_prefix}{n}", "name": call["name"], "arguments": arguments})
    return calls


def pieces(text, size):
    if not size or len(text) <= size:
        return [text]
    return [text[i:i + size] for i in range(0, len(text), size)]


def scripted_thinking(script):
    thinking = script["thinking"]
    if not thinking:
        return None
    text = thinking.get("text")
    chunks = thinking.get("chunks")
    if chunks is None:
        chunks = pieces(text, THINKING_PIECE) if text else []
    return {"text": text if text is not None else "".join(chunks), "chunks": list(chunks),
            "signature": thinking.get("signature", "sig-scripted")}


def request_model(body):
    return body.get("model", "scripted") if isinstance(body, dict) else "scripted"


def total_usage(script):
    usage = dict(script["usage"])
    usage["total_tokens"] = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    return usage


class OpenAIWire:
    @staticmethod
    def error_body(script):
        status = script["status"]
        kind = {401: "invalid_request_error", 403: "invalid_request_error", 429: "rate_limit_exceeded"}
        return {"error": {"message": f"scripted upstream error {status}",
                          "type": kind.get(status, "server_error" if status >= 500 else "invalid_request_error"),
                          "code": status}}

    @staticmethod
    def error_event(script):
        return None if script["error_event"] is None else sse({"error": dict(script["error_event"])})

    @staticmethod
    def whole(script, body):
        calls = scripted_tool_calls(script, "call_")
        thinking = scripted_thinking(script)
        text = "".join(script["chunks"])
        message = {"role": "assistant", "content": text if script["chunks"] or not calls else None}
        if thinking is not None:
            message["reasoning_content"] = thinking["text"]
        if calls:
            message["tool_calls"] = [{"id": c["id"], "type": "function",
                                      "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]
        return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
                "model": request_model(body),
                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(script)}],
                "usage": total_usage(script)}

    @staticmethod
    def tool_deltas(script, index, call):
        quirk = script["openai_tool_quirk"]
        first = {"index": index, "id": call["id"], "type": "function",
                 "function": {"name": call["name"], "arguments": ""}}
        fragments = pieces(call["arguments"], script["arguments_split"])
        if quirk == "whole":
            first["function"]["arguments"] = call["arguments"]
            fragments = []
        deltas = [first]
        for fragment in fragments:
            if quirk == "repeat_name":
                deltas.append({"index": index, "id": call["id"], "type": "function",
                               "function": {"name": call["name"], "arguments": fragment}})
            else:
                deltas.append({"index": index, "function": {"arguments": fragment}})
        if quirk == "no_index":
            for delta in deltas:
                del delta["index"]
        return deltas

    @staticmethod
    def events(script, body):
        model = request_model(body)
        include_usage = isinstance(body, dict) and bool((body.get("stream_options") or {}).get("include_usage"))
        created = int(time.time())
        calls = scripted_tool_calls(script, "call_")
        thinking = scripted_thinking(script)

        def chunk(delta, finish=None):
            event = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": created,
                     "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if include_usage:
                event["usage"] = None
            return sse(event)

        events = [(FRAME, chunk({"role": "assistant", "content": "" if script["chunks"] or not calls else None}))]
        for piece in thinking["chunks"] if thinking else []:
            events.append((DELTA, chunk({"reasoning_content": piece})))
        for text in script["chunks"]:
            events.append((DELTA, chunk({"content": text})))
        for index, call in enumerate(calls):
            for delta in OpenAIWire.tool_deltas(script, index, call):
                events.append((DELTA, chunk({"tool_calls": [delta]})))
        events.append((END, None))
        events.append((FRAME, chunk({}, finish_reason(script))))
        if include_usage:
            events.append((FRAME, sse({"id": "chatcmpl-scripted", "object": "chat.completion.chunk",
                                       "created": created, "model": model, "choices": [],
                                       "usage": total_usage(script)})))
        events.append((FRAME, sse("[DONE]")))
        return events


def parsed_input(arguments):
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class AnthropicWire:
    STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}

    @staticmethod
    def error_body(script):
        status = script["status"]
        kind = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error",
                529: "overloaded_error"}
        return {"type": "error", "error": {"type": kind.get(status, "api_error" if status >= 500 else
                                                            "invalid_request_error"),
                                           "message": f"scripted upstream error {status}"}}

    @staticmethod
    def error_event(script):
        if script["error_event"] is None:
            return None
        error = {"type": script["error_event"].get("type", "api_error"),
                 "message": script["error_event"].get("message", "scripted error")}
        return sse({"type": "error", "error": error}, "error")

    @staticmethod
    def stop_reason(script):
        reason = finish_reason(script)
        return AnthropicWire.STOP_REASONS.get(reason, reason)

    @staticmethod
    def whole(script, body):
        calls = scripted_tool_calls(script, "toolu_")
        thinking = scripted_thinking(script)
        content = []
        if thinking is not None:
            content.append({"type": "thinking", "thinking": thinking["text"], "signature": thinking["signature"]})
        if script["chunks"] or not calls:
            content.append({"type": "text", "text": "".join(script["chunks"])})
        for call in calls:
            content.append({"type": "tool_use", "id": call["id"], "name": call["name"],
                            "input": parsed_input(call["arguments"])})
        return {"id": "msg_scripted", "type": "message", "role": "assistant",
                "model": request_model(body), "content": content,
                "stop_reason": AnthropicWire.stop_reason(script), "stop_sequence": None,
                "usage": {"input_tokens": script["usage"].get("prompt_tokens", 0),
                          "output_tokens": script["usage"].get("completion_tokens", 0)}}

    @staticmethod
    def events(script, body):
        usage = script["usage"]
        calls = scripted_tool_calls(script, "toolu_")
        thinking = scripted_thinking(script)

        def delta(index, payload):
            return sse({"type": "content_block_delta", "index": index, "delta": payload}, "content_block_delta")

        blocks = []  # (content_block, [delta payloads])
        if thinking is not None:
            blocks.append(({"type": "thinking", "thinking": "", "signature": ""},
                           [{"type": "thinking_delta", "thinking": piece} for piece in thinking["chunks"]] +
                           [{"type": "signature_delta", "signature": thinking["signature"]}]))
        if script["chunks"] or not calls:
            blocks.append(({"type": "text", "text": ""},
                           [{"type": "text_delta", "text": text} for text in script["chunks"]]))
        for call in calls:
            blocks.append(({"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}},
                           [{"type": "input_json_delta", "partial_json": fragment}
                            for fragment in pieces(call["arguments"], script["arguments_split"])]))

        events = [(FRAME, sse({"type": "message_start", "message": {
            "id": "msg_scripted", "type": "message", "role": "assistant", "content": [],
            "model": request_model(body), "stop_reason": None, "stop_sequence": None,
            "usage": anthropic_start_usage(usage)}}, "message_start"))]
        for index, (block, payloads) in enumerate(blocks):
            events.append((FRAME, sse({"type": "content_block_start", "index": index, "content_block": block},
                                      "content_block_start")))
            if index == 0:
                events.append((FRAME, sse({"type": "ping"}, "ping")))
            events.extend((DELTA, delta(index, payload)) for payload in payloads)
            if index == len(blocks) - 1:
                events.append((END, None))  # an error_event comes before the last block's stop
            events.append((FRAME, sse({"type": "content_block_stop", "index": index}, "content_block_stop")))
        events.append((FRAME, sse({"type": "message_delta",
                                   "delta": {"stop_reason": AnthropicWire.stop_reason(script), "stop_sequence": None},
                                   "usage": {"output_tokens": usage.get("completion_tokens", 0)}}, "message_delta")))
        events.append((FRAME, sse({"type": "message_stop"}, "message_stop")))
        return events


def anthropic_start_usage(usage):
    """message_start's usage; cache_read_input_tokens / cache_creation_input_tokens when scripted."""
    out = {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": 1}
    for key in ("cache_read_input_tokens", "cache_creation_input_tokens"):
        if key in usage:
            out[key] = usage[key]
    return out


def estimate_input_tokens(body):
    body = body if isinstance(body, dict) else {}
    counted = [body.get("system"), body.get("messages"), body.get("tools")]
    return len(json.dumps(counted, separators=(",", ":"), sort_keys=True)) // 4


async def count_tokens(request):
    body = await read_body(request)
    entry = log_request(request, body)
    entry["status"] = 200
    entry["t_end"] = time.monotonic()
    return web.json_response({"input_tokens": estimate_input_tokens(body)})


async def chat_completions(request):
    return await run_exchange(request, OpenAIWire)


async def messages(request):
    return await run_exchange(request, AnthropicWire)


async def set_script(request):
    body = await request.json()
    fields = {k: v for k, v in body.items() if k != "queue"}
    unknown = [k for k in list(fields) + [k for s in body.get("queue", []) for k in s] if k not in DEFAULT_SCRIPT]
    if unknown:
        return web.json_response({"error": f"unknown script fields: {sorted(set(unknown))}"}, status=400)
    quirks = [s.get("openai_tool_quirk") for s in [fields] + body.get("queue", [])]
    if any(q not in OPENAI_TOOL_QUIRKS for q in quirks):
        return web.json_response({"error": f"openai_tool_quirk must be one of {OPENAI_TOOL_QUIRKS}"}, status=400)
    if "queue" in body:
        STATE.queue = [make_script(s) for s in body["queue"]]
    if fields or "queue" not in body:
        STATE.default = make_script(fields)
    return web.json_response({"ok": True})


async def get_log(request):
    return web.json_response({"requests": STATE.log})


async def reset(request):
    STATE.reset()
    return web.json_response({"ok": True})


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()

    install_close_hook()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_post("/_script", set_script)
    app.router.add_get("/_log", get_log)
    app.router.add_post("/_reset", reset)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
