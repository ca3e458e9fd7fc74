"""Internal links over mutually authenticated TLS ("internal_tls" in the
topology, raft_agent/tls.h).

A shard elects, replicates and answers with every link in TLS, with the
certificates of config/dev-internal-certs.  The HTTP API refuses clients
without a certificate from the internal CA (plain HTTP, no certificate,
another CA) and keeps serving; its own certificate verifies against the CA
under the replica's name and no other.  Only the edge and the replica
itself may call that API: another replica's certificate is refused in
the handshake.
A client resumes its TLS session on a new connection (as nginx does).  A
replica that shows another replica's certificate, or one from another CA,
never joins: its peers refuse its links and it applies nothing while the
others commit.
"""
from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time

import pytest
import requests

from conftest import AGENT, DEV_INTERNAL_CERTS, REPO, Client


def test_a_shard_replicates_over_mutual_tls(cluster_factory):
    c = cluster_factory(internal_tls=True)
    leader = c.start_all()
    cl = Client(c)
    ack = cl.put("over-tls", b"sealed")
    assert ack.index > 0
    for rid in c.ids:   # every follower applies it, so replication works
        deadline = time.monotonic() + 10
        while True:
            r = c.http(rid, "GET", "/kv/over-tls",
                       params={"consistency": "stale"})
            if r.status_code == 200:
                assert r.content == b"sealed"
                break
            assert time.monotonic() < deadline, f"node {rid}: {r.status_code}"
            time.sleep(0.05)
    check = subprocess.run([str(AGENT), "--config", str(c.agent_config(leader)),
                            "--check"], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, check.stderr
    assert f"internal_tls {c.tls_dir}\n" in check.stdout


def tls_context(c, cert: str | None = "edge", ca_dir=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str((ca_dir or c.tls_dir) /
                                                "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(c.tls_dir / f"{cert}.pem"),
                            str(c.tls_dir / f"{cert}.key"))
    return ctx


def handshake(c, port: int, ctx: ssl.SSLContext, name: str) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            return s.getpeercert()


def test_the_api_wants_a_client_certificate_from_the_internal_ca(
        cluster_factory, tmp_path):
    c = cluster_factory(internal_tls=True)
    c.start_all()
    rep = c.replicas[1]
    url = f"https://{rep.addr}/status"

    with pytest.raises(requests.RequestException):   # plain HTTP
        requests.get(f"http://{rep.addr}/status", timeout=3)
    anonymous = c.new_session()        # trusts the CA, shows nothing
    anonymous.cert = None
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError too
        anonymous.get(url, timeout=3)
    other = tmp_path / "other-ca"
    subprocess.run([str(DEV_INTERNAL_CERTS), "--topology",
                    str(c.topology_path), str(other)], check=True,
                   capture_output=True, timeout=120)
    stranger = c.new_session()         # another CA's client certificate
    stranger.cert = (str(other / "edge.pem"), str(other / "edge.key"))
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError too
        stranger.get(url, timeout=3)
    assert c.new_session().get(url, timeout=3).status_code == 200
    # another replica's certificate, from the same CA, may not speak for
    # users: only the edge's and the replica's own (its health check),
    # checked in the handshake
    def as_replica(name):
        s = c.new_session()
        s.cert = (str(c.tls_dir / f"{name}.pem"),
                  str(c.tls_dir / f"{name}.key"))
        return s
    with pytest.raises(requests.exceptions.ConnectionError):
        as_replica("events_am-node2").get(url, timeout=3)
    assert as_replica("events_am-node1").get(url, timeout=3).status_code \
        == 200

    # its certificate is the CA's, for this replica's name only
    name = "node1.events_am.agenda"
    cert = handshake(c, rep.http_port, tls_context(c), name)
    assert ("DNS", name) in cert["subjectAltName"]
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(c, rep.http_port, tls_context(c), "node2.events_am.agenda")
    with pytest.raises(ssl.SSLCertVerificationError):   # not other's CA
        handshake(c, rep.http_port, tls_context(c, ca_dir=other), name)
    # the Raft port too, and the replicas' own certificates open it
    cert = handshake(c, rep.raft_port, tls_context(c, "events_am-node2"),
                     name)
    assert ("DNS", name) in cert["subjectAltName"]

    assert c.status(1)["healthy"], "the agent stopped serving"


@pytest.mark.parametrize("impostor", ["another-replica", "another-ca"])
def test_a_replica_without_its_own_certificate_never_joins(
        cluster_factory, tmp_path, impostor):
    c = cluster_factory(internal_tls=True)
    mine = c.tls_dir / "events_am-node3"
    if impostor == "another-replica":
        source = c.tls_dir / "events_am-node2"
        expect = "certificate does not name node3.events_am.agenda"
    else:
        other = tmp_path / "other-ca"
        subprocess.run([str(DEV_INTERNAL_CERTS), "--topology",
                        str(c.topology_path), str(other)], check=True,
                       capture_output=True, timeout=120)
        source = other / "events_am-node3"
        expect = "certificate verify failed"
    for ext in (".pem", ".key"):
        shutil.copyfile(f"{source}{ext}", f"{mine}{ext}")

    for rid in (1, 2):
        c.start(rid)
    c.wait_http([1, 2])
    c.wait_for_leader(among=[1, 2])
    c.start(3)
    for i in range(20):
        Client(c, nodes=[1, 2]).put(f"k{i}", b"v")
    deadline = time.monotonic() + 10
    while True:             # the impostor keeps trying; wait for a refusal
        logs = c.log_tail(1, 400) + c.log_tail(2, 400)
        if expect in logs or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert expect in logs, logs[-3000:]
    assert c.running(3), "the impostor is expected to run, alone"
    applied = {rid: c.status(rid)["applied_index"] for rid in (1, 2)}
    assert min(applied.values()) >= 20, applied
    if impostor == "another-replica":   # its API is still the CA's
        st = c.status(3)
        assert st["applied_index"] == 0 and st["leader_id"] == 0, st


def test_a_client_resumes_its_session_on_a_new_connection(cluster_factory):
    """nginx reuses TLS sessions (proxy_ssl_session_reuse) whenever it
    opens another connection to an agent: with client certificates
    required, a server without a session id context fails that handshake,
    so every connection after the first would fail."""
    c = cluster_factory(internal_tls=True)
    c.start_all()
    rep = c.replicas[2]
    ctx = tls_context(c)
    name = "node2.events_am.agenda"
    session = None
    reused = []
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", rep.http_port),
                                      timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=name,
                                 session=session) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
                reused.append(s.session_reused)
                session = s.session   # a TLS 1.3 ticket arrives with data
    assert reused[0] is False and all(reused[1:]), reused


def test_a_raft_session_resumed_on_the_api_is_refused(cluster_factory):
    """The Raft port takes any replica's certificate (its HELLO then names
    which); the API takes the edge's and the replica's own only.  A
    session another replica got from the Raft port must not resume on the
    API, where it would skip the certificate's check and let that replica
    act for any user it names."""
    c = cluster_factory(internal_tls=True)
    c.start_all()
    rep = c.replicas[1]
    name = "node1.events_am.agenda"
    ctx = tls_context(c, "events_am-node2")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2    # the session at once
    with socket.create_connection(("127.0.0.1", rep.raft_port),
                                  timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            session = s.session
    with socket.create_connection(("127.0.0.1", rep.raft_port),
                                  timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=name,
                             session=session) as s:
            assert s.session_reused     # the attempt below is a real one
    answer = b""
    try:
        with socket.create_connection(("127.0.0.1", rep.http_port),
                                      timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=name,
                                 session=session) as s:
                s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                while chunk := s.recv(4096):
                    answer += chunk
    except (ssl.SSLError, OSError):
        pass                            # refused in the handshake
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert c.new_session().get(f"https://{rep.addr}/status",
                               timeout=3).status_code == 200


def test_a_peer_that_accepts_but_never_answers_the_handshake_is_retried(
        cluster_factory):
    """A host that froze after its kernel accepted the connection (or a
    partition right after connect): the TLS handshake waits for an answer
    with nothing to write, so the write timeout never fires.  The
    handshake is bounded too, and the link is retried: the real replica,
    back on that port while the silent connection stays open, catches
    up."""
    c = cluster_factory(internal_tls=True)
    c.start_all()
    leader = c.wait_for_leader()
    f1, f2 = c.others(leader)
    assert c.stop(f2) == 0
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", c.replicas[f2].raft_port))
    silent.listen(16)
    held = []
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not held:
            silent.settimeout(0.2)
            try:
                held.append(silent.accept()[0])   # and never answer
            except socket.timeout:
                pass
        assert held, "the leader never dialled the stopped replica's port"
        silent.close()      # the accepted connections stay, silent
        Client(c, nodes=[leader, f1]).put("while-silent", b"v")
        c.start(f2)
        c.wait_http([f2])
        Client(c, nodes=[leader, f1]).put("after-silent", b"w")
        c.wait_converged(timeout=20)
        r = c.http(f2, "GET", "/kv/after-silent",
                   params={"consistency": "stale"})
        assert r.status_code == 200 and r.content == b"w", r.text
    finally:
        silent.close()
        for h in held:
            h.close()


def test_dev_internal_certs_keeps_repairs_and_refuses(tmp_path):
    """Run twice, it keeps what is valid; a key that no longer matches its
    certificate (an interrupted run) is issued again; a topology where two
    replicas would share a file is refused."""
    topo = json.loads((REPO / "config" / "topology.json").read_text())
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(topo))
    d = tmp_path / "certs"

    def run(topology=path):
        return subprocess.run([str(DEV_INTERNAL_CERTS), "--topology",
                               str(topology), str(d)],
                              capture_output=True, text=True, timeout=120)

    assert run().returncode == 0
    again = run()
    assert again.returncode == 0 and again.stdout == "", again.stdout
    shutil.copyfile(d / "users-node4.key", d / "users-node1.key")
    repaired = run()
    assert repaired.stdout.split("wrote ")[1].split(" in ")[0].split() == \
        ["users-node1.pem", "users-node1.key"], repaired.stdout
    check = subprocess.run(["openssl", "x509", "-in", str(d / "users-node1.pem"),
                            "-noout", "-pubkey"], capture_output=True,
                           text=True, check=True).stdout
    key = subprocess.run(["openssl", "pkey", "-in",
                          str(d / "users-node1.key"), "-pubout"],
                         capture_output=True, text=True, check=True).stdout
    assert check == key

    topo["shards"][0]["name"] = "a-b"
    topo["shards"][0]["replicas"][0]["name"] = "c"
    topo["shards"][1]["name"] = "a"
    topo["shards"][1]["replicas"][0]["name"] = "b-c"
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps(topo))
    r = run(clash)
    assert r.returncode != 0 and "would both use a-b-c.pem" in r.stderr, \
        r.stderr
