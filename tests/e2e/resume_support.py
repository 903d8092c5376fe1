"""What the resumable-stream tests share: an SSE response read event by event on a socket the test
owns (so it can drop it like a phone losing its network), and the readers of seed and Responses
events."""

import http.client
import json
import socket


class Stream:
    """One SSE response read event by event (http.client, so the test owns the socket)."""

    def __init__(self, target, method, path, body=None, headers=None):
        """`target`: anything with a .port (a sluice, or the load balancer in front of two)."""
        self.conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
        all_headers = dict(headers or {})
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=all_headers)
        self.sock = self.conn.sock
        self.res = self.conn.getresponse()
        self.status = self.res.status
        self.headers = self.res.headers

    def events(self):
        """Each event as a dict of its fields (id, data, retry, comment), until the body ends."""
        block = {}
        while True:
            line = self.res.readline()
            if not line:
                if block:
                    yield block
                return
            line = line.decode().rstrip("\r\n")
            if line == "":
                if block:
                    yield block
                block = {}
                continue
            field, _, value = line.partition(":")
            block[field or "comment"] = value[1:] if value.startswith(" ") else value

    def drop(self):
        """Leaves like a phone that lost its network: the socket goes, nothing is read any more."""
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.res.close()
        self.conn.close()

    def close(self):
        self.res.close()
        self.conn.close()


def data_events(events):
    return [e for e in events if "data" in e]


def seed_text(events):
    return "".join(json.loads(e["data"])["content"] for e in events if e["data"] != "[DONE]")


def read_all(stream):
    out = list(stream.events())
    stream.close()
    return out


def read_then_drop(stream, content_events):
    """The first `content_events` events with text, then the connection drops."""
    got = []
    for event in stream.events():
        got.append(event)
        if len([e for e in got if "data" in e]) >= content_events:
            break
    stream.drop()
    return got


def named_events(events):
    return [json.loads(e["data"]) for e in events if "data" in e]


def check_sdk_resume(resumed, words):
    """responses_background.mjs's resume_stream step: each resume (retrieve with starting_after, and
    the stream helper) reads every event after the head exactly once, and the text is whole."""
    assert "error" not in resumed, resumed
    after = resumed["head"][-1]["sequence_number"]
    for rest in (resumed["rest"], resumed["helper"]):
        assert [e["sequence_number"] for e in rest] == list(range(after + 1, after + 1 + len(rest)))
        assert rest[-1]["type"] == "response.completed"
    text = "".join(e["delta"] or "" for e in resumed["head"] + resumed["rest"]
                   if e["type"] == "response.output_text.delta")
    assert text == "".join(words) == resumed["output_text"] == resumed["final_text"]
    assert resumed["status"] == "completed"


def check_sdk_cancel(cancelled, words):
    """responses_background.mjs's cancel step: cancelled while running, the partial output kept."""
    assert "error" not in cancelled, cancelled
    assert cancelled["running_status"] == "in_progress"
    assert cancelled["status"] == cancelled["later_status"] == "cancelled"
    assert cancelled["output_text"].startswith("w0 ") and len(cancelled["output_text"]) < len("".join(words))
