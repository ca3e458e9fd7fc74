"""Clients for the edge tests: a requests session against one nginx
(`Client`), websocket subscriptions to /api/v1/notifications, tokens
signed by the tests themselves, operations sent straight to a shard, and
small helpers shared by the test files."""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import threading
import time
import uuid

import pytest
import requests

try:
    import websocket  # Debian python3-websocket
except ImportError:  # pragma: no cover
    websocket = None

PASSWORD = "correct horse battery"


class Client:
    def __init__(self, edge):
        self.edge = edge
        self.base = f"https://127.0.0.1:{edge.https_port}/api/v1"
        self.s = requests.Session()
        self.s.verify = str(edge.tls_dir / "ca.pem")
        # REQUESTS_CA_BUNDLE would override the session's CA
        self.s.trust_env = False
        self.token = None

    def req(self, method, path, body=None, headers=None, token=True,
            timeout=15):
        h = dict(headers or {})
        if token and self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        return self.s.request(method, self.base + path, data=data,
                              headers=h, timeout=timeout)

    def register_login(self, name):
        r = self.req("POST", "/auth/register",
                     {"username": name, "password": PASSWORD,
                      "display_name": name.title(),
                      "email": f"{name.lstrip('.')}@example.org"})
        assert r.status_code == 201, r.text
        r = self.req("POST", "/auth/login",
                     {"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"].lower() == "bearer"
        self.token = body["access_token"]
        return self


class EventWriters:
    """Clients creating events in one calendar until the block ends, as
    during a failover: `acked` maps each created event's id to its title,
    `failures` lists every request that did not end in 201.  With keyed,
    each request carries its own Idempotency-Key; without, the edge's own
    request id is what its retries keep.

        with EventWriters(edge, token, cal) as w:
            ...kill something...
        assert not w.failures
    """

    def __init__(self, edge, token: str, cal: str, n: int = 4,
                 keyed: bool = True, prefix: str = "failover"):
        self.edge, self.token, self.cal = edge, token, cal
        self.keyed, self.prefix = keyed, prefix
        self.acked: dict[str, str] = {}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._acked_changed = threading.Condition()
        self._threads = [threading.Thread(target=self._write, args=(w,))
                         for w in range(n)]

    def _write(self, w: int) -> None:
        cl = Client(self.edge)
        cl.token = self.token
        i = 0
        while not self._stop.is_set():
            key = f"{self.prefix[0]}{w}-{i}-{uuid.uuid4().hex[:8]}"
            title = f"{self.prefix} {key}"
            try:
                r = cl.req("POST", f"/calendars/{self.cal}/events",
                           event_body(title=title),
                           headers={"Idempotency-Key": key} if self.keyed
                           else None, timeout=20)
            except requests.RequestException as e:
                self.failures.append(f"{key}: {e!r}")
                time.sleep(0.05)
                continue
            if r.status_code == 201:
                with self._acked_changed:
                    self.acked[unwrap(r, "event")["id"]] = title
                    self._acked_changed.notify_all()
            else:
                self.failures.append(f"{key}: {r.status_code} {r.text}")
            i += 1

    def wait_for_acks(self, more: int, timeout: float = 30.0) -> int:
        """Block until `more` creations beyond those acknowledged so far
        are acknowledged (progress, rather than a fixed sleep that a slow
        machine may spend without one); returns the new total.  Fails
        with the writers' failures when they stall instead."""
        with self._acked_changed:
            target = len(self.acked) + more
            if not self._acked_changed.wait_for(
                    lambda: len(self.acked) >= target, timeout):
                raise AssertionError(
                    f"{len(self.acked)} of {target} creations acknowledged "
                    f"after {timeout} s; failures: {self.failures[:5]}")
            return len(self.acked)

    def __enter__(self) -> "EventWriters":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        stuck = [t for t in self._threads if t.is_alive()]
        assert not stuck, f"{len(stuck)} writers still running after 30 s"

    def check(self, client) -> list[dict]:
        """Nothing failed, nothing was created twice, and every
        acknowledged event is readable; returns the calendar's events."""
        assert not self.failures, self.failures[:5]
        items = list_all(client, self.cal)
        titles = [e["title"] for e in items
                  if e["title"].startswith(f"{self.prefix} ")]
        assert len(titles) == len(set(titles)), "an event was created twice"
        missing = set(self.acked) - {e["id"] for e in items}
        assert not missing, f"acknowledged but not readable: {missing}"
        return items


def unwrap(resp, key):
    """The object of an answer: {"<key>": {...}} or the object itself."""
    body = resp.json()
    return body[key] if isinstance(body.get(key), dict) else body


def me(client):
    return unwrap(client.req("GET", "/me"), "user")["username"]


def uname(prefix="a"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def event_body(i=0, **kw):
    b = {"title": f"Standup {i}", "start": "2026-12-01T09:00:00Z",
         "end": "2026-12-01T09:15:00Z", "time_zone": "Europe/Madrid"}
    b.update(kw)
    return b


def list_all(client, cal):
    """Every event of cal on 2026-12-01, page by page."""
    items, cursor = [], None
    while True:
        q = ("?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z&limit=500"
             + (f"&cursor={cursor}" if cursor else ""))
        r = client.req("GET", f"/calendars/{cal}/events{q}")
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["events"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def error_log(edge) -> str:
    return (edge.root / "logs" / "error.log").read_text(errors="replace")


def send_and_hang_up(edge, method: str, path: str, token: str,
                     body: str = "") -> None:
    """Send one request (path below /api/v1, a JSON body or none) to the
    edge over TLS and close the connection at once, as a client that gives
    up before the answer."""
    head = (f"{method} /api/v1{path} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {token}\r\n")
    if body:
        head += "Content-Type: application/json\r\n"
    request = f"{head}Content-Length: {len(body.encode())}\r\n\r\n{body}"
    s = tls_socket(edge)
    s.sendall(request.encode())
    s.close()


def tls_socket(edge, timeout: float = 5):
    """A TLS connection to the edge's HTTPS port, for raw HTTP bytes."""
    ctx = ssl.create_default_context(cafile=str(edge.tls_dir / "ca.pem"))
    ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", edge.https_port),
                                   timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def raw_exchange(edge, request: bytes, quiet: float = 1.0) -> bytes:
    """Send raw bytes on one connection; everything the edge sends back
    until it closes the connection or stays quiet for `quiet` seconds."""
    s = tls_socket(edge, timeout=quiet)
    got = b""
    try:
        s.sendall(request)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except (socket.timeout, ssl.SSLError, ConnectionError):
        pass
    finally:
        s.close()
    return got


def ws_url(edge, query):
    return f"wss://127.0.0.1:{edge.https_port}/api/v1/notifications?{query}"


def ws_connect(edge, query, origin="", headers=None, subprotocols=None):
    """A websocket like a browser's: with the pinned Origin unless told
    otherwise (origin=None: no Origin header at all); headers: extra
    request headers ({"Last-Event-ID": …}); subprotocols: e.g.
    ["ws+meta.nchan"] (nchan then frames each message with its id)."""
    sslopt = {"ca_certs": str(edge.tls_dir / "ca.pem"),
              "cert_reqs": ssl.CERT_REQUIRED, "check_hostname": False}
    if origin == "":
        origin = f"https://localhost:{edge.https_port}"
    kw = {"suppress_origin": True} if origin is None else {"origin": origin}
    if headers:
        kw["header"] = [f"{k}: {v}" for k, v in headers.items()]
    if subprotocols:
        kw["subprotocols"] = subprotocols
    return websocket.create_connection(ws_url(edge, query), timeout=5,
                                       sslopt=sslopt, **kw)


def ws_meta_message(frame: str) -> tuple[str, dict]:
    """(message id, JSON body) of a ws+meta.nchan frame: header lines
    ("id: <time>:<tag>", "content-type: …"), a blank line, the message."""
    head, sep, body = frame.partition("\n\n")
    assert sep, frame
    fields = dict(line.split(": ", 1) for line in head.split("\n"))
    return fields["id"], json.loads(body)


def ws_status(edge, query, origin="", headers=None) -> int:
    try:
        ws = ws_connect(edge, query, origin, headers=headers)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code
    ws.close()
    return 101


needs_ws = pytest.mark.skipif(websocket is None,
                              reason="python3-websocket is not installed")


# ---- tokens the tests sign, operations straight to a shard -----------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def unb64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_key(edge) -> bytes:
    """The HS256 secret nginx uses (agenda_jwt_key_file drops one final
    newline)."""
    key = (edge.tls_dir / "jwt.key").read_bytes()
    return key[:-1] if key.endswith(b"\n") else key


def forge(header: dict, claims: dict, key: bytes | None,
          digest=hashlib.sha256) -> str:
    head = b64url_json(header) + "." + b64url_json(claims)
    if key is None:
        return head + "."
    sig = hmac.new(key, head.encode(), digest).digest()
    return head + "." + b64url(sig)


def claims_of(token: str) -> dict:
    return json.loads(unb64url(token.split(".")[1]))


def shard_op(agents, shard: str, command: bool, op: str, args: dict,
             actor=None):
    """One operation on a shard's leader (API.md), as the edge would."""
    rid = agents.wait_for_leader(shard)
    port = agents.http_ports[(shard, rid)]
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5,
                                       context=agents.tls_context) \
        if agents.tls_context else \
        http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    body = json.dumps({"op": op, "actor": actor or {"user": "",
                                                     "role": "system"},
                       "args": args})
    hdr = {"Content-Type": "application/json"}
    if command:
        hdr["Idempotency-Key"] = uuid.uuid4().hex
    try:
        conn.request("POST", "/v1/commands" if command else "/v1/queries",
                     body=body, headers=hdr)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def make_admin(agents, edge) -> Client:
    """An admin account: the public API never grants the role, so the
    account is registered on the users shard as the edge does, with the
    password hash the edge made for an ordinary account."""
    plain = Client(edge).register_login(uname("p"))
    st, ans = shard_op(agents, "users", False, "user.auth",
                       {"username": me(plain)})
    assert st == 200, ans
    name = uname("adm")
    st, ans = shard_op(agents, "users", True, "user.register",
                       {"username": name, "display_name": "Admin",
                        "email": f"{name}@example.org",
                        "password_hash": ans["user"]["password_hash"],
                        "role": "admin"})
    assert st == 201, ans
    admin = Client(edge)
    r = admin.req("POST", "/auth/login", {"username": name,
                                          "password": PASSWORD}, token=False)
    assert r.status_code == 200, r.text
    admin.token = r.json()["access_token"]
    return admin
