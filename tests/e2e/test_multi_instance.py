"""Two `sluice serve` processes on one real redis-server, as behind a load balancer: they share
sessions, keys, rate limits, the usage ledger and the per-session turn lock."""

import threading
import time

import pytest

from store_support import (Redis, Serve, create_key, fresh_rate_window, request, sluice_cli, stream,
                           usage_totals, wait_until, write_config)


@pytest.fixture
def redis(tmp_path):
    server = Redis(str(tmp_path))
    yield server
    server.stop()


@pytest.fixture
def pair(tmp_path, upstream, redis):
    """Two sluice processes, each with its own config file and directory, on the same Redis."""
    started = []
    for name in ("a", "b"):
        workdir = str(tmp_path / name)
        config = write_config(workdir, redis.url, upstream)
        started.append(Serve(workdir, config))
    yield started
    for s in started:
        code = s.stop()
        assert code == 0, s.log_text()[-4000:]


def test_one_first_key_for_both(pair):
    # The first process made the store's first key; the second found it there.
    a, b = pair
    assert a.first_key is not None
    assert b.first_key is None
    for s in pair:
        status, _, events = stream(s.base_url, a.first_key)
        assert status == 200, events


def test_session_continues_on_the_other_instance(upstream, pair):
    a, b = pair
    key, _ = create_key(a.config_path)
    upstream.script(queue=[{"chunks": ["first ", "answer"]}, {"chunks": ["second answer"]}])
    status, _, events = stream(a.base_url, key, "remember the word tangerine", session_id="shared-1")
    assert status == 200 and events[-1]["done"] is True
    status, _, events = stream(b.base_url, key, "which word?", session_id="shared-1")
    assert status == 200 and events[-1]["done"] is True
    # The second upstream request, sent by the other process, carried the whole conversation.
    messages = upstream.log()[1]["body"]["messages"]
    turns = [(m["role"], m["content"]) for m in messages if m["role"] != "system"]
    assert turns == [("user", "remember the word tangerine"), ("assistant", "first answer"),
                     ("user", "which word?")]
    # A third turn back on the first process sees all four earlier turns.
    stream(a.base_url, key, "and again?", session_id="shared-1")
    assert len([m for m in upstream.log()[2]["body"]["messages"] if m["role"] != "system"]) == 5
    # Another key cannot continue that session on either process.
    other, _ = create_key(b.config_path)
    for s in pair:
        status, _, events = stream(s.base_url, other, "let me in", session_id="shared-1")
        assert status == 404, events


def test_requests_per_minute_holds_across_both(pair, upstream):
    a, b = pair
    key, key_id = create_key(a.config_path, rpm=4)
    fresh_rate_window()
    for s in (a, b, a, b):
        status, _, events = stream(s.base_url, key)
        assert status == 200, events
    for s in (a, b):
        status, headers, events = stream(s.base_url, key)
        assert status == 429, events
        assert int(headers["retry-after"]) >= 1
        assert "requests_per_minute" in events[0]["error"]
    assert len(upstream.log()) == 4
    # Both processes write to one ledger; each batches its counts for at most ~100 ms.
    wait_until(lambda: usage_totals(b.base_url, key)["totals"]["requests"] == 4, 5,
               "both instances' requests in the shared ledger")


def test_key_revoked_through_one_is_refused_by_the_other_within_a_second(pair):
    a, b = pair
    key, key_id = create_key(a.config_path)
    # b has just seen the key as valid (and may cache that).
    status, _, _ = request(b.base_url, "GET", "/api/v1/models", key)
    assert status == 200
    out = sluice_cli(a.config_path, "keys", "revoke", key_id)
    assert out.returncode == 0, out.stderr
    revoked_at = time.monotonic()

    accepted_at = []

    def refused():
        sent_at = time.monotonic()
        status = request(b.base_url, "GET", "/api/v1/models", key)[0]
        if status == 200:
            accepted_at.append(sent_at)
        return status == 401

    wait_until(refused, 5, "the other process to refuse the revoked key")
    # No request sent a second or more after the revoke was accepted.
    late = [t - revoked_at for t in accepted_at if t - revoked_at >= 1.0]
    assert not late, f"still accepted {max(late):.2f} s after the revoke"
    assert request(b.base_url, "GET", "/api/v1/models", key)[0] == 401
    status, _, events = stream(a.base_url, key)
    assert status == 401 and events[0]["code"] == 401


LOCK_TTL_MS = 2000


@pytest.fixture
def locked_pair(tmp_path, upstream, redis):
    """Two processes on one Redis with a short session lock time to live (so a dead holder's lock
    expires within the test)."""
    started = []
    for name in ("la", "lb"):
        workdir = str(tmp_path / name)
        config = write_config(workdir, redis.url, upstream,
                              extra_toml=f"[routing]\nsession_lock_ttl_ms = {LOCK_TTL_MS}\n")
        started.append(Serve(workdir, config))
    yield started
    for s in started:
        if s.alive():
            code = s.stop()
            assert code == 0, s.log_text()[-4000:]


def _in_thread(fn, *args, **kwargs):
    result = {}

    def run():
        result["value"] = fn(*args, **kwargs)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_concurrent_turns_on_one_session_through_both_are_serialised(upstream, locked_pair):
    a, b = locked_pair
    key = a.first_key
    assert stream(a.base_url, key, "first", session_id="one-at-a-time")[0] == 200
    # The turn through a lasts ~1.2 s (longer than the lock's refresh period); b's starts meanwhile.
    upstream.script(queue=[{"chunks": ["slow "] * 12, "chunk_delay_ms": 100}, {"chunks": ["quick"]}])
    first, first_result = _in_thread(stream, a.base_url, key, "second", session_id="one-at-a-time")
    wait_until(lambda: len(upstream.log()) == 2, 10, "a's upstream request")
    second, second_result = _in_thread(stream, b.base_url, key, "third", session_id="one-at-a-time")
    first.join(30)
    second.join(30)
    for result in (first_result, second_result):
        status, _, events = result["value"]
        assert status == 200 and events[-1]["done"] is True, events
    log = upstream.log()
    assert len(log) == 3, log
    # b's upstream request started after a's ended, and carried a's turn.
    assert log[2]["t_start"] >= log[1]["t_end"], (log[1], log[2])
    turns = [(m["role"], m["content"]) for m in log[2]["body"]["messages"] if m["role"] != "system"]
    assert turns[-3:] == [("user", "second"), ("assistant", "slow " * 12), ("user", "third")], turns


def test_the_lock_of_a_killed_holder_expires(upstream, locked_pair, redis):
    a, b = locked_pair
    key = a.first_key
    assert stream(a.base_url, key, "first", session_id="orphaned")[0] == 200
    upstream.script(queue=[{"chunks": ["never "] * 100, "chunk_delay_ms": 100}, {"chunks": ["after"]}])
    def hold():
        try:
            request(a.base_url, "POST", "/api/v1/chat/stream", key, {"message": "cut", "session_id": "orphaned"})
        except OSError:
            pass  # the holder is killed under it

    holder, _ = _in_thread(hold)
    wait_until(lambda: len(upstream.log()) == 2, 10, "a's upstream request")
    assert b"lock_" in redis.command("GET", "sluice:session_lock:orphaned")
    a.kill9()
    killed_at = time.monotonic()
    holder.join(30)
    status, _, events = stream(b.base_url, key, "again", session_id="orphaned")
    assert status == 200 and events[-1]["done"] is True, events
    waited = upstream.log()[-1]["t_start"] - killed_at
    print(f"b's turn started {waited:.2f} s after the holder was killed (lock ttl {LOCK_TTL_MS} ms)")
    # The lock was refreshed every third of its ttl until the kill, then left to expire.
    assert LOCK_TTL_MS / 1000 / 2 <= waited <= LOCK_TTL_MS / 1000 + 1.5, waited
