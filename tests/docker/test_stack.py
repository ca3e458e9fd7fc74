"""The Docker Swarm stack, deployed for real (make test-stack).

The images are built (docker/build-images), the stack is generated from
the repository's topology with internal TLS added (docker/gen-stack,
certificates from config/dev-internal-certs as secrets) and deployed on
this machine's Docker engine as a one-node swarm whose node carries every
placement label.  Then, through the published HTTPS port of the edge
container: the API works end to end, and the edge reaches the agents only
over verified TLS; the events_am leader's container
is killed (SIGKILL) while clients create events: no request fails, none is
applied twice, every acknowledged event is readable, and Swarm starts the
replica again on its own volume, where it catches up as a follower; and a
notification subscriber loses nothing when the edge reloads nginx for a
replica that came back at another address.

The fixture starts only what is missing (a swarm, the node's labels) and
takes back exactly that; the stack, its volumes and its networks are
removed even when a test fails.  It needs a running Docker engine: the
target says how to get one (docker/README.md).
"""
from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "edge"))
import websocket  # noqa: E402  (Debian python3-websocket)
from edge_client import (Client, EventWriters, event_body, me,  # noqa: E402
                         uname, unwrap, ws_connect, ws_meta_message)

TAG = "stacktest"
TOPOLOGY = json.loads((REPO / "config" / "topology.json").read_text())


def docker(*args: str, check: bool = True, timeout: float = 120
           ) -> subprocess.CompletedProcess:
    r = subprocess.run(["docker", *args], capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {r.stderr.strip()}")
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def advertise_addr() -> str:
    r = subprocess.run(["ip", "-4", "route", "get", "1.1.1.1"],
                       capture_output=True, text=True, check=True)
    words = r.stdout.split()
    return words[words.index("src") + 1]


class Stack:
    def __init__(self, name: str, root: Path, https_port: int,
                 http_port: int):
        self.name, self.root = name, root
        self.https_port, self.http_port = https_port, http_port
        self.tls_dir = root / "tls"       # what edge_client.Client reads

    def container(self, service: str) -> str:
        """The running container of a service ('' while there is none)."""
        r = docker("ps", "-q", "--filter",
                   f"label=com.docker.swarm.service.name={self.name}_{service}")
        ids = r.stdout.split()
        return ids[0] if ids else ""

    def status(self, shard: str, replica: dict) -> dict | None:
        """The replica's /status, asked in its container with its own
        certificate, checking its server's under its name."""
        cid = self.container(service_of(shard, replica["name"]))
        if not cid:
            return None
        base = f"/run/secrets/{shard}-{replica['name']}"
        name = f"{replica['name']}.{shard}.agenda"
        port = replica["http_port"]
        r = docker("exec", cid, "curl", "-s", "--max-time", "2",
                   "--cacert", "/run/secrets/ca.pem", "--cert",
                   f"{base}.pem", "--key", f"{base}.key", "--resolve",
                   f"{name}:{port}:127.0.0.1", f"https://{name}:{port}/status",
                   check=False, timeout=10)
        try:
            return json.loads(r.stdout) if r.returncode == 0 else None
        except json.JSONDecodeError:
            return None

    def leader(self, shard: str, exclude: tuple = (),
               timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rep in shard_of(shard)["replicas"]:
                st = self.status(shard, rep)
                if st and st["role"] == "leader" and \
                        rep["name"] not in exclude:
                    return rep
            time.sleep(0.3)
        raise AssertionError(f"{shard}: no leader within {timeout}s")


def shard_of(name: str) -> dict:
    return next(s for s in TOPOLOGY["shards"] if s["name"] == name)


def service_of(shard: str, replica: str) -> str:
    return f"{shard}-{replica}".replace("_", "-").lower()


def wait_healthy(stack: Stack, timeout: float = 180) -> None:
    url = f"https://127.0.0.1:{stack.https_port}/api/v1/health"
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            r = requests.get(url, verify=str(stack.tls_dir / "ca.pem"),
                             timeout=3)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text}"
        except requests.RequestException as e:
            last = repr(e)
        time.sleep(1)
    ps = docker("stack", "ps", "--no-trunc", stack.name, check=False).stdout
    raise AssertionError(f"the stack is not healthy after {timeout}s: "
                         f"{last}\n{ps}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if docker("info", check=False).returncode != 0:
        pytest.fail("no Docker engine answers: install docker.io and start "
                    "dockerd (docker/README.md)")
    undo: list[list[str]] = []
    root = tmp_path_factory.mktemp("stack")
    st = Stack(f"agenda-t{secrets.token_hex(3)}", root, free_port(),
               free_port())
    try:
        state = docker("info", "--format",
                       "{{.Swarm.LocalNodeState}}").stdout.strip()
        if state == "inactive":
            had_bridge = docker("network", "inspect", "docker_gwbridge",
                                check=False).returncode == 0
            docker("swarm", "init", "--advertise-addr", advertise_addr())
            undo.append(["swarm", "leave", "--force"])
            if not had_bridge:   # made by swarm init, kept by leave
                undo.append(["network", "rm", "docker_gwbridge"])
        node = docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
        labels = json.loads(docker("node", "inspect", "--format",
                                   "{{json .Spec.Labels}}", node).stdout)
        wanted = [f"agenda.server.{s['name']}" for s in TOPOLOGY["servers"]]
        for label in wanted + ["agenda.edge"]:
            if label not in labels:
                docker("node", "update", "--label-add", f"{label}=true", node)
                undo.insert(0, ["node", "update", "--label-rm", label, node])

        subprocess.run([str(REPO / "config" / "dev-certs"), str(st.tls_dir)],
                       check=True, capture_output=True, timeout=120)
        topology = root / "topology.json"
        topology.write_text(json.dumps(
            dict(TOPOLOGY, internal_tls={"dir": str(root / "internal")})))
        subprocess.run([str(REPO / "config" / "dev-internal-certs"),
                        "--topology", str(topology)],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([str(REPO / "docker" / "build-images"), "--tag", TAG],
                       check=True, timeout=1800)
        gen = subprocess.run(
            ["/usr/bin/python3", str(REPO / "docker" / "gen-stack"),
             "--out", str(root / "out"), "--tls-dir", str(st.tls_dir),
             "--topology", str(topology),
             "--tag", TAG, "--https-port", str(st.https_port),
             "--http-port", str(st.http_port)],
            capture_output=True, text=True, timeout=60)
        assert gen.returncode == 0, gen.stderr
        undo.insert(0, ["stack", "rm", st.name])
        docker("stack", "deploy", "-c", str(root / "out" / "stack.yml"),
               st.name)
        wait_healthy(st)
        settled_reloads(st)
        yield st
    finally:
        for cmd in undo:
            docker(*cmd, check=False)
            if cmd[:2] == ["stack", "rm"]:
                remove_leftovers(st.name)


def remove_leftovers(name: str, timeout: float = 90) -> None:
    """stack rm returns before the containers are gone, and keeps the
    volumes: wait, then remove the stack's volumes and networks."""
    label = f"label=com.docker.stack.namespace={name}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not docker("ps", "-aq", "--filter", label,
                      check=False).stdout.split():
            break
        time.sleep(1)
    for _ in range(30):
        vols = docker("volume", "ls", "-q", "--filter", label,
                      check=False).stdout.split()
        nets = docker("network", "ls", "-q", "--filter", label,
                      check=False).stdout.split()
        if not vols and not nets:
            return
        if vols:
            docker("volume", "rm", *vols, check=False)
        if nets:
            docker("network", "rm", *nets, check=False)
        time.sleep(1)


def test_the_stack_serves_the_api_over_https(stack):
    r = requests.get(f"https://127.0.0.1:{stack.https_port}/api/v1/health",
                     verify=str(stack.tls_dir / "ca.pem"), timeout=5)
    assert r.json() == {"status": "ok", "shards": len(TOPOLOGY["shards"])}
    r = requests.get(f"http://127.0.0.1:{stack.http_port}/x",
                     allow_redirects=False, timeout=5)
    assert r.status_code == 301
    assert r.headers["Location"] == \
        f"https://127.0.0.1:{stack.https_port}/x"   # the Host asked for
    page = requests.get(f"https://127.0.0.1:{stack.https_port}/",
                        verify=str(stack.tls_dir / "ca.pem"), timeout=5)
    assert page.status_code == 200 and "<html" in page.text.lower()

    alice = Client(stack).register_login(uname("a"))
    cal = me(alice)
    r = alice.req("POST", f"/calendars/{cal}/events",
                  event_body(title="in the swarm"))
    assert r.status_code == 201, r.text
    made = unwrap(r, "event")
    r = alice.req("GET", "/agenda?from=2026-12-01T00:00:00Z"
                         "&to=2026-12-02T00:00:00Z")
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()["events"]] == [made["id"]]
    # another user reaches none of it
    bob = Client(stack).register_login(uname("b"))
    r = bob.req("GET", f"/calendars/{cal}/events/{made['id']}")
    assert r.status_code in (403, 404), r.text


def test_the_edge_reaches_the_agents_only_over_verified_tls(stack):
    edge = stack.container("edge")
    conf = docker("exec", edge, "cat",
                  "/var/lib/agenda-edge/nginx.conf").stdout
    n = sum(len(s["replicas"]) for s in TOPOLOGY["shards"])
    assert conf.count("proxy_ssl_verify on;") == n
    assert "proxy_pass http://" not in conf
    rep = shard_of("users")["replicas"][0]
    url = f"{service_of('users', rep['name'])}:{rep['http_port']}/status"
    # the edge's own certificate opens it: the agent is there and answers
    edge_cert = ["--cert", "/run/secrets/edge.pem", "--key",
                 "/run/secrets/edge.key"]
    ok = docker("exec", edge, "curl", "-sS", "--max-time", "3", "-k",
                *edge_cert, f"https://{url}", check=False)
    assert ok.returncode == 0 and '"role"' in ok.stdout, ok.stderr
    # curl 52: the server answered nothing an HTTP client understands
    plain = docker("exec", edge, "curl", "-sS", "--max-time", "3",
                   f"http://{url}", check=False)
    assert plain.returncode == 52, (plain.returncode, plain.stderr)
    # refused in or right after the handshake (TLS 1.3 sends the alert
    # after it): curl 35, 55 or 56, never 6/7 (no name, no connection)
    anonymous = docker("exec", edge, "curl", "-sS", "--max-time", "3",
                       "-k", f"https://{url}", check=False)
    assert anonymous.returncode in (35, 55, 56), \
        (anonymous.returncode, anonymous.stderr)


def test_kill_the_leader_container_while_creating_events(stack):
    """SIGKILL of the container running events_am's leader: the edge
    follows the new leader within its retry budget, and Swarm starts the
    replica again on its volume."""
    c = Client(stack).register_login(uname("k"))   # 'k' -> events_am
    cal = me(c)
    assert cal < "n"
    leader = stack.leader("events_am")
    service = service_of("events_am", leader["name"])
    old_container = stack.container(service)
    before = stack.status("events_am", leader)

    with EventWriters(stack, c.token, cal, prefix="swarm") as w:
        time.sleep(1.5)
        docker("kill", "--signal", "KILL", old_container)
        t0 = time.monotonic()
        new = stack.leader("events_am", exclude=(leader["name"],))
        elected = time.monotonic() - t0
        time.sleep(2.0)
    print(f"{new['name']} leads after {elected:.2f}s; {len(w.acked)} acked")
    assert len(w.acked) > 10
    w.check(c)

    # Swarm runs the replica again, in a new container on the same named
    # volume, and it catches up with the leader as a follower.
    deadline = time.monotonic() + 90
    st, cid = None, ""
    while time.monotonic() < deadline:
        cid = stack.container(service)
        st = stack.status("events_am", leader) if cid and \
            cid != old_container else None
        lead = stack.status("events_am", new)
        if st and lead and st["role"] == "follower" and \
                st["applied_index"] >= lead["commit_index"] - 5 and \
                st["applied_index"] > before["applied_index"]:
            break
        time.sleep(1)
    else:
        pytest.fail(f"{service} did not come back and catch up: {st}")
    assert volumes_of(cid) == volumes_of(old_container) == \
        [f"{stack.name}_data-{service}"]


def edge_conf(stack: Stack) -> str:
    return docker("exec", stack.container("edge"), "cat",
                  "/var/lib/agenda-edge/nginx.conf", check=False).stdout


def address_of(container: str) -> str:
    """The container's address on the api-network (where the edge calls
    it)."""
    nets = json.loads(docker("inspect", "--format",
                             "{{json .NetworkSettings.Networks}}",
                             container).stdout)
    return next(v["IPAddress"] for k, v in nets.items()
                if k.endswith("_api-network"))


def settled_reloads(stack: Stack, quiet: float = 6.0,
                    timeout: float = 120, absent=()) -> int:
    """The edge's reload count once every service but `absent` runs and no
    reload came for `quiet` seconds: the edge calls the agents where they
    are (an earlier restart may still be settling; a request already in a
    worker keeps that worker's addresses until it ends)."""
    deadline = time.monotonic() + timeout
    count, since = edge_reloads(stack), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the stack never settled"
        time.sleep(1)
        running = all(stack.container(service_of(s["name"], r["name"]))
                      for s in TOPOLOGY["shards"] for r in s["replicas"]
                      if service_of(s["name"], r["name"]) not in absent)
        now = edge_reloads(stack)
        if now != count or not running:
            count, since = now, time.monotonic()
    return count


def edge_reloads(stack: Stack) -> int:
    r = docker("service", "logs", f"{stack.name}_edge", check=False)
    return (r.stdout + r.stderr).count("addresses changed; reloading nginx")


META = ["ws+meta.nchan"]   # nchan frames every message with its id


def invitation(ws, event_id: str, timeout: float = 10) -> str | None:
    """The id of the invitation.created message for event_id, or None if
    the edge closed the connection first."""
    ws.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = ws.recv()
        except websocket.WebSocketConnectionClosedException:
            return None
        except websocket.WebSocketTimeoutException:
            break
        if not frame:                      # a close frame
            return None
        msg_id, msg = ws_meta_message(frame)
        if msg.get("type") == "invitation.created" and \
                msg.get("id") == event_id:
            return msg_id
    pytest.fail(f"no invitation.created for {event_id}")


def test_notifications_go_on_across_the_edge_reload(stack):
    """A replica that Swarm starts again comes back at another address, and
    the edge reloads nginx for it.  A subscriber connected after the reload
    gets its invitations; one connected before either keeps getting them
    or, if its old worker closes it, reconnects from the id of its last
    message and gets what it missed: nothing is lost."""
    alice = Client(stack).register_login(uname("a"))
    bob = Client(stack).register_login(uname("b"))
    cal, bob_name = me(alice), me(bob)
    query = f"access_token={bob.token}"

    def invite() -> str:
        r = alice.req("POST", f"/calendars/{cal}/events",
                      event_body(participants=[bob_name]))
        assert r.status_code == 201, r.text
        return unwrap(r, "event")["id"]

    before = ws_connect(stack, query, subprotocols=META)
    try:
        time.sleep(0.3)
        last = invitation(before, invite())
        assert last, "the first invitation did not arrive"

        reloads = settled_reloads(stack)
        follower = next(r for r in shard_of("users")["replicas"]
                        if r["name"] != stack.leader("users")["name"])
        service = service_of("users", follower["name"])
        old = stack.container(service)
        docker("kill", "--signal", "KILL", old)
        # the reload for this replica's new address, not a late one of an
        # earlier test: its new container's address is in nginx.conf
        deadline = time.monotonic() + 90
        while True:
            assert time.monotonic() < deadline, "the edge never reloaded"
            cid = stack.container(service)
            if cid and cid != old and edge_reloads(stack) > reloads and \
                    address_of(cid) in edge_conf(stack):
                break
            time.sleep(1)

        after = ws_connect(stack, query, subprotocols=META)
        try:
            time.sleep(0.3)
            ev = invite()
            assert invitation(after, ev), "closed without a reload"
        finally:
            after.close()
        if invitation(before, ev) is None:
            print("the reload closed the older subscription; resuming")
            resumed = ws_connect(stack, f"{query}&last_event_id={last}",
                                 subprotocols=META)
            try:
                assert invitation(resumed, ev), "closed again"
            finally:
                resumed.close()
    finally:
        before.close()


def volumes_of(container: str) -> list[str]:
    mounts = json.loads(docker("inspect", "--format", "{{json .Mounts}}",
                               container).stdout)
    return [m["Name"] for m in mounts if m["Type"] == "volume"]


def test_the_edge_starts_and_serves_while_a_replica_cannot_run(stack):
    """A server down: its replicas cannot be scheduled, and their names
    resolve to nothing.  The edge still (re)starts, sending the calls for
    such a replica to an address that refuses them at once, and the
    shard's other replicas serve."""
    rep = shard_of("users")["replicas"][2]
    service = f"{stack.name}_{service_of('users', rep['name'])}"
    docker("service", "scale", "--detach", f"{service}=0")
    try:
        deadline = time.monotonic() + 60
        while stack.container(service_of("users", rep["name"])):
            assert time.monotonic() < deadline, f"{service} still runs"
            time.sleep(1)
        old_edge = stack.container("edge")
        docker("service", "update", "--detach", "--force",
               f"{stack.name}_edge")
        deadline = time.monotonic() + 120
        while stack.container("edge") in ("", old_edge):
            assert time.monotonic() < deadline, "no new edge container"
            time.sleep(1)
        wait_healthy(stack)
        settled_reloads(stack, absent={service_of("users", rep["name"])})
        assert f"server 127.0.0.1:{rep['http_port']} " in edge_conf(stack)
        c = Client(stack).register_login(uname("u"))   # the users shard
        r = c.req("POST", f"/calendars/{me(c)}/events", event_body())
        assert r.status_code == 201, r.text
    finally:
        docker("service", "scale", "--detach", f"{service}=1", check=False)
    deadline = time.monotonic() + 90
    while not stack.container(service_of("users", rep["name"])):
        assert time.monotonic() < deadline, f"{service} did not come back"
        time.sleep(1)
