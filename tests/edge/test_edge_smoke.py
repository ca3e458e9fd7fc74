"""Smoke tests of the edge: the packaged nginx loads ngx_http_agenda_module
(with the router library and jansson inside) and nchan from a configuration
made by config/gen-nginx, and serves /api/v1/health over TLS 1.2/1.3 only,
with HSTS, no version in Server and plain HTTP redirected to HTTPS.  A bad
topology stops nginx at configuration time with the router's message."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import ssl
import tempfile
import warnings
from pathlib import Path

import pytest

from conftest import REPO, TOPOLOGY, json_body
from edge_client import tls_socket

N_SHARDS = len(json.loads(TOPOLOGY.read_text())["shards"])


# ---- configuration ---------------------------------------------------------

def test_generated_config_passes_nginx_t_with_both_modules(make_edge):
    e = make_edge()
    e.generate()
    conf = e.conf.read_text()
    assert "ngx_nchan_module.so" in conf
    assert "ngx_http_agenda_module.so" in conf
    # dead clients' sockets are probed (their websockets hold cap slots)
    assert re.search(r"listen \S+ ssl .*so_keepalive=60s:10s:3;", conf)
    r = e.check()
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


def test_one_upstream_per_shard_with_keepalive(make_edge):
    e = make_edge()
    e.generate()
    conf = e.conf.read_text()
    topo = json.loads(TOPOLOGY.read_text())
    for s in topo["shards"]:
        m = re.search(r"upstream agenda_%s \{(.*?)\}" % s["name"], conf,
                      re.S)
        assert m, f"no upstream for {s['name']}"
        servers = re.findall(r"server (\S+);", m.group(1))
        assert servers == [f"127.0.0.1:{r['http_port']}"
                           for r in s["replicas"]]
        assert "keepalive 256;" in m.group(1)
        assert re.search(r"location /_agenda/shard/%s/ \{\s*internal;"
                         % s["name"], conf)
    # idle connections end on nginx's side first: the agents close theirs
    # after API_TIMEOUT_S, and a call sent on one they are closing fails
    agent_idle = int(re.search(
        r"#define API_TIMEOUT_S (\d+)",
        (REPO / "raft_agent" / "http_api.c").read_text()).group(1))
    blocks = re.findall(r"upstream agenda_[\w.]+ \{(.*?)\}", conf, re.S)
    assert len(blocks) > len(topo["shards"])
    for b in blocks:
        idle = re.search(r"keepalive_timeout (\d+)s;", b)
        assert idle and int(idle.group(1)) < agent_idle, b


def test_shard_and_replica_upstreams_never_share_a_name(make_edge,
                                                        tmp_path):
    """Replica 1 of events_am and a shard named events_am_1 once both
    became "upstream agenda_events_am_1", which nginx refuses."""
    topo = json.loads(TOPOLOGY.read_text())
    names = [s["name"] for s in topo["shards"]]
    assert "events_am" in names and "events_nz" in names
    for s in topo["shards"]:
        if s["name"] == "events_nz":
            s["name"] = "events_am_1"
    path = tmp_path / "close-names.json"
    path.write_text(json.dumps(topo))
    e = make_edge(topology=path)
    e.generate()
    r = e.check()
    assert r.returncode == 0, r.stderr


def test_host_addresses_place_named_agents(make_edge, tmp_path):
    """--host-address NAME=IP puts the address in the upstreams (the Swarm
    edge resolves the agents' names itself, docker/edge-entrypoint); other
    names stay; a pair that is not HOST=IP is refused."""
    topo = json.loads(TOPOLOGY.read_text())
    for server in topo["servers"]:
        server["host"] = f"{server['name']}.example"
    path = tmp_path / "named.json"
    path.write_text(json.dumps(topo))
    e = make_edge(topology=path)
    e.generate("--host-address", "server1.example=10.0.0.7",
               "--host-address", "SERVER2.example=::1")
    placed = {"server1": "10.0.0.7", "server2": "[::1]"}
    conf = e.conf.read_text()
    for shard in topo["shards"]:
        m = re.search(r"upstream agenda_%s \{(.*?)\}" % shard["name"], conf,
                      re.S)
        assert re.findall(r"server (\S+);", m.group(1)) == [
            f"{placed.get(r['server'], r['server'] + '.example')}:"
            f"{r['http_port']}" for r in shard["replicas"]]
    for bad in ("server1.example=not-an-ip", "=10.0.0.1",
                "server1.example", "bad!name=10.0.0.1"):
        with pytest.raises(subprocess.CalledProcessError) as err:
            e.generate("--host-address", bad)
        assert "--host-address" in err.value.stderr, bad


def mutate(topo: dict, how: str) -> dict:
    if how == "port":
        topo["shards"][1]["replicas"][2]["raft_port"] = 70000
    elif how == "gap":
        topo["shards"][1]["range"]["from"] = "o"
    elif how == "unknown_key":
        topo["shards"][0]["colour"] = "red"
    elif how == "two_users_shards":
        topo["shards"][2]["kind"] = "users"
    return topo


# The router's own messages, as config/README.md documents them.
BAD_TOPOLOGIES = [
    ("port", "shards[1].replicas[2].raft_port: must be 1..65535"),
    ("gap", 'shards[1].range.from: gap: keys from "n" (where shards[0] '
            'ends) to "o" have no shard; ranges must be contiguous'),
    ("unknown_key", "shards[0].colour: unknown key"),
    ("two_users_shards", 'shards[3].kind: a second shard of kind "users"'),
]


@pytest.mark.parametrize("how,message", BAD_TOPOLOGIES,
                         ids=[b[0] for b in BAD_TOPOLOGIES])
def test_bad_topology_fails_nginx_t_with_the_router_message(
        make_edge, tmp_path, how, message):
    bad = tmp_path / "topology.json"
    bad.write_text(json.dumps(mutate(json.loads(TOPOLOGY.read_text()), how)))
    e = make_edge(topology=bad)
    e.generate()
    r = e.check()
    assert r.returncode != 0
    assert "[emerg]" in r.stderr
    assert f"{bad}: {message}" in r.stderr, r.stderr
    assert "test failed" in r.stderr


def test_missing_topology_file_fails_nginx_t(make_edge, tmp_path):
    gone = tmp_path / "topology.json"
    gone.write_text(TOPOLOGY.read_text())
    e = make_edge(topology=gone)
    e.generate()
    gone.unlink()
    r = e.check()
    assert r.returncode != 0
    assert f"{gone}: No such file or directory" in r.stderr, r.stderr


@pytest.mark.parametrize("leeway,ok", [("5m", True), ("300s", True),
                                         ("0", True), ("301s", False),
                                         ("6m", False), ("9999", False)])
def test_jwt_leeway_nginx_would_refuse_is_refused_by_gen_nginx(
        make_edge, leeway, ok):
    """The module accepts a leeway of at most 300 s: gen-nginx must not
    write a configuration nginx will not start with."""
    e = make_edge()
    if not ok:
        with pytest.raises(subprocess.CalledProcessError) as err:
            e.generate("--jwt-leeway", leeway)
        assert "--jwt-leeway" in err.value.stderr
        return
    e.generate("--jwt-leeway", leeway)
    r = e.check()
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("budget,ok", [("60s", True), ("1m", True),
                                        ("60000ms", True), ("60", True),
                                        ("61s", False), ("2m", False),
                                        ("1h", False), ("120", False)])
def test_a_retry_budget_over_a_minute_is_refused(make_edge, budget, ok):
    """Shards remember a write's request id for five minutes: a retry
    begun later could apply the write again, so gen-nginx and the module
    (nginx -t) refuse a budget over 60 s."""
    e = make_edge()
    if ok:
        e.generate("--retry-budget", budget)
        r = e.check()
        assert r.returncode == 0, r.stderr
        return
    with pytest.raises(subprocess.CalledProcessError) as err:
        e.generate("--retry-budget", budget)
    assert "--retry-budget: at most 60s" in err.value.stderr
    e.generate()
    conf, n = re.subn(r"agenda_retry_budget \S+;",
                      f"agenda_retry_budget {budget};", e.conf.read_text())
    assert n == 1
    e.conf.write_text(conf)
    r = e.check()
    assert r.returncode != 0
    assert '"agenda_retry_budget" must be at most 60s' in r.stderr, r.stderr


def test_agenda_health_without_agenda_topology_fails_nginx_t(make_edge):
    e = make_edge()
    e.generate()
    conf = e.conf.read_text()
    conf, n = re.subn(r"^\s*agenda_topology .*$", "", conf, flags=re.M)
    assert n == 1
    e.conf.write_text(conf)
    r = e.check()
    assert r.returncode != 0
    assert re.search(r'"agenda_health" in \S+nginx\.conf:\d+ needs '
                     r'"agenda_topology" in the "http" block', r.stderr), \
        r.stderr


def test_agenda_subscriber_without_agenda_topology_fails_nginx_t(make_edge):
    """The notifications guard asks the users shard: alone in a
    configuration without a topology it would answer every subscription
    503, so nginx -t refuses it."""
    e = make_edge()
    e.generate()
    conf = e.conf.read_text()
    conf, n = re.subn(r"^\s*agenda_topology .*$", "", conf, flags=re.M)
    assert n == 1
    conf, n = re.subn(r"\bagenda_(api|health);", "return 404;", conf)
    assert n >= 2
    assert "agenda_subscriber;" in conf
    e.conf.write_text(conf)
    r = e.check()
    assert r.returncode != 0
    assert re.search(r'"agenda_subscriber" in \S+nginx\.conf:\d+ needs '
                     r'"agenda_topology" in the "http" block', r.stderr), \
        r.stderr


def test_agenda_topology_twice_is_refused(make_edge):
    e = make_edge()
    e.generate()
    conf = e.conf.read_text()
    line = re.search(r"^\s*agenda_topology .*$", conf, re.M).group(0)
    e.conf.write_text(conf.replace(line, line + "\n" + line))
    r = e.check()
    assert r.returncode != 0
    assert '"agenda_topology" directive is duplicate' in r.stderr, r.stderr


# ---- HTTPS ---------------------------------------------------------------

@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2,
                                     ssl.TLSVersion.TLSv1_3],
                         ids=["TLSv1.2", "TLSv1.3"])
def test_health_over_tls(edge, version):
    resp, data, got_version, cipher = edge.https(
        "GET", "/api/v1/health", ctx=edge.tls_context(version))
    assert got_version == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                           ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/json"
    assert json_body(data) == {"status": "ok", "shards": N_SHARDS}
    assert int(resp.getheader("Content-Length")) == len(data)
    if version == ssl.TLSVersion.TLSv1_2:
        # Mozilla intermediate: forward secrecy and AEAD only
        assert cipher.startswith(("ECDHE-", "DHE-")), cipher
        assert "GCM" in cipher or "CHACHA20" in cipher, cipher


def test_health_head_has_headers_and_no_body(edge):
    resp, data, _, _ = edge.https("HEAD", "/api/v1/health")
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/json"
    assert data == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_health_refuses_other_methods_with_json_405(edge, method):
    resp, data, _, _ = edge.https(method, "/api/v1/health", body=b"{}",
                                  headers={"Content-Type":
                                           "application/json"})
    assert resp.status == 405
    assert resp.getheader("Allow") == "GET, HEAD"
    assert resp.getheader("Content-Type") == "application/json"
    assert json_body(data)["error"]["code"] == "method_not_allowed"


# path -> status: what the outside can and cannot reach
REACH = [
    ("/api/v1/health", 200),
    ("/api/v1/no-such-thing", 404),
    ("/_agenda/shard/users/v1/queries", 404),  # internal: subrequests only
    ("/", 200),                                # the web client (ui/)
    ("/no-such-file.js", 404),
]


@pytest.mark.parametrize("path,status", REACH, ids=[r[0] for r in REACH])
def test_security_headers_on_every_answer(edge, path, status):
    resp, data, _, _ = edge.https("GET", path)
    assert resp.status == status
    assert resp.getheader("Strict-Transport-Security") == "max-age=63072000"
    assert resp.getheader("X-Content-Type-Options") == "nosniff"
    assert resp.getheader("Server") == "nginx"  # server_tokens off
    assert b"nginx/" not in data


def test_unknown_api_path_answers_json_404(edge):
    resp, data, _, _ = edge.https("GET", "/api/v1/no-such-thing")
    assert resp.status == 404
    assert resp.getheader("Content-Type") == "application/json"
    assert json_body(data)["error"]["code"] == "not_found"


# ---- what is refused -----------------------------------------------------

def _legacy_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client willing to speak an old protocol (security level 0 lifts
    OpenSSL's own TLS 1.2 floor), so a failure is the server's refusal."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            return t.version()


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    OLD_VERSIONS = [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1]


@pytest.mark.parametrize("version", OLD_VERSIONS, ids=["TLSv1.0", "TLSv1.1"])
def test_tls_below_1_2_is_refused_by_the_server(edge, version):
    with pytest.raises(ssl.SSLError) as exc:
        _handshake(edge.https_port, _legacy_context(version))
    # The server's protocol_version alert: the client did offer it.
    assert exc.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", exc.value


@pytest.mark.parametrize("cipher", ["AES128-SHA", "AES256-GCM-SHA384",
                                    "ECDHE-ECDSA-AES128-SHA"])
def test_weak_or_non_forward_secret_tls12_ciphers_are_refused(edge, cipher):
    ctx = _legacy_context(ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(cipher + ":@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as exc:
        _handshake(edge.https_port, ctx)
    assert exc.value.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE", exc.value


@pytest.mark.parametrize("path", ["/api/v1/health",
                                  "/api/v1/health?verbose=1",
                                  "/somewhere/else"])
def test_plain_http_redirects_to_https(edge, path):
    resp, data = edge.http("GET", path)
    assert resp.status in (301, 308)
    assert resp.getheader("Location") == \
        f"https://127.0.0.1:{edge.https_port}{path}"
    assert resp.getheader("Server") == "nginx"
    assert b"nginx/" not in data


def test_nginx_stops_on_sigterm_from_the_harness(make_edge):
    e = make_edge()
    e.generate()
    e.start()
    pid = e.proc.pid
    e.stop()
    assert not Path(f"/proc/{pid}").exists()  # exited and reaped
    assert not e._listening(e.https_port)
    assert not e._listening(e.http_port)


# ---- a checkout the workers cannot enter -------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="workers change user only "
                    "when the master is root")
def test_web_client_under_a_private_directory_is_served(make_edge, tmp_path):
    """Debian's /root is 0700: nginx's workers (nobody) cannot read a
    checkout there.  gen-nginx then serves the web client (and keeps the
    temporary files) in a root-owned directory under /tmp."""
    hidden = tmp_path / "home"
    hidden.mkdir(mode=0o700)
    shutil.copytree(REPO / "ui", hidden / "ui")
    e = make_edge()
    stage = None
    try:
        e.generate("--ui-dir", str(hidden / "ui"))
        conf = e.conf.read_text()
        m = re.search(r"location / \{\s*root \"?([^\";]+)\"?;", conf)
        assert m, conf
        root = m.group(1)
        stage = Path(root).parent
        assert root.startswith(tempfile.gettempdir() + "/agenda-edge-"), root
        assert str(hidden) not in conf.split("location / {")[1].split("}")[0]
        e.start()
        resp, data, _, _ = e.https("GET", "/")
        assert resp.status == 200
        assert data == (hidden / "ui" / "index.html").read_bytes()
    finally:
        e.stop()  # its temporary files live in the stage
        if stage is not None and stage.name.startswith("agenda-edge-"):
            shutil.rmtree(stage, ignore_errors=True)


# ---- clients that stall -----------------------------------------------------

def _read_until_closed(sock) -> bytes:
    """Everything the server sends until it closes; a reset counts as a
    close (reset_timedout_connection).  A server that never closes makes
    the socket's own timeout raise."""
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, ssl.SSLEOFError):
            return data
        if not chunk:
            return data
        data += chunk


@pytest.mark.parametrize("stall", ["header", "body"])
def test_a_client_that_stalls_is_dropped_after_the_client_timeout(
        make_edge, stall):
    """Slowloris: a request whose headers or body stop arriving holds a
    connection only for --client-timeout (here 1 s), then nginx drops it.
    The socket's 4 s timeout is the failure (the default would be 10 s)."""
    e = make_edge()
    e.generate("--client-timeout", "1s")
    e.start()
    with tls_socket(e, timeout=4) as s:
        if stall == "header":
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n")
        else:
            s.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\n"
                      b"Host: localhost\r\n"
                      b"Content-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"username\":")
        answer = _read_until_closed(s)
    # dropped without an answer (a refusal of the request itself would
    # have been a JSON 4xx)
    assert answer == b"", answer[:200]


def test_resume_age_fits_in_nchans_message_timeout(make_edge):
    """ngx_agenda_resume.c passes a message id on only while the channel's
    newest message has some life left (nchan aborts on ids of channels
    that emptied): its limit must stay below nchan_message_timeout."""
    e = make_edge()
    e.generate()
    conf = e.conf.read_text()
    timeout = re.search(r"nchan_message_timeout (\d+)m;", conf)
    assert timeout
    age = int(re.search(
        r"#define NGX_HTTP_AGENDA_RESUME_MAX_AGE\s+(\d+)",
        (REPO / "ngx_agenda_module" / "ngx_agenda_resume.c").read_text())
        .group(1))
    assert age + 30 <= int(timeout.group(1)) * 60
    assert "nchan_subscriber_last_message_id $agenda_last_event_id;" in conf


def test_a_missing_zoneinfo_directory_fails_nginx_t(make_edge, tmp_path):
    """Without a tz database the edge cannot place all-day events in their
    time zones: nginx -t says so instead of starting wrong."""
    e = make_edge()
    e.generate("--zoneinfo", str(tmp_path / "no-zoneinfo"))
    r = e.check()
    assert r.returncode != 0
    assert "[emerg]" in r.stderr
    assert (f"cannot open the zoneinfo directory {tmp_path}/no-zoneinfo: "
            "No such file or directory") in r.stderr, r.stderr


def test_zones_without_a_usable_file_are_named_in_a_warning(make_edge,
                                                            tmp_path):
    """A directory holding some zones (one of them a broken file) starts,
    and says how many zones will count in UTC days."""
    zi = tmp_path / "zoneinfo"
    (zi / "Europe").mkdir(parents=True)
    (zi / "Europe" / "Madrid").write_bytes(
        Path("/usr/share/zoneinfo/Europe/Madrid").read_bytes())
    (zi / "UTC").write_bytes(b"TZif2 but not really")
    e = make_edge()
    e.generate("--zoneinfo", str(zi))
    r = e.check()
    assert r.returncode == 0, r.stderr
    m = re.search(r"\[warn\].* (\d+) time zones have no usable file in "
                  + re.escape(str(zi)), r.stderr)
    assert m, r.stderr
    from_names = sum(1 for line in
                     (REPO / "raft_agent/agenda/tz_names.c").read_text()
                     .splitlines() if re.match(r'^    "[^"]+",$', line))
    assert int(m.group(1)) == from_names - 1
