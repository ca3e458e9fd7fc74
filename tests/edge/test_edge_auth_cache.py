"""The edge's auth cache (agenda_auth_cache_ttl, ngx_agenda_auth_cache.c)
through nginx and real agents: what a worker learns of an account (role,
token version) serves every worker; a password change through the edge
revokes the old token on all of them from the very next request; a known
caller needs no users shard at all; a change made behind the edge's back
is noticed within the time to live; the directives are checked by
`nginx -t`.

The edge here runs two workers and a long time to live (300 s), so that
anything the flows failed to forget would stay visible for the whole test.
Which worker serves a connection is read from /proc (the worker holding
the server side of its socket), so "every worker" is checked, not hoped.
"""
from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import time
import uuid

import pytest

from conftest import started_stack
from edge_client import (PASSWORD, Client, claims_of, forge, jwt_key,
                         shard_op, uname, websocket, ws_status)

DAY = "from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"
NEW_PASSWORD = "a new passphrase!"


@pytest.fixture(scope="module")
def cached_stack(request, tls_dir):
    """Agents (one replica per shard: the users shard can be stopped
    whole) and an nginx with two workers, a 300 s auth cache and a 1 s
    retry budget (a stopped shard answers 503 quickly)."""
    with started_stack(request, tls_dir, "edge-cache",
                       ("--workers", "2", "--auth-cache-ttl", "300s",
                        "--retry-budget", "1s", "--auth-rate", "100r/s",
                        "--auth-burst", "200"),
                       replicas=1) as s:
        yield s


# ---- connections pinned to workers ------------------------------------------

def worker_pids(edge) -> set[int]:
    pids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == edge.proc.pid:
            pids.add(int(d))
    return pids


def server_socket_inode(edge, client_port: int) -> str | None:
    """The inode of nginx's end of the connection from client_port."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            local, remote = cols[1], cols[2]
            if int(local.split(":")[1], 16) == edge.https_port and \
                    int(remote.split(":")[1], 16) == client_port:
                return cols[9]
    return None


def worker_of(edge, conn, workers: set[int]) -> int | None:
    inode = server_socket_inode(edge, conn.sock.getsockname()[1])
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in workers:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


def connect(edge):
    conn = http.client.HTTPSConnection("127.0.0.1", edge.https_port,
                                       timeout=15,
                                       context=edge.tls_context())
    conn.connect()
    return conn


def connections_on_every_worker(edge, per_worker: int = 2):
    """{worker pid: [keep-alive connections it serves]}, at least
    per_worker each.  Connections are opened in concurrent bursts: an idle
    nginx tends to hand every new connection to the same worker."""
    workers = worker_pids(edge)
    assert len(workers) == 2, workers
    got: dict[int, list] = {pid: [] for pid in workers}
    spare = []
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for _ in range(40):
            if all(len(v) >= per_worker for v in got.values()):
                break
            for conn in pool.map(lambda _: connect(edge), range(16)):
                pid = worker_of(edge, conn, workers)
                if pid is not None and len(got[pid]) < per_worker:
                    got[pid].append(conn)
                else:
                    spare.append(conn)
    for conn in spare:
        conn.close()
    assert all(len(v) >= per_worker for v in got.values()), \
        {pid: len(v) for pid, v in got.items()}
    return got


def call(conn, method, path, token, body=None):
    """(status, parsed body) of one request on a kept-alive connection."""
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, "/api/v1" + path, body=data, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, (json.loads(raw) if raw else {})


def close_all(per_worker):
    for conns in per_worker.values():
        for conn in conns:
            conn.close()


# ---- revocation through this edge -------------------------------------------

def test_a_password_change_revokes_the_old_token_on_every_worker_at_once(
        cached_stack):
    _, edge = cached_stack
    c = Client(edge).register_login(uname("w"))
    name = claims_of(c.token)["sub"]
    old = c.token
    per_worker = connections_on_every_worker(edge)
    try:
        # the login stored the entry; every worker sees it
        for conns in per_worker.values():
            for conn in conns:
                st, body = call(conn, "GET", f"/calendars/{name}/events?{DAY}",
                                old)
                assert st == 200, body
        ws_before = websocket is not None and \
            ws_status(edge, f"access_token={old}") == 101
        r = c.req("POST", "/me/password", {"current_password": PASSWORD,
                                           "new_password": NEW_PASSWORD})
        assert r.status_code == 200, r.text
        new = r.json()["access_token"]
        # the very next requests, on both workers, several times each
        for _ in range(3):
            for pid, conns in per_worker.items():
                for conn in conns:
                    for path in ("/me", f"/calendars/{name}/events?{DAY}"):
                        st, body = call(conn, "GET", path, old)
                        assert st == 401, (pid, path, body)
                        assert body["error"]["code"] == "invalid_token"
                        assert "revoked" in body["error"]["message"]
        for conns in per_worker.values():
            for conn in conns:
                st, body = call(conn, "GET", "/me", new)
                assert st == 200, body
        if websocket is not None:
            assert ws_before
            assert ws_status(edge, f"access_token={old}") == 401
            assert ws_status(edge, f"access_token={new}") == 101
    finally:
        close_all(per_worker)


# ---- a known caller needs no users shard ------------------------------------

def unknown_account_token(agents, edge, like: str) -> tuple[str, str]:
    """(name, token) of an account registered straight on the users shard,
    so this edge never heard of it; the token is signed with the edge's
    key, claims copied from a real token (like)."""
    st, ans = shard_op(agents, "users", False, "user.auth",
                       {"username": claims_of(like)["sub"]})
    assert st == 200, ans
    name = uname("u")
    st, ans = shard_op(agents, "users", True, "user.register",
                       {"username": name, "display_name": "Unseen",
                        "email": f"{name}@example.org",
                        "password_hash": ans["user"]["password_hash"]})
    assert st == 201, ans
    now = int(time.time())
    tok = forge({"alg": "HS256", "typ": "JWT"},
                dict(claims_of(like), sub=name, iat=now - 5, nbf=now - 5,
                     exp=now + 600, jti=uuid.uuid4().hex), jwt_key(edge))
    return name, tok


def test_a_cached_caller_is_served_while_the_users_shard_is_down(
        cached_stack):
    """Proof that a hit makes no user.auth call: with every users-shard
    agent stopped, a cached caller's request that needs no users data is
    served by both workers, while a caller the edge does not know gets
    503 (it would need user.auth)."""
    agents, edge = cached_stack
    known = Client(edge).register_login(uname("k"))
    name = claims_of(known.token)["sub"]
    stranger, stranger_tok = unknown_account_token(agents, edge, known.token)
    users = [rid for (s, rid) in agents.http_ports if s == "users"]
    per_worker = connections_on_every_worker(edge)
    try:
        for rid in users:
            agents.kill("users", rid)
        for _ in range(3):
            for pid, conns in per_worker.items():
                for conn in conns:
                    st, body = call(conn, "GET",
                                    f"/calendars/{name}/events?{DAY}",
                                    known.token)
                    assert st == 200, (pid, body)
        st, body = call(per_worker[min(per_worker)][0], "GET",
                        f"/calendars/{stranger}/events?{DAY}", stranger_tok)
        assert st == 503, body
    finally:
        close_all(per_worker)
        for rid in users:
            agents.start("users", rid)
        agents.wait_for_leader("users")
    # the control: the stranger's token is good once the shard is back
    deadline = time.monotonic() + 15
    while True:
        r = Client(edge).req("GET", f"/calendars/{stranger}/events?{DAY}",
                             headers={"Authorization":
                                      f"Bearer {stranger_tok}"},
                             token=False)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200, r.text


# ---- a change behind the edge's back: bounded by the time to live -----------

def test_a_change_at_the_shard_is_noticed_within_the_ttl(cached_stack,
                                                          make_edge):
    """Through an edge with a 1 s cache: a password changed straight on
    the users shard (as another edge would) revokes the old token there
    once the entry expires, not before the shard is asked again."""
    agents, _ = cached_stack
    e = make_edge(topology=agents.topology)
    e.generate("--auth-cache-ttl", "1s", "--retry-budget", "2s")
    e.start()
    c = Client(e).register_login(uname("t"))
    name = claims_of(c.token)["sub"]
    path = f"/calendars/{name}/events?{DAY}"
    assert c.req("GET", path).status_code == 200
    st, ans = shard_op(agents, "users", False, "user.auth",
                       {"username": name})
    assert st == 200, ans
    st, ans = shard_op(agents, "users", True, "user.password",
                       {"username": name,
                        "password_hash": ans["user"]["password_hash"]})
    assert st == 200, ans
    changed = time.monotonic()
    while True:
        r = c.req("GET", path)
        if r.status_code != 200 or time.monotonic() - changed > 10:
            break
        time.sleep(0.1)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_token"
    # the time to live (1 s) and the polling, with room for a slow machine
    assert time.monotonic() - changed < 6


# ---- the directives ---------------------------------------------------------

def test_auth_cache_directives_are_generated_and_checked(make_edge):
    e = make_edge()
    e.generate()
    conf = e.conf.read_text()
    assert "agenda_auth_cache_ttl 2s;" in conf
    assert "agenda_auth_cache_size 1m;" in conf
    e.generate("--auth-cache-ttl", "0")
    assert "agenda_auth_cache_ttl 0;" in e.conf.read_text()
    r = e.check()
    assert r.returncode == 0, r.stderr
    for ttl, size, message in (
            ("2h", "1m", '"agenda_auth_cache_ttl" must be at most 1h'),
            ("2s", "1k", '"agenda_auth_cache_size" must be at least')):
        e.generate("--auth-cache-ttl", ttl, "--auth-cache-size", size)
        r = e.check()
        assert r.returncode != 0
        assert message in r.stderr, r.stderr
