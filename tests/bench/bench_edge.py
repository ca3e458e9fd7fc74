"""End-to-end benchmarks through HTTPS nginx (make bench).

Starts every shard (three replicas each) and nginx with our module on free
ports, then prints "bench <name> <value> <unit>" lines:
  - event creations/s and p50/p99 at 4 connections (the latency of a
    lightly loaded service, measured first, before the heavy runs' disk
    writeback), 64 and 256 (wrk, HTTPS, JWT-authenticated
    POST /api/v1/calendars/{me}/events by four users whose calendars are
    on both events shards);
  - the same at 64 connections sustained: measured after five minutes of
    load (the request-id window is full and ids are forgotten as fast as
    new ones come; the edge hashes every client key, so the shards see
    random ids whatever the keys look like);
  - month view (GET /calendars/{me}/events for a month holding ~90 events)
    p50/p99;
  - notification latency: with 1,000 WebSocket subscribers connected, time
    from a create's response to the invitee's message, p50/p99.  nginx
    publishes before it answers, so a message can arrive before this
    client has read the response: such a time is negative;
  - creations at 64 connections again on a second cluster whose internal
    links are all mutually authenticated TLS (the topology's internal_tls),
    with where their CPU goes: the price of encrypting the inside;
  - and on a third whose nginx runs two workers instead of one: the price
    of nchan's channels living in one worker each (every publish from the
    other worker crosses between them).
Every process is stopped by PID, even on failure.
"""
import argparse
import contextlib
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "edge"))

import requests  # noqa: E402  (Debian python3-requests)
import websocket  # noqa: E402  (Debian python3-websocket)
from conftest import DEV_CERTS, Agents, Edge, _private_dir  # noqa: E402
from bench_raft import bench, create_epoch, run_wrk  # noqa: E402

PASSWORD = "correct horse battery staple"
WARMUP_SECONDS = 2
SUBSCRIBERS = 1000
INVITEES = 50


class Api:
    def __init__(self, edge):
        self.base = f"https://127.0.0.1:{edge.https_port}/api/v1"
        self.s = requests.Session()
        self.s.verify = str(edge.tls_dir / "ca.pem")
        self.s.trust_env = False
        self.token = None

    def req(self, method, path, body=None):
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return self.s.request(method, self.base + path, headers=h,
                              data=None if body is None
                              else json.dumps(body), timeout=30)

    def register_login(self, name):
        r = self.req("POST", "/auth/register",
                     {"username": name, "password": PASSWORD,
                      "display_name": name, "email": f"{name}@example.org"})
        assert r.status_code == 201, r.text
        r = self.req("POST", "/auth/login",
                     {"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.token = r.json()["access_token"]
        return self


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User + system CPU time of the processes (those still alive)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def edge_pids(edge):
    master = edge.proc.pid
    try:
        with open(f"/proc/{master}/task/{master}/children") as f:
            return [master] + [int(p) for p in f.read().split()]
    except OSError:
        return [master]


def bench_creates(edge, agents, seconds, creators, conns=(4, 64, 256),
                  name="edge_event_create"):
    """Creations by `creators` users, every other one on each side of the
    a-m / n-z split of the default topology, each in their own
    calendar."""
    url = f"https://127.0.0.1:{edge.https_port}"
    users = []
    for i in range(creators):
        user = f"{'cp'[i % 2]}{uuid.uuid4().hex[:8]}"
        users.append(f"{user}:{Api(edge).register_login(user).token}")
    env = {"AGENDA_USERS": ",".join(users)}
    agent_pids = [p.pid for p in agents.procs.values()]
    for run, c in enumerate(conns):
        # not measured: nginx opens the connections to the agents this
        # load needs (with internal TLS a handshake each: p99 94-159 ms
        # when measured cold, 28-48 ms warm) before the clock starts, as a
        # running edge has them open
        run_wrk(url, "edge_create.lua", c, WARMUP_SECONDS,
                dict(env, **create_epoch(20 + run)))
        nginx_pids = edge_pids(edge)
        cpu0 = (cpu_seconds(nginx_pids), cpu_seconds(agent_pids))
        rps, p50, p99, errors = run_wrk(url, "edge_create.lua", c, seconds,
                                        dict(env, **create_epoch(run)))
        cpu1 = (cpu_seconds(nginx_pids), cpu_seconds(agent_pids))
        # where a creation's CPU goes (the load generator excluded): nginx
        # (TLS, JWT, the flow, publishing) and every agent of every shard
        # (the leader and both followers apply it)
        events = max(rps * seconds, 1)
        bench(f"{name}_c{c}_cpu_nginx",
              round((cpu1[0] - cpu0[0]) / events * 1e6), "us/event")
        bench(f"{name}_c{c}_cpu_agents",
              round((cpu1[1] - cpu0[1]) / events * 1e6), "us/event")
        bench(f"{name}_c{c}_throughput", round(rps), "events/s")
        bench(f"{name}_c{c}_p50", p50, "ms")
        bench(f"{name}_c{c}_p99", p99, "ms")
        bench(f"{name}_c{c}_errors", errors, "responses")


def bench_sustained_creates(edge, warm_seconds, seconds):
    """Creations at 64 connections once the shards hold a full session
    window: every write's request id is remembered for five minutes
    (raft_agent/session.h), so a short run measures tables that are still
    small and never forgets an id.  `warm_seconds` of load first (not
    measured), then `seconds` measured."""
    url = f"https://127.0.0.1:{edge.https_port}"
    users = []
    for i in range(4):
        name = f"{'cp'[i % 2]}{uuid.uuid4().hex[:8]}"
        users.append(f"{name}:{Api(edge).register_login(name).token}")
    env = {"AGENDA_USERS": ",".join(users)}
    run_wrk(url, "edge_create.lua", 64, warm_seconds,
            dict(env, **create_epoch(10)))
    rps, p50, p99, errors = run_wrk(url, "edge_create.lua", 64, seconds,
                                    dict(env, **create_epoch(11)))
    name = "edge_event_create_c64_sustained"
    bench(f"{name}_warmup", warm_seconds, "s")
    bench(f"{name}_throughput", round(rps), "events/s")
    bench(f"{name}_p50", p50, "ms")
    bench(f"{name}_p99", p99, "ms")
    bench(f"{name}_errors", errors, "responses")


def bench_month_view(edge, api, user, seconds):
    # ~90 events in January 2027: three a day
    for d in range(1, 31):
        for h in (9, 12, 16):
            r = api.req("POST", f"/calendars/{user}/events",
                        {"title": f"m{d}-{h}",
                         "start": f"2027-01-{d:02d}T{h:02d}:00:00Z",
                         "end": f"2027-01-{d:02d}T{h:02d}:45:00Z",
                         "time_zone": "UTC"})
            assert r.status_code == 201, r.text
    url = f"https://127.0.0.1:{edge.https_port}"
    env = {"AGENDA_TOKEN": api.token,
           "AGENDA_PATH": f"/api/v1/calendars/{user}/events"
                          "?from=2027-01-01T00:00:00Z"
                          "&to=2027-02-01T00:00:00Z&limit=500"}
    rps, p50, p99, errors = run_wrk(url, "edge_get.lua", 16, seconds, env)
    bench("edge_month_view_p50", p50, "ms")
    bench("edge_month_view_p99", p99, "ms")
    bench("edge_month_view_throughput", round(rps), "requests/s")
    bench("edge_month_view_errors", errors, "responses")


def bench_notifications(edge, owner, invitees, rounds):
    """SUBSCRIBERS sockets spread over the invitees; each round invites
    one invitee and times the arrival on all of that invitee's sockets."""
    sslopt = {"ca_certs": str(edge.tls_dir / "ca.pem"),
              "cert_reqs": ssl.CERT_REQUIRED, "check_hostname": False}
    origin = f"https://localhost:{edge.https_port}"
    arrivals = {}          # event id -> list of arrival times
    lock = threading.Lock()
    stop = threading.Event()
    sockets = []

    def reader(ws):
        while not stop.is_set():
            try:
                msg = ws.recv()
            except Exception:  # noqa: BLE001 - closed at the end
                return
            t = time.monotonic()
            try:
                body = json.loads(msg)
            except ValueError:
                continue
            if body.get("type") == "invitation.created":
                with lock:
                    arrivals.setdefault(body.get("id"), []).append(t)

    per = SUBSCRIBERS // len(invitees)
    threads = []
    for name, api in invitees:
        for _ in range(per):
            ws = websocket.create_connection(
                f"wss://127.0.0.1:{edge.https_port}/api/v1/notifications"
                f"?access_token={api.token}", timeout=30, sslopt=sslopt,
                origin=origin)
            sockets.append(ws)
            t = threading.Thread(target=reader, args=(ws,), daemon=True)
            t.start()
            threads.append(t)
    bench("edge_notification_subscribers", len(sockets), "connections")
    time.sleep(1.0)
    lat = []
    try:
        for i in range(rounds):
            name, _ = invitees[i % len(invitees)]
            r = owner.req("POST", f"/calendars/{owner_name(owner)}/events",
                          {"title": f"n{i}",
                           "start": f"2027-02-{1 + i % 28:02d}T10:00:00Z",
                           "end": f"2027-02-{1 + i % 28:02d}T10:30:00Z",
                           "time_zone": "UTC", "participants": [name]})
            t0 = time.monotonic()
            assert r.status_code == 201, r.text
            ev = r.json()["event"]["id"]
            deadline = t0 + 5
            while time.monotonic() < deadline:
                with lock:
                    got = list(arrivals.get(ev, []))
                if len(got) >= per:
                    break
                time.sleep(0.001)
            lat += [(t - t0) * 1000.0 for t in got]
    finally:
        stop.set()
        for ws in sockets:
            try:
                ws.close()
            except Exception:  # noqa: BLE001
                pass
    lat.sort()
    if lat:
        bench("edge_notification_latency_p50",
              round(statistics.median(lat), 2), "ms")
        bench("edge_notification_latency_p99",
              round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2), "ms")
    bench("edge_notification_delivered", len(lat), "messages")
    bench("edge_notification_expected", rounds * per, "messages")


def owner_name(api):
    return api.req("GET", "/me").json()["user"]["username"]


@contextlib.contextmanager
def edge_stack(internal_tls=False, workers=1):
    """Every shard (three replicas each) and one nginx in front, on free
    ports, removed afterwards: (agents, edge).  One nginx worker by
    default: on two cores shared with twelve agents a second worker costs
    more than it gives, because nchan keeps each channel in one worker and
    every publish from the other one crosses between them (see
    edge_2_workers_event_create)."""
    tls = _private_dir("agenda-bench-tls-")
    root = _private_dir("agenda-bench-agents-")
    # production-like timing and room: the tests' tiny maps and frequent
    # snapshots would make the benchmark measure compaction
    agents = Agents(root, replicas=3, others=3, internal_tls=internal_tls,
                    raft={"tick_ms": 25, "election_ticks": 8,
                          "heartbeat_ticks": 2, "snapshot_threshold": 100000,
                          "map_size_mb": 4096})
    edge = None
    try:
        subprocess.run([DEV_CERTS, str(tls)], check=True,
                       capture_output=True, timeout=60)
        agents.start_all()
        edge = Edge(_private_dir("agenda-bench-edge-"), tls,
                    agents.topology)
        edge.generate("--workers", str(workers),
                      "--worker-connections", "4096",
                      "--auth-rate", "1000r/s", "--auth-burst", "2000",
                      # SUBSCRIBERS sockets from this one address
                      "--ws-per-address", "4096", "--ws-per-token", "1024")
        edge.start()
        yield agents, edge
    finally:
        if edge is not None:
            edge.stop()
            shutil.rmtree(edge.root, ignore_errors=True)
        agents.stop_all()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(tls, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--skip-creates", action="store_true")
    ap.add_argument("--sustain", type=int, default=310,
                    help="seconds of creations before the sustained "
                         "measurement (0: none); over the five-minute "
                         "session window")
    ap.add_argument("--creators", type=int, default=4,
                    help="users creating events (1: one calendar, one "
                         "shard; more: both events shards)")
    ap.add_argument("--skip-internal-tls", action="store_true",
                    help="no creations over internal TLS links")
    ap.add_argument("--skip-two-workers", action="store_true",
                    help="no creations through a two-worker nginx")
    args = ap.parse_args()
    with edge_stack() as (agents, edge):
        owner = Api(edge).register_login(f"bench{uuid.uuid4().hex[:8]}")
        if not args.skip_creates:
            bench_creates(edge, agents, args.seconds, args.creators)
        viewer = Api(edge).register_login(f"view{uuid.uuid4().hex[:8]}")
        bench_month_view(edge, viewer, owner_name(viewer), args.seconds)
        invitees = []
        for _ in range(INVITEES):
            n = f"sub{uuid.uuid4().hex[:8]}"
            invitees.append((n, Api(edge).register_login(n)))
        bench_notifications(edge, owner, invitees, args.rounds)
        if not args.skip_creates and args.sustain > 0:
            bench_sustained_creates(edge, args.sustain, 2 * args.seconds)
    if not args.skip_creates and not args.skip_internal_tls:
        # the same creations with every internal link mutually
        # authenticated TLS (config/README.md, "Internal TLS")
        with edge_stack(internal_tls=True) as (agents, edge):
            bench_creates(edge, agents, args.seconds, args.creators,
                          conns=(64,), name="edge_internal_tls_event_create")
    if not args.skip_creates and not args.skip_two_workers:
        with edge_stack(workers=2) as (agents, edge):
            bench_creates(edge, agents, args.seconds, args.creators,
                          conns=(64,), name="edge_2_workers_event_create")


if __name__ == "__main__":
    sys.exit(main())
