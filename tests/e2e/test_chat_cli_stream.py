"""`sluice chat` against the real server and the scripted upstream: the answer streams to stdout as
it arrives, --session continues a conversation, Ctrl-C cancels the request (exit 130) and closes the
upstream, a failure exits non-zero with the server's message."""

import os
import re
import signal
import subprocess

from clients_support import binary, chat_turns, wait_upstream_closed


def chat(sluice, *args, key=None):
    env = dict(os.environ, SLUICE_API_KEY=key if key is not None else sluice.key)
    return subprocess.run([binary(), "chat", "--url", sluice.base_url, *args], env=env, capture_output=True,
                          text=True, timeout=60)


def start_chat(sluice, *args):
    env = dict(os.environ, SLUICE_API_KEY=sluice.key)
    # Unbuffered, so what read_some takes is all that left the pipe and communicate() gets the rest.
    return subprocess.Popen([binary(), "chat", "--url", sluice.base_url, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0)


def read_some(proc, size):
    """Blocks until `size` bytes of stdout arrived (or the pipe closed); returns them."""
    data = b""
    while len(data) < size:
        piece = os.read(proc.stdout.fileno(), size - len(data))
        if not piece:
            break
        data += piece
    return data


def session_of(stderr):
    m = re.search(r"^session: (\S+)$", stderr, re.M)
    assert m, stderr
    return m.group(1)


def test_answer_streams_to_stdout_before_the_end(sluice, upstream):
    upstream.script(chunks=["Hel", "lo", " there"], chunk_delay_ms=0)
    done = chat(sluice, "say", "hello")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello there\n"
    assert re.search(r"^model: cloud_large \(cloud\)", done.stderr, re.M), done.stderr
    session_of(done.stderr)
    # The words were sent as one message.
    body = upstream.log()[-1]["body"]
    assert body["messages"][-1] == {"role": "user", "content": "say hello"}

    # The first piece is on the terminal while the upstream still holds back the rest.
    # 3 s between the two pieces: a loaded machine may stall the reader for a while.
    upstream.script(chunks=["first ", "second"], chunk_delay_ms=3000)
    proc = start_chat(sluice, "slowly")
    try:
        first = read_some(proc, len("first "))
        assert first == b"first ", proc.stderr.read()
        assert proc.poll() is None, "the first piece should arrive before the answer ends"
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert first + rest == b"first second\n"


def test_session_continues_the_conversation(sluice, upstream):
    upstream.script(chunks=["Nice to meet you"])
    first = chat(sluice, "I am Ada")
    assert first.returncode == 0, first.stderr
    session = session_of(first.stderr)

    upstream.script(chunks=["You are Ada"])
    second = chat(sluice, "--session", session, "--model-type", "cloud", "who am I?")
    assert second.returncode == 0, second.stderr
    assert second.stdout == "You are Ada\n"
    assert session_of(second.stderr) == session
    messages = upstream.log()[-1]["body"]["messages"]
    assert chat_turns(messages) == [("user", "I am Ada"), ("assistant", "Nice to meet you"), ("user", "who am I?")]


def test_ctrl_c_cancels_the_request_and_the_upstream(sluice, upstream):
    upstream.script(chunks=["tick "] * 200, chunk_delay_ms=100)
    proc = start_chat(sluice, "count forever")
    try:
        assert read_some(proc, len("tick ")) == b"tick "
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert len(out) < len("tick ") * 200
    closed = wait_upstream_closed(upstream)
    assert closed and closed["closed_by_client"], closed


def test_failures_exit_non_zero_with_the_reason(sluice, upstream):
    bad = chat(sluice, "hello", key="sk-" + "x" * 40)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert "401" in bad.stderr and "sluice chat:" in bad.stderr, bad.stderr

    upstream.script(status=503, retry_after="3")
    down = chat(sluice, "hello")
    assert down.returncode == 1
    assert "sluice chat:" in down.stderr, down.stderr

    upstream.script(chunks=["partial "], error_event={"message": "upstream fell over", "type": "server_error"})
    broken = chat(sluice, "hello")
    assert broken.returncode == 1
    assert broken.stdout.startswith("partial")
    assert "sluice chat:" in broken.stderr, broken.stderr

    no_key = chat(sluice, "hello", key="")
    assert no_key.returncode == 2
    assert "SLUICE_API_KEY" in no_key.stderr

    nothing = subprocess.run([binary(), "chat", "--url", "http://127.0.0.1:1", "--key", "sk-x", "hi"],
                             capture_output=True, text=True, timeout=30)
    assert nothing.returncode == 1
    assert "cannot connect" in nothing.stderr
