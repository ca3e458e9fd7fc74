"""Benchmarks of one 3-replica shard on loopback, with etcd as the peer.

Prints one "bench <name> <value> <unit>" line per figure:
  - diagnostic KV writes/s and p50/p99 latency at 16, 64 and 256 connections
    (wrk, durable commits), and the same load against a 3-member etcd 3.4
    through its /v3/kv/put JSON gateway, with the ratio;
  - failover time: kill -9 of the leader until the next committed write,
    median and worst of N kills.
Every process started here is stopped by PID, even on failure.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CONNECTIONS = (16, 64, 256)


def bench(name, value, unit):
    print(f"bench {name} {value} {unit}", flush=True)


# the helpers every test directory shares: ports below the ephemeral range
sys.path.insert(0, os.path.join(REPO, "tests"))
from ports import free_ports  # noqa: E402


class Procs:
    """Processes started by this benchmark, stopped by PID."""

    def __init__(self):
        self.procs = []

    def start(self, args, log):
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                             cwd=REPO)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def request(addr, method, path, body=None, headers=None, timeout=2.0):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


class Shard:
    def __init__(self, build, tmp, procs):
        self.build, self.tmp, self.procs = build, tmp, procs
        ports = free_ports(24)
        self.topology = os.path.join(tmp, "topology.json")
        shards = []
        kinds = [("events_am", "events", "", "n"), ("events_nz", "events", "n", ""),
                 ("groups", "groups", "", ""), ("users", "users", "", "")]
        k = 0
        for name, kind, lo, hi in kinds:
            reps = []
            for r in range(3):
                reps.append({"id": r + 1, "name": f"node{r + 1}",
                             "server": "local", "http_port": ports[k],
                             "raft_port": ports[k + 1]})
                k += 2
            shards.append({"name": name, "kind": kind,
                           "range": {"from": lo, "to": hi}, "replicas": reps})
        topo = {"version": 1, "cluster": "bench",
                "raft": {"tick_ms": 25, "election_ticks": 8,
                         "heartbeat_ticks": 2, "snapshot_threshold": 100000,
                         "map_size_mb": 4096},
                "data_dir": os.path.join(tmp, "data"),
                "servers": [{"name": "local", "host": "127.0.0.1"}],
                "shards": shards}
        with open(self.topology, "w") as f:
            json.dump(topo, f)
        self.replicas = shards[0]["replicas"]
        self.proc = {}

    def addr(self, rid):
        return f"127.0.0.1:{self.replicas[rid - 1]['http_port']}"

    def start(self, rid):
        log = open(os.path.join(self.tmp, f"agent{rid}.log"), "ab")
        self.proc[rid] = self.procs.start(
            [os.path.join(self.build, "raft_agent"), "--topology",
             self.topology, "--shard", "events_am", "--node", str(rid),
             "--log-level", "warn"], log)

    def status(self, rid):
        try:
            s, _, b = request(self.addr(rid), "GET", "/status", timeout=0.5)
            return json.loads(b) if s == 200 else None
        except (OSError, http.client.HTTPException, ValueError):
            return None

    def leader(self, timeout=10.0, exclude=()):
        end = time.time() + timeout
        while time.time() < end:
            for rid in (1, 2, 3):
                if rid in exclude:
                    continue
                st = self.status(rid)
                if st and st["role"] == "leader":
                    return rid
            time.sleep(0.02)
        raise RuntimeError("no leader elected")

    def wait_applied(self, rids, timeout=30.0):
        end = time.time() + timeout
        while time.time() < end:
            sts = [self.status(r) for r in rids]
            if all(sts) and len({s["applied_index"] for s in sts}) == 1:
                return
            time.sleep(0.05)
        raise RuntimeError("replicas did not converge")


LAT_RE = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


# Where the creation scripts put their first event (2030-01-01T00:00:00Z);
# every run starts 25 years later than the one before, so no run's slots
# overlap another's.
CREATE_EPOCH = 1893456000
CREATE_EPOCH_STEP = 800000000


def create_epoch(run):
    return {"AGENDA_EPOCH": str(CREATE_EPOCH + run * CREATE_EPOCH_STEP)}


def run_wrk(url, script, conns, seconds, env=None):
    out = subprocess.run(
        ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency",
         "-s", os.path.join(HERE, script), url],
        capture_output=True, text=True, timeout=seconds + 60,
        env=dict(os.environ, **(env or {}))).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct, val, unit in LAT_RE.findall(out):
        lat[pct] = float(val) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, lat.get("50"), lat.get("99"), int(errors.group(1)) if errors else 0


def bench_writes(shard, seconds):
    leader = shard.leader()
    url = "http://" + shard.addr(leader)
    results = {}
    for c in CONNECTIONS:
        rps, p50, p99, errors = run_wrk(url, "kv_put.lua", c, seconds)
        results[c] = rps
        bench(f"raft_put_c{c}_throughput", round(rps), "writes/s")
        bench(f"raft_put_c{c}_p50", p50, "ms")
        bench(f"raft_put_c{c}_p99", p99, "ms")
        bench(f"raft_put_c{c}_errors", errors, "responses")
    return results


def bench_agenda_creates(shard, seconds):
    leader = shard.leader()
    url = "http://" + shard.addr(leader)
    for run, c in enumerate((64, 256)):
        rps, p50, p99, errors = run_wrk(url, "agenda_create.lua", c, seconds,
                                        create_epoch(run))
        bench(f"agenda_event_create_c{c}_throughput", round(rps), "events/s")
        bench(f"agenda_event_create_c{c}_p50", p50, "ms")
        bench(f"agenda_event_create_c{c}_p99", p99, "ms")
        bench(f"agenda_event_create_c{c}_errors", errors, "responses")


def bench_etcd(tmp, procs, seconds):
    if shutil.which("etcd") is None:
        print("bench: etcd not installed; skipping the comparison", flush=True)
        return None
    ports = free_ports(6)
    names = ["e1", "e2", "e3"]
    cluster = ",".join(f"{n}=http://127.0.0.1:{ports[2 * i + 1]}"
                       for i, n in enumerate(names))
    for i, n in enumerate(names):
        client, peer = ports[2 * i], ports[2 * i + 1]
        log = open(os.path.join(tmp, f"etcd-{n}.log"), "ab")
        procs.start(["etcd", "--name", n,
                     "--data-dir", os.path.join(tmp, f"etcd-{n}"),
                     "--listen-client-urls", f"http://127.0.0.1:{client}",
                     "--advertise-client-urls", f"http://127.0.0.1:{client}",
                     "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-cluster", cluster,
                     "--initial-cluster-state", "new",
                     "--initial-cluster-token", "agenda-bench"], log)
    # find the leader through the JSON gateway
    end = time.time() + 30
    leader_url = None
    while time.time() < end and leader_url is None:
        for i in range(3):
            addr = f"127.0.0.1:{ports[2 * i]}"
            try:
                s, _, b = request(addr, "POST", "/v3/maintenance/status", b"{}")
                st = json.loads(b)
                if s == 200 and st.get("leader") and \
                        st["leader"] == st["header"]["member_id"]:
                    leader_url = "http://" + addr
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                pass
        time.sleep(0.2)
    if leader_url is None:
        print("bench: etcd did not elect a leader; skipping", flush=True)
        return None
    results = {}
    for c in CONNECTIONS:
        rps, p50, p99, errors = run_wrk(leader_url, "etcd_put.lua", c, seconds)
        results[c] = rps
        bench(f"etcd_put_c{c}_throughput", round(rps), "writes/s")
        bench(f"etcd_put_c{c}_p50", p50, "ms")
        bench(f"etcd_put_c{c}_p99", p99, "ms")
        bench(f"etcd_put_c{c}_errors", errors, "responses")
    return results


def committed_write(shard, key, exclude, deadline):
    """Write until a leader acknowledges it; returns the time of the ack."""
    n = 0
    while time.time() < deadline:
        for rid in (1, 2, 3):
            if rid in exclude:
                continue
            n += 1
            try:
                s, _, _ = request(shard.addr(rid), "PUT", f"/kv/{key}", b"x",
                               {"Idempotency-Key": key}, timeout=1.0)
                if s == 200:
                    return time.time()
            except (OSError, http.client.HTTPException):
                pass
        time.sleep(0.002)
    raise RuntimeError("no write committed after the kill")


def bench_failover(shard, kills):
    times = []
    for i in range(kills):
        leader = shard.leader()
        shard.wait_applied((1, 2, 3))
        time.sleep(0.3)  # steady state: heartbeats flowing
        t0 = time.time()
        shard.proc[leader].send_signal(signal.SIGKILL)
        shard.proc[leader].wait()
        t1 = committed_write(shard, f"failover-{i}-{t0}", (leader,), t0 + 10)
        times.append(t1 - t0)
        shard.start(leader)
    bench("failover_median", round(statistics.median(times), 3), "s")
    bench("failover_worst", round(max(times), 3), "s")
    bench("failover_kills", len(times), "kills")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--skip-etcd", action="store_true")
    args = ap.parse_args()
    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="agenda-bench-")
    try:
        shard = Shard(args.build, tmp, procs)
        for rid in (1, 2, 3):
            shard.start(rid)
        ours = bench_writes(shard, args.seconds)
        bench_agenda_creates(shard, args.seconds)
        bench_failover(shard, args.kills)
        procs.stop_all()
        procs.procs.clear()
        if not args.skip_etcd:
            theirs = bench_etcd(tmp, procs, args.seconds)
            if theirs:
                for c in CONNECTIONS:
                    bench(f"raft_vs_etcd_c{c}_ratio",
                          round(ours[c] / theirs[c], 2), "x")
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True) if not os.environ.get("AGENDA_KEEP") else print("kept", tmp)


if __name__ == "__main__":
    sys.exit(main())
