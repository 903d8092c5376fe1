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
  chunks ["Hel", "lo"]       content deltas, one event each
  chunk_delay_ms 0           pause before each content delta
  first_byte_delay_ms 0      pause before the response headers
  status 200                 non-200: the error body below, no stream
  error_body null            dict (sent as JSON) or string; null = a provider-shaped error
  retry_after null           Retry-After header value on the response
  reset_after null           abort the TCP connection (RST) after N content deltas
  hang false                 send the response headers, then nothing until the client leaves
  usage {"prompt_tokens": 5, "completion_tokens": 2}
  finish_reason "stop"       "stop" | "length" (Anthropic: mapped to end_turn | max_tokens)
  split_bytes null           write the SSE byte stream in pieces of N bytes
  error_event null           {"message", "type"}: after the chunks, an in-stream error instead of the end
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
    "finish_reason": "stop",
    "retry_after": None,
    "split_bytes": None,
    "error_event": None,
}

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


async def run_exchange(request, wire):
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode(errors="replace")
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
            for _ in script["chunks"]:
                await exchange.pause(script["chunk_delay_ms"] / 1000)
            return web.json_response(wire.whole(script, body))
        await exchange.start_stream("text/event-stream")
        if script["hang"]:
            await exchange.hang()
            return exchange.response
        await wire.stream(exchange, body)
        transport = exchange.request.transport
        if exchange.response is not None and transport is not None and not transport.is_closing():
            await exchange.write_guarded(exchange.response.write_eof)
        return exchange.response
    except ClientGone:
        return exchange.response or web.Response(status=499)
    finally:
        exchange.finish()


class ResetNow(Exception):
    pass


async def content_chunks(exchange, make_event):
    """Writes one event per scripted chunk; aborts the connection after reset_after of them."""
    script = exchange.script
    for index, text in enumerate(script["chunks"]):
        if script["reset_after"] is not None and index >= script["reset_after"]:
            break
        await exchange.pause(script["chunk_delay_ms"] / 1000)
        await exchange.emit(make_event(text))
    if script["reset_after"] is not None:
        exchange.reset_connection()
        raise ResetNow()


class OpenAIWire:
    @staticmethod
    def error_body(script):
        status = script["status"]
        kind = {401: "invalid_request_error", 403: "invalid_request_error", 429: "rate_limit_exceeded"}
        return {"error": {"message": f"scripted upstream error {status}",
                          "type": kind.get(status, "server_error" if status >= 500 else "invalid_request_error"),
                          "code": status}}

    @staticmethod
    def whole(script, body):
        usage = dict(script["usage"])
        usage["total_tokens"] = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
        return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
                "model": (body or {}).get("model", "scripted") if isinstance(body, dict) else "scripted",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(script["chunks"])},
                             "finish_reason": script["finish_reason"]}],
                "usage": usage}

    @staticmethod
    async def stream(exchange, body):
        script = exchange.script
        model = body.get("model", "scripted") if isinstance(body, dict) else "scripted"
        include_usage = isinstance(body, dict) and bool((body.get("stream_options") or {}).get("include_usage"))
        created = int(time.time())

        def chunk(delta, finish=None):
            event = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": created,
                     "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if include_usage:
                event["usage"] = None
            return sse(event)

        await exchange.emit(chunk({"role": "assistant", "content": ""}))
        try:
            await content_chunks(exchange, lambda text: chunk({"content": text}))
        except ResetNow:
            return
        if script["error_event"] is not None:
            await exchange.emit(sse({"error": dict(script["error_event"])}))
            return
        await exchange.emit(chunk({}, script["finish_reason"]))
        if include_usage:
            usage = dict(script["usage"])
            usage["total_tokens"] = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
            await exchange.emit(sse({"id": "chatcmpl-scripted", "object": "chat.completion.chunk",
                                     "created": created, "model": model, "choices": [], "usage": usage}))
        await exchange.emit(sse("[DONE]"))


class AnthropicWire:
    STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}

    @staticmethod
    def error_body(script):
        status = script["status"]
        kind = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error",
                529: "overloaded_error"}
        return {"type": "error", "error": {"type": kind.get(status, "api_error" if status >= 500 else
                                                            "invalid_request_error"),
                                           "message": f"scripted upstream error {status}"}}

    @staticmethod
    def stop_reason(script):
        return AnthropicWire.STOP_REASONS.get(script["finish_reason"], script["finish_reason"])

    @staticmethod
    def whole(script, body):
        return {"id": "msg_scripted", "type": "message", "role": "assistant",
                "model": (body or {}).get("model", "scripted") if isinstance(body, dict) else "scripted",
                "content": [{"type": "text", "text": "".join(script["chunks"])}],
                "stop_reason": AnthropicWire.stop_reason(script), "stop_sequence": None,
                "usage": {"input_tokens": script["usage"].get("prompt_tokens", 0),
                          "output_tokens": script["usage"].get("completion_tokens", 0)}}

    @staticmethod
    async def stream(exchange, body):
        script = exchange.script
        model = body.get("model", "scripted") if isinstance(body, dict) else "scripted"
        usage = script["usage"]
        await exchange.emit(sse({"type": "message_start", "message": {
            "id": "msg_scripted", "type": "message", "role": "assistant", "content": [], "model": model,
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": 1}}}, "message_start"))
        await exchange.emit(sse({"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}, "content_block_start"))
        await exchange.emit(sse({"type": "ping"}, "ping"))
        try:
            await content_chunks(exchange, lambda text: sse(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                "content_block_delta"))
        except ResetNow:
            return
        if script["error_event"] is not None:
            error = {"type": script["error_event"].get("type", "api_error"),
                     "message": script["error_event"].get("message", "scripted error")}
            await exchange.emit(sse({"type": "error", "error": error}, "error"))
            return
        await exchange.emit(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        await exchange.emit(sse({"type": "message_delta",
                                 "delta": {"stop_reason": AnthropicWire.stop_reason(script), "stop_sequence": None},
                                 "usage": {"output_tokens": usage.get("completion_tokens", 0)}}, "message_delta"))
        await exchange.emit(sse({"type": "message_stop"}, "message_stop"))


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
