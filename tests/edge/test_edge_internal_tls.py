"""The edge in front of agents whose links are all mutually authenticated
TLS (the topology's internal_tls): nginx calls each replica over HTTPS
with the edge's certificate and checks the replica's under its own name
(gen-nginx), and the public API works end to end through it, including a
write while events_am's leader is killed and the edge reconnects, over
TLS, to the new one."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from conftest import REPO, STACK_ARGS, TOPOLOGY, started_stack
from edge_client import Client, EventWriters, event_body, me, uname, unwrap


@pytest.fixture(scope="module")
def tls_stack(request, tls_dir):
    with started_stack(request, tls_dir, "itls", STACK_ARGS,
                       internal_tls=True) as s:
        yield s


def test_nginx_calls_every_replica_over_verified_tls(tls_stack):
    agents, edge = tls_stack
    conf = (edge.root / "nginx.conf").read_text()
    for (shard, rid) in agents.http_ports:
        block = re.search(r"location /_agenda/replica/%s/%d/ \{(.*?)\n        \}"
                          % (shard, rid), conf, re.S)
        assert block, (shard, rid)
        body = block.group(1)
        assert f"proxy_pass https://agenda_{shard}.{rid}/;" in body
        assert "proxy_ssl_verify on;" in body
        assert f"proxy_ssl_name {shard}-{rid}.{shard}.agenda;" in body
        assert "edge.pem" in body and "edge.key" in body
    assert "proxy_pass http://" not in conf


def test_the_api_works_through_tls_links(tls_stack):
    agents, edge = tls_stack
    resp, body, _, _ = edge.https("GET", "/api/v1/health")
    assert resp.status == 200, body
    alice = Client(edge).register_login(uname("a"))
    bob = Client(edge).register_login(uname("b"))
    cal = me(alice)
    r = alice.req("POST", f"/calendars/{cal}/events",
                  event_body(participants=[me(bob)]))
    assert r.status_code == 201, r.text
    ev = unwrap(r, "event")["id"]
    r = bob.req("GET", "/invitations?status=needs_action")
    assert r.status_code == 200, r.text
    assert ev in r.text


def test_failover_over_tls_links(tls_stack):
    agents, edge = tls_stack
    c = Client(edge).register_login(uname("k"))
    cal = me(c)
    leader = agents.wait_for_leader("events_am")
    with EventWriters(edge, c.token, cal, n=2, prefix="tls") as w:
        w.wait_for_acks(5)
        agents.kill("events_am", leader)
        agents.wait_for_leader("events_am", exclude=(leader,))
        w.wait_for_acks(10)
    w.check(c)


@pytest.mark.parametrize("case", ["missing", "readable-key", "override"])
def test_gen_nginx_checks_the_edge_certificate(make_edge, tmp_path, case):
    """Refused before nginx starts: a missing edge certificate, an edge key
    others can read, or --internal-tls-dir for agents that speak plain
    HTTP."""
    certs = tmp_path / "internal"
    topo = json.loads(TOPOLOGY.read_text())
    topo["internal_tls"] = {"dir": str(certs)}
    with_tls = tmp_path / "topology.json"
    with_tls.write_text(json.dumps(topo))
    subprocess.run([str(REPO / "config" / "dev-internal-certs"),
                    "--topology", str(with_tls)], check=True,
                   capture_output=True, timeout=120)
    if case == "missing":
        (certs / "edge.pem").unlink()
        e, args, expect = make_edge(with_tls), (), "edge.pem not found"
    elif case == "readable-key":
        os.chmod(certs / "edge.key", 0o644)
        e, args = make_edge(with_tls), ()
        expect = "edge.key is readable by group or others"
    else:
        e, args = make_edge(), ("--internal-tls-dir", str(certs))
        expect = "the topology has no internal_tls"
    with pytest.raises(subprocess.CalledProcessError) as err:
        e.generate(*args)
    assert expect in err.value.stderr, err.value.stderr
