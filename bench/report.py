#!/usr/bin/python3
"""Turns one bench/run.sh output directory into the generated part of docs/BENCHMARKS.md.

Usage: report.py OUT_DIR BENCHMARKS_MD

Only the text between the `<!-- bench:begin -->` and `<!-- bench:end -->` markers is replaced, so
sections that other benchmarks own (the local model, routing) stay as they are.
"""

import json
import pathlib
import sys

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
TARGETS = {  # the targets, 2 cores, instant upstream
    "added_p99_rate_ms": 0.3,
    "streams_rss_mb": 256,
    "streams_added_gap_p99_ms": 2.0,
    "cancel_p99_ms": 5.0,
    "relay_chunks_per_core_s": 200_000,
    # issue 17: against nginx as a plain reverse proxy of the same upstream, same run
    "seed_rps_vs_proxy_c64": 0.5,
    "seed_p99_vs_proxy_c8": 3.0,
    "openai_rps_vs_proxy_c64": 0.7,
}
WHO = {"direct": "upstream alone", "proxy": "nginx proxy", "sluice": "sluice", "peer": "Portkey"}


def load(out):
    runs = {}
    for f in sorted(out.glob("*.json")):
        if f.name == "machine.json" or f.name.startswith("warmup."):
            continue
        label, _, target = f.stem.rpartition(".")
        runs.setdefault(label, {})[target] = json.loads(f.read_text())
    return runs, json.loads((out / "machine.json").read_text())


def fmt(v, digits=3):
    if v is None:
        return "—"
    if isinstance(v, float):
        if digits == 0 or abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def pct(run, key, q):
    return run.get(key, {}).get(q) if run else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def watch(run, i=0):
    w = (run or {}).get("watch") or []
    return w[i] if len(w) > i else {}


def errors(run):
    if not run:
        return "—"
    n = run.get("error_count", 0)
    return "0" if n == 0 else f"{n} ({', '.join(f'{k} {v}' for k, v in run['errors'].items())})"


def overhead_table(runs, mode):
    lines = [
        "| load | direct p50 / p99 ms | nginx proxy p50 / p99 ms | sluice p50 / p99 ms | peer p50 / p99 ms "
        "| sluice added p50 / p99 ms | peer added p50 / p99 ms | req/s direct / nginx / sluice / peer "
        "| sluice ÷ nginx req/s | sluice ÷ nginx p99 | errors sluice / peer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for load in ("c1", "c64", "c512", "rate5000", "seed64", "seed8"):
        r = runs.get(f"overhead.{mode}.{load}")
        if not r:
            continue
        d, n, s, p = r.get("direct"), r.get("proxy"), r.get("sluice"), r.get("peer")

        def pair(run):
            return f"{fmt(pct(run, 'latency_ms', 'p50'))} / {fmt(pct(run, 'latency_ms', 'p99'))}" if run else "—"

        def added(run, q):
            a, b = pct(run, "latency_ms", q), pct(d, "latency_ms", q)
            return None if a is None or b is None else a - b

        name = {"c1": "1 connection", "c64": "64 connections", "c512": "512 connections",
                "rate5000": "5,000 req/s (open loop)",
                "seed64": "64 connections, sluice's /api/v1/chat/stream (each turn stored)",
                "seed8": "8 connections, sluice's /api/v1/chat/stream (each turn stored)"}[load]
        rps = " / ".join(fmt((run or {}).get("rps"), 0) for run in (d, n, s, p))
        lines.append(
            f"| {name} | {pair(d)} | {pair(n)} | {pair(s)} | {pair(p)} "
            f"| {fmt(added(s, 'p50'))} / {fmt(added(s, 'p99'))} | {fmt(added(p, 'p50'))} / {fmt(added(p, 'p99'))} "
            f"| {rps} | {fmt(ratio((s or {}).get('rps'), (n or {}).get('rps')), 2)} "
            f"| {fmt(ratio(pct(s, 'latency_ms', 'p99'), pct(n, 'latency_ms', 'p99')), 1)} "
            f"| {errors(s)} / {errors(p)} |")
    return lines


def streams_table(runs, big):
    lines = [
        "| streams × tokens/s | through | done / asked | peak RSS MB | CPU % (1 core = 100) | chunk delay p50 / p99 ms "
        "| added delay p99 ms | gap p99 ms | tokens/s delivered | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, n, rate in (("1000", 1000, 20), ("10000", big, 20), ("10000slow", big, 2)):
        r = runs.get(f"streams.{key}")
        if not r:
            continue
        d = r.get("direct")
        for target in ("direct", "proxy", "sluice", "peer"):
            run = r.get(target)
            if not run:
                continue
            w = watch(run)
            added = None
            if target != "direct" and d:
                added = pct(run, "chunk_delay_ms", "p99") - pct(d, "chunk_delay_ms", "p99")
            who = WHO[target]
            mem = "(upstream)" if target == "direct" else fmt(w.get("peak_rss_mb"), 1)
            lines.append(
                f"| {int(n):,} at {rate}/s | {who} | {run.get('streams_done', 0):,} / {int(n):,} | {mem} "
                f"| {fmt(w.get('cpu_pct'), 1)} "
                f"| {fmt(pct(run, 'chunk_delay_ms', 'p50'))} / {fmt(pct(run, 'chunk_delay_ms', 'p99'))} "
                f"| {fmt(added)} | {fmt(pct(run, 'gap_ms', 'p99'))} | {fmt(run.get('content_events_per_s'), 0)} "
                f"| {errors(run)} |")
    return lines


def cancel_table(runs):
    lines = ["| through | closes seen upstream / asked | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|"]
    r = runs.get("cancel", {})
    for target in ("direct", "proxy", "sluice", "peer"):
        run = r.get(target)
        if not run:
            continue
        c = run.get("cancel_ms", {})
        asked = run.get("streams_cancelled", 0)
        who = WHO[target]
        if not c.get("n"):
            lines.append(f"| {who} | 0 / {asked} | the upstream never saw a close while the stream ran | — | — |")
            continue
        lines.append(f"| {who} | {c.get('n', 0)} / {asked} | {fmt(c.get('p50'))} | {fmt(c.get('p99'))} "
                     f"| {fmt(c.get('max'))} |")
    return lines


def relay_rows(runs):
    r = runs.get("relay", {})
    lines = ["| through | chunks/s delivered | gateway CPU s | chunks per CPU-second (per core) | errors |",
             "|---|---|---|---|---|"]
    out = {}
    for target in ("direct", "proxy", "sluice"):
        run = r.get(target)
        if not run:
            continue
        w = watch(run)
        cpu = w.get("cpu_s") or 0
        per_core = run["content_events"] / cpu if cpu > 0 else None
        out[target] = per_core
        who = "upstream alone (its own CPU)" if target == "direct" else WHO[target]
        lines.append(f"| {who} | {fmt(run.get('content_events_per_s'), 0)} | {fmt(cpu, 2)} | {fmt(per_core, 0)} "
                     f"| {errors(run)} |")
    return lines, out


def stream_targets(r, rate, verdict, big):
    rows = []
    if not r.get("sluice"):
        return rows
    at = f"{big:,} streams at {rate} tokens/s"
    rss = watch(r["sluice"]).get("peak_rss_mb")
    rows.append(f"| {at}: peak RSS ≤ {TARGETS['streams_rss_mb']} MB | {fmt(rss, 1)} MB "
                f"| {verdict(rss is not None and rss <= TARGETS['streams_rss_mb'])} |")
    if r.get("direct"):
        added = pct(r["sluice"], "chunk_delay_ms", "p99") - pct(r["direct"], "chunk_delay_ms", "p99")
        rows.append(f"| {at}: added inter-chunk p99 ≤ {TARGETS['streams_added_gap_p99_ms']} ms "
                    f"| {fmt(added)} ms | {verdict(added <= TARGETS['streams_added_gap_p99_ms'])} |")
        lost_direct = big - r["direct"].get("streams_done", 0)
    else:
        lost_direct = None
    lost = big - r["sluice"].get("streams_done", 0)
    extra = f" (directly against the upstream: {lost_direct} lost)" if lost_direct else ""
    rows.append(f"| {at}: none lost | {lost} lost{extra} | {verdict(lost == 0)} |")
    return rows


def proxy_targets(runs, verdict):
    """Issue 17: sluice against nginx as a plain proxy of the same upstream, in the same run."""
    rows = []

    def rps(label, target):
        return (runs.get(label, {}).get(target) or {}).get("rps")

    seed = ratio(rps("overhead.stream.seed64", "sluice"), rps("overhead.stream.seed64", "proxy"))
    if seed is not None:
        rows.append(f"| /api/v1/chat/stream (each turn stored) ≥ {TARGETS['seed_rps_vs_proxy_c64']}× the nginx "
                    f"proxy's req/s, 64 connections | {fmt(seed, 2)}× "
                    f"| {verdict(seed >= TARGETS['seed_rps_vs_proxy_c64'])} |")
    r8 = runs.get("overhead.stream.seed8", {})
    p99 = ratio(pct(r8.get("sluice"), "latency_ms", "p99"), pct(r8.get("proxy"), "latency_ms", "p99"))
    if p99 is not None:
        rows.append(f"| /api/v1/chat/stream p99 ≤ {TARGETS['seed_p99_vs_proxy_c8']}× the nginx proxy's, "
                    f"8 connections | {fmt(p99, 1)}× | {verdict(p99 <= TARGETS['seed_p99_vs_proxy_c8'])} |")
    openai = ratio(rps("overhead.stream.c64", "sluice"), rps("overhead.stream.c64", "proxy"))
    if openai is not None:
        rows.append(f"| /v1/chat/completions ≥ {TARGETS['openai_rps_vs_proxy_c64']}× the nginx proxy's req/s, "
                    f"64 connections (streaming) | {fmt(openai, 2)}× "
                    f"| {verdict(openai >= TARGETS['openai_rps_vs_proxy_c64'])} |")
    return rows


def targets_table(runs, relay, big):
    rows = ["| target | measured | verdict |", "|---|---|---|"]

    def verdict(ok):
        return "met" if ok else "**missed**"

    for mode in ("plain", "stream"):
        r = runs.get(f"overhead.{mode}.rate5000", {})
        if r.get("sluice") and r.get("direct"):
            added = pct(r["sluice"], "latency_ms", "p99") - pct(r["direct"], "latency_ms", "p99")
            rows.append(f"| p99 added ≤ {TARGETS['added_p99_rate_ms']} ms at 5,000 req/s ({mode}) | {fmt(added)} ms "
                        f"| {verdict(added <= TARGETS['added_p99_rate_ms'])} |")
    for key, rate in (("streams.10000", 20), ("streams.10000slow", 2)):
        rows.extend(stream_targets(runs.get(key, {}), rate, verdict, big))
    rows.extend(proxy_targets(runs, verdict))
    c = runs.get("cancel", {}).get("sluice")
    if c and c.get("cancel_ms", {}).get("n"):
        p99 = c["cancel_ms"]["p99"]
        rows.append(f"| cancellation p99 ≤ {TARGETS['cancel_p99_ms']} ms | {fmt(p99)} ms "
                    f"| {verdict(p99 <= TARGETS['cancel_p99_ms'])} |")
    if relay.get("sluice"):
        v = relay["sluice"]
        rows.append(f"| ≥ {TARGETS['relay_chunks_per_core_s']:,} relayed chunks/s per core | {fmt(v, 0)} "
                    f"| {verdict(v >= TARGETS['relay_chunks_per_core_s'])} |")
    return rows


def generate(out):
    runs, m = load(out)
    relay_lines, relay = relay_rows(runs)
    peer = m.get("peer") or "not run"
    big = int(m.get("big_streams", 10000))
    fd_note = []
    if big < 10000:
        fd_note = ["", f"The big stream scenarios ask for **{big:,}** streams, not 10,000: this machine's hard "
                   f"limit on open files is {m.get('fd_limit')} per process and cannot be raised here, and a "
                   "gateway holds two descriptors per stream (client and upstream)."]
    lines = [
        BEGIN,
        "<!-- Generated by bench/report.py from `make bench`; edit the script, not this block. -->",
        "",
        "## Gateway overhead and streaming (`make bench`)",
        "",
        f"Run {m['date']} at commit `{m['commit']}`, profile `{m['profile']}`: **{m['nproc']} cores** "
        f"({m['cpu']}), {m['mem_gb']} GB, Linux {m['kernel']}; load average at the end {m['loadavg']} "
        f"(the machine is shared: other builds may have run during the measurement, so the measured "
        f"processes ran at nice {m.get('nice', 0)}; treat single figures with care and compare the "
        "columns of one run).",
        "",
        "    make bench                       # short profile, under 10 minutes",
        "    BENCH_PROFILE=full bench/run.sh  # 60 s streams, longer overhead runs",
        "",
        "Everything runs on 127.0.0.1 in the same run: `bench/fast_upstream` (a C++ OpenAI-compatible "
        "upstream that answers instantly or paces tokens), `bench/loadgen` (C++ load generator), "
        f"`build/sluice serve` (driven through its `{m['sluice_surface']}` surface; the model is a "
        "`cloud_large` model pointing at the fast upstream, routing forced to it) and the peer, "
        f"**{peer}** on Node {m.get('node') or '—'}, pointed at the same upstream with "
        "`x-portkey-custom-host`, and "
        f"**{m.get('proxy') or 'no nginx (not installed)'}** as a plain reverse proxy of the same upstream "
        "(one worker, keep-alive to both sides, `proxy_buffering off`): the floor, a gateway that only "
        "moves bytes. The peer ran with one fix applied to its installed copy by "
        "`bench/run.sh`: the upstream `Response` is re-wrapped (`new Response(body, response)`) before "
        "Portkey appends its headers, without which its streaming fails on Node's fetch; it was also "
        "bound to 127.0.0.1. Portkey waits about 25 ms before its first streamed chunk by design.",
        "",
        "*Added* latency is the figure through the gateway minus the figure straight against the "
        "upstream in the same run. Latency is per request, measured by the client; in the open-loop "
        "rows it counts from the scheduled send time, so a stall cannot hide behind a slow client.",
        "",
        "### Targets",
        "",
        *targets_table(runs, relay, big),
        "",
        "### 1. Overhead, non-streaming (instant upstream, 20 tokens)",
        "",
        *overhead_table(runs, "plain"),
        "",
        "### 1. Overhead, streaming (instant upstream, 20 tokens, whole request)",
        "",
        *overhead_table(runs, "stream"),
        "",
        "### 2. Concurrent streams at 20 tokens/s each",
        "",
        "Each token carries the upstream's send time; *chunk delay* is its arrival at the client minus "
        "that time, so *added delay* is what the gateway adds to every chunk. RSS and CPU are the "
        "gateway's (for the direct rows the upstream's CPU).",
        *fd_note,
        "",
        *streams_table(runs, big),
        "",
        "### 3. Cancellation: client closes mid-stream, upstream sees the close",
        "",
        "The client closes after 3 content chunks of a paced stream; the upstream logs when its socket "
        "reports the close. Figures are upstream-saw-close minus client-closed (same monotonic clock).",
        "",
        *cancel_table(runs),
        "",
        "### 4. Relay throughput (instant upstream, 1,000 tokens per stream, 32 streams)",
        "",
        *relay_lines,
        "",
        END,
    ]
    return "\n".join(lines) + "\n"


def main():
    out, md = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    block = generate(out)
    text = md.read_text() if md.exists() else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block.rstrip("\n") + tail
    else:
        # Before the sections other benchmarks own (they keep their own headings below).
        text = text.rstrip("\n") + "\n\n" + block
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(text)


if __name__ == "__main__":
    main()
