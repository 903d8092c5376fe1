#!/usr/bin/python3
"""An imitation of the Hugging Face hub's download endpoints, for `sluice models pull` tests.

Usage: /usr/bin/python3 fake_hub.py
The first stdout line is `PORT <hub> <cdn>` (flushed): two servers on 127.0.0.1, the hub and the CDN
its resolve URLs redirect to (another origin, as huggingface.co redirects to its CDN).

Hub (as huggingface.co answers):
  GET /api/models/ORG/REPO/tree/main[?recursive=true]
      [{"type": "file", "oid", "size", "path", "lfs": {"oid": sha256, "size", "pointerSize"}}, ...]
  GET /ORG/REPO/resolve/main/PATH
      302 to http://127.0.0.1:<cdn>/blobs/<sha256>?sig=..., with X-Linked-Etag: "<sha256>" and
      X-Linked-Size. Unknown repo or file: 404 {"error": ...}. A gated repo without the right
      `Authorization: Bearer <token>`: 401 (listing and resolve alike).
CDN:
  GET /blobs/SHA?sig=...  the bytes; Range: bytes=N- gives 206 with Content-Range.

Control (on the hub port):
  POST /_add   {"repo", "path", "file": local path, "gated_token": null | token, "corrupt": false,
               "cut_after": null | N}: publishes `file` as PATH of REPO (the listing gives its real
               SHA-256 and size). corrupt: the CDN serves the bytes with one flipped. cut_after: the
               next CDN response for it sends N bytes of the body, then closes the connection (once:
               the client gets exactly N bytes, then the end of the connection).
  GET  /_log   {"requests": [{"server": "hub"|"cdn", "method", "path", "query", "range",
               "authorization"}]}; authorization is the header value as received, or null.
  POST /_reset clears the log and every repo.
"""

import asyncio
import hashlib
import json
import sys

from aiohttp import web


class State:
    def __init__(self):
        self.reset()

    def reset(self):
        self.repos = {}  # repo -> {path -> entry}
        self.blobs = {}  # blob id -> entry
        self.log = []


STATE = State()
CDN_PORT = [0]


def log_request(server, request):
    STATE.log.append({
        "server": server,
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "range": request.headers.get("Range"),
        "authorization": request.headers.get("Authorization"),
    })


def authorized(request, entry_or_repo):
    token = entry_or_repo.get("gated_token")
    return token is None or request.headers.get("Authorization") == f"Bearer {token}"


def repo_gate(request, repo):
    files = STATE.repos.get(repo)
    if files is None:
        return None, web.json_response({"error": "Repository not found"}, status=404)
    gated = [f for f in files.values() if f["gated_token"] is not None]
    if gated and not authorized(request, gated[0]):
        return None, web.json_response(
            {"error": "Access to model " + repo + " is restricted. You must have access to it and be authenticated to access it. Please log in."},
            status=401)
    return files, None


async def add(request):
    body = await request.json()
    with open(body["file"], "rb") as f:
        data = f.read()
    sha = hashlib.sha256(data).hexdigest()
    served = bytearray(data)
    if body.get("corrupt"):
        served[len(served) // 2] ^= 0xFF
    blob_id = f"{sha}-{len(STATE.blobs)}"  # one blob per publication: their options stay apart
    entry = {"path": body["path"], "sha": sha, "size": len(data), "data": bytes(served),
             "gated_token": body.get("gated_token"), "cut_after": body.get("cut_after"), "blob": blob_id}
    STATE.repos.setdefault(body["repo"], {})[body["path"]] = entry
    STATE.blobs[blob_id] = entry
    return web.json_response({"sha256": sha, "size": len(data)})


async def get_log(request):
    return web.json_response({"requests": STATE.log})


async def reset(request):
    STATE.reset()
    return web.json_response({"ok": True})


async def tree(request):
    log_request("hub", request)
    repo = request.match_info["org"] + "/" + request.match_info["repo"]
    files, error = repo_gate(request, repo)
    if error is not None:
        return error
    listing = [{"type": "file", "oid": "0" * 40, "size": 25, "path": ".gitattributes"}]
    for entry in files.values():
        listing.append({"type": "file", "oid": hashlib.sha1(entry["sha"].encode()).hexdigest(), "size": entry["size"],
                        "path": entry["path"], "lfs": {"oid": entry["sha"], "size": entry["size"], "pointerSize": 134}})
    return web.json_response(listing)


async def resolve(request):
    log_request("hub", request)
    repo = request.match_info["org"] + "/" + request.match_info["repo"]
    files, error = repo_gate(request, repo)
    if error is not None:
        return error
    entry = files.get(request.match_info["path"])
    if entry is None:
        return web.json_response({"error": "Entry not found"}, status=404)
    location = f"http://127.0.0.1:{CDN_PORT[0]}/blobs/{entry['blob']}?sig=signed-by-the-hub&expires=9999999999"
    return web.Response(status=302, headers={"Location": location, "X-Linked-Etag": f'"{entry["sha"]}"',
                                             "X-Linked-Size": str(entry["size"])})


async def blob(request):
    log_request("cdn", request)
    entry = STATE.blobs.get(request.match_info["blob"])
    if entry is None:
        return web.Response(status=404, text="NoSuchKey")
    data = entry["data"]
    start = 0
    status = 200
    headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
    ranged = request.headers.get("Range")
    if ranged:
        if not ranged.startswith("bytes=") or not ranged[6:].endswith("-"):
            return web.Response(status=400, text="only bytes=N- ranges here")
        start = int(ranged[6:-1])
        if start >= len(data):
            return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
    body = data[start:]
    headers["Content-Length"] = str(len(body))
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    cut = entry.get("cut_after")
    if cut is not None:
        entry["cut_after"] = None  # once
        await response.write(body[:cut])
        await response.drain()
        request.transport.close()  # after what was written: the client sees the body end early
        return response
    for at in range(0, len(body), 64 * 1024):
        await response.write(body[at:at + 64 * 1024])
    await response.write_eof()
    return response


async def main():
    hub = web.Application(client_max_size=1024 * 1024)
    hub.router.add_post("/_add", add)
    hub.router.add_get("/_log", get_log)
    hub.router.add_post("/_reset", reset)
    hub.router.add_get("/api/models/{org}/{repo}/tree/main", tree)
    hub.router.add_get("/{org}/{repo}/resolve/main/{path:.+}", resolve)
    cdn = web.Application()
    cdn.router.add_get("/blobs/{blob}", blob)
    ports = []
    for app in (hub, cdn):
        runner = web.AppRunner(app, access_log=None, handle_signals=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])
    CDN_PORT[0] = ports[1]
    print(f"PORT {ports[0]} {ports[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
