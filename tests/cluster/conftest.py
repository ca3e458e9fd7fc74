"""Harness for the real-process cluster tests (tests/cluster).

One `Cluster` is one shard (three `raft_agent` processes) started from a
per-test topology with free ports, fast Raft timing and data and logs under
the test's tmp dir.  Each agent runs from its own config, generated from
that topology by config/gen-agents (`raft_agent --config`), as the run
command starts them.  Every process it starts is killed in a finalizer, even
when the test fails; every iptables rule it inserts is deleted (by its exact
spec, never by flushing a chain).  When a test fails, the tail of each
agent's log is attached to the failure report.

Environment: AGENDA_BUILD (absolute build dir holding raft_agent; default
build/release of the repository).  Failover times observed by the tests are
printed at the end of the session and written to
$AGENDA_BUILD/cluster-results.txt as `failover <test> <seconds>`.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]

# the helpers every test directory shares (tests/ports.py)
sys.path.insert(0, str(REPO / "tests"))
from ports import free_ports as ports_below_ephemeral  # noqa: E402
BUILD = Path(os.environ.get("AGENDA_BUILD") or REPO / "build" / "release")
AGENT = BUILD / "raft_agent"
GEN_AGENTS = REPO / "config" / "gen-agents"
DEV_INTERNAL_CERTS = REPO / "config" / "dev-internal-certs"
RESULTS = BUILD / "cluster-results.txt"

# Fast timing: election timeout 100..200 ms, heartbeat every 20 ms.
FAST_RAFT = {"tick_ms": 10, "election_ticks": 10, "heartbeat_ticks": 2,
             "snapshot_threshold": 200, "map_size_mb": 256}

# Ports the dev cluster uses (config/topology.json): never hand them out.
RESERVED_PORTS = range(7000, 7400)

# Each replica runs with its own primary group id so that iptables can tell
# the processes apart on loopback (`-m owner --gid-owner`).
GID_BASE = 47300

_results_lock = threading.Lock()
_failovers: list[tuple[str, str, float]] = []


def pytest_sessionstart(session):
    try:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("")
    except OSError:
        pass


def pytest_terminal_summary(terminalreporter):
    if not _failovers:
        return
    terminalreporter.section("failover times")
    for test, what, secs in _failovers:
        terminalreporter.write_line(f"failover {test} {what} {secs:.3f}s")
    terminalreporter.write_line(f"(also in {RESULTS})")


def report_failover(request, seconds: float, what: str = "") -> None:
    """Record a failover time: printed now, in the session summary, and
    appended to $AGENDA_BUILD/cluster-results.txt."""
    label = what.replace(" ", "_")
    test = request.node.name + (f"[{label}]" if label else "")
    print(f"failover {test} {seconds:.3f}s")
    with _results_lock:
        _failovers.append((request.node.name, what, seconds))
        try:
            with open(RESULTS, "a") as f:
                f.write(f"failover {test} {seconds:.3f}\n")
        except OSError:
            pass


# ---- attach agent logs to failure reports ------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for c in getattr(item, "_agenda_clusters", []):
        try:
            rep.sections.append((f"agent logs ({c.root})", c.log_tails()))
        except Exception as e:  # never hide the real failure
            rep.sections.append(("agent logs", f"cannot read logs: {e!r}"))


# ---- ports ---------------------------------------------------------------------

def free_ports(n: int) -> list[int]:
    """n distinct ports that were free a moment ago, below the kernel's
    ephemeral range (tests/ports.py), outside the dev cluster's range."""
    return ports_below_ephemeral(n, RESERVED_PORTS)


# ---- iptables --------------------------------------------------------------------

class Firewall:
    """iptables rules inserted by a test, deleted by exact spec."""

    def __init__(self, tag: str):
        self.tag = tag
        self.rules: list[tuple[str, list[str]]] = []

    @staticmethod
    def usable() -> tuple[bool, str]:
        if os.geteuid() != 0:
            return False, "not root: iptables and per-agent group ids need root"
        if shutil.which("iptables") is None:
            return False, "iptables is not installed"
        try:
            r = subprocess.run(["iptables", "-w", "5", "-L", "OUTPUT", "-n"],
                               capture_output=True, text=True, timeout=10)
        except Exception as e:
            return False, f"iptables -L failed: {e!r}"
        if r.returncode != 0:
            return False, f"iptables -L failed: {r.stderr.strip()}"
        # The owner match is what tells the loopback agents apart.
        probe = ["OUTPUT", "-o", "lo", "-p", "tcp", "--dport", "9",
                 "-m", "owner", "--gid-owner", str(GID_BASE + 99),
                 "-m", "comment", "--comment", "agenda-probe", "-j", "DROP"]
        r = subprocess.run(["iptables", "-w", "5", "-I"] + probe,
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return False, f"iptables owner/comment match unusable: {r.stderr.strip()}"
        subprocess.run(["iptables", "-w", "5", "-D"] + probe,
                       capture_output=True, text=True, timeout=10)
        return True, ""

    def add(self, chain: str, spec: list[str]) -> None:
        spec = spec + ["-m", "comment", "--comment", self.tag, "-j", "DROP"]
        subprocess.run(["iptables", "-w", "5", "-I", chain] + spec,
                       check=True, capture_output=True, timeout=10)
        self.rules.append((chain, spec))

    def clear(self) -> None:
        errors = []
        while self.rules:
            chain, spec = self.rules.pop()
            r = subprocess.run(["iptables", "-w", "5", "-D", chain] + spec,
                               capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                errors.append(f"{chain} {' '.join(spec)}: {r.stderr.strip()}")
        if errors:
            raise RuntimeError("could not delete iptables rules: " + "; ".join(errors))


# ---- the cluster ---------------------------------------------------------------

class ClientError(Exception):
    pass


class _CAOnlyAdapter(requests.adapters.HTTPAdapter):
    """Checks an agent's certificate against the internal CA but not its
    name: the harness dials agents by address, which their certificates do
    not name (test_internal_tls.py checks the names)."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs["assert_hostname"] = False
        return super().init_poolmanager(*args, **kwargs)


@dataclass
class Replica:
    id: int
    name: str
    http_port: int
    raft_port: int
    gid: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen | None = None
    paused: bool = False
    starts: int = 0

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.http_port}"


class Cluster:
    SHARD = "events_am"

    def __init__(self, root: Path, raft: dict | None = None, n: int = 3,
                 log_level: str = "info", internal_tls: bool = False):
        if not AGENT.exists():
            pytest.fail(f"{AGENT} does not exist: build it with "
                        "`make build/release/raft_agent` or set AGENDA_BUILD")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.raft = dict(FAST_RAFT, **(raft or {}))
        self.log_level = log_level
        self.firewall = Firewall(f"agenda-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.leader_hint: int | None = None
        self._lock = threading.Lock()
        ports = free_ports(2 * 3 * 4)  # 4 shards of 3 replicas, http + raft
        self.topology_path = self.root / "topology.json"
        shards = []
        specs = [("events_am", "events", {"from": "", "to": "n"}),
                 ("events_nz", "events", {"from": "n", "to": ""}),
                 ("groups", "groups", None), ("users", "users", None)]
        for s, (name, kind, rng) in enumerate(specs):
            reps = []
            for r in range(3):
                i = 2 * (3 * s + r)
                reps.append({"id": r + 1, "name": f"node{r + 1}",
                             "server": f"server{r + 1}",
                             "http_port": ports[i], "raft_port": ports[i + 1]})
            sh = {"name": name, "kind": kind, "replicas": reps}
            if rng is not None:
                sh["range"] = rng
            shards.append(sh)
        # Only the first n replicas of the shard under test are used.
        shards[0]["replicas"] = shards[0]["replicas"][:n]
        topo = {"version": 1, "cluster": "agenda-test", "raft": self.raft,
                "data_dir": str(self.root / "data"),
                "servers": [{"name": f"server{i}", "host": "127.0.0.1"}
                            for i in (1, 2, 3)],
                "shards": shards}
        # Mutually authenticated TLS on every link: certificates from
        # config/dev-internal-certs, and this test client is the edge.
        self.tls_dir: Path | None = None
        self.tls_kw: dict = {}
        if internal_tls:
            self.tls_dir = self.root / "internal-tls"
            topo["internal_tls"] = {"dir": str(self.tls_dir)}
            # before gen-agents, whose --check loads them
            self.topology_path.write_text(json.dumps(topo))
            subprocess.run([str(DEV_INTERNAL_CERTS), "--topology",
                            str(self.topology_path)],
                           check=True, capture_output=True, timeout=120)
            self.tls_kw = {"cert": (str(self.tls_dir / "edge.pem"),
                                    str(self.tls_dir / "edge.key")),
                           "verify": str(self.tls_dir / "ca.pem")}
        self.agents_dir = self.root / "agents"
        self.write_topology(topo)
        self.replicas: dict[int, Replica] = {}
        for r in shards[0]["replicas"]:
            rid = r["id"]
            self.replicas[rid] = Replica(
                id=rid, name=r["name"], http_port=r["http_port"],
                raft_port=r["raft_port"], gid=GID_BASE + rid,
                data_dir=self.root / "data" / self.SHARD / r["name"],
                log_path=self.root / "logs" / f"{r['name']}.log")
        (self.root / "logs").mkdir(exist_ok=True)
        self.by_addr = {rep.addr: rid for rid, rep in self.replicas.items()}
        # Command prefixes per replica (e.g. valgrind) used by start().
        self.wrappers: dict[int, list[str]] = {}

    def write_topology(self, topo: dict) -> None:
        """Writes the topology and regenerates every agent's config from it,
        as an operator does; running agents see it when restarted."""
        self.topology_path.write_text(json.dumps(topo, indent=2))
        r = subprocess.run(
            ["/usr/bin/python3", str(GEN_AGENTS), "--out", str(self.agents_dir),
             "--topology", str(self.topology_path),
             "--log-level", self.log_level, "--check-with", str(AGENT)],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"gen-agents failed:\n{r.stderr}"

    def agent_config(self, rid: int) -> Path:
        return self.agents_dir / f"{self.SHARD}-{self.replicas[rid].name}.json"

    # -- processes ----------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        return sorted(self.replicas)

    def others(self, rid: int) -> list[int]:
        return [i for i in self.ids if i != rid]

    def running(self, rid: int) -> bool:
        p = self.replicas[rid].proc
        return p is not None and p.poll() is None

    def start(self, rid: int) -> None:
        rep = self.replicas[rid]
        assert not self.running(rid), f"node {rid} is already running"
        rep.data_dir.mkdir(parents=True, exist_ok=True)
        rep.starts += 1
        with open(rep.log_path, "ab") as log:
            log.write(f"\n===== start #{rep.starts} at {time.time():.3f} =====\n".encode())
            log.flush()
            rep.proc = subprocess.Popen(
                self.wrappers.get(rid, []) +
                [str(AGENT), "--config", str(self.agent_config(rid))],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                group=rep.gid if os.geteuid() == 0 else None,
                start_new_session=True, close_fds=True)
        rep.paused = False

    def start_all(self, timeout: float = 15.0) -> int:
        for rid in self.ids:
            self.start(rid)
        self.wait_http(self.ids)
        return self.wait_for_leader(timeout=timeout)

    def wait_http(self, ids, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for rid in ids:
            while self.status(rid) is None:
                if not self.running(rid):
                    pytest.fail(f"node {rid} exited with {self.replicas[rid].proc.returncode}"
                                f" during start:\n{self.log_tail(rid)}")
                if time.monotonic() > deadline:
                    pytest.fail(f"node {rid} does not answer /status after {timeout}s")
                time.sleep(0.02)

    def _wait_exit(self, rid: int, timeout: float) -> int | None:
        p = self.replicas[rid].proc
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self, rid: int) -> None:
        """kill -9 (works on a stopped process too)."""
        rep = self.replicas[rid]
        if self.running(rid):
            rep.proc.send_signal(signal.SIGKILL)
            assert self._wait_exit(rid, 10) is not None, f"node {rid} survives SIGKILL"
        rep.paused = False

    def stop(self, rid: int, timeout: float = 8.0) -> int:
        """SIGTERM and wait; returns the exit status.  Fails the test (after
        a kill -9) if the agent does not exit within timeout."""
        rep = self.replicas[rid]
        assert self.running(rid), f"node {rid} is not running"
        if rep.paused:
            self.resume(rid)
        rep.proc.send_signal(signal.SIGTERM)
        rc = self._wait_exit(rid, timeout)
        if rc is None:
            self.kill(rid)
            pytest.fail(f"node {rid} did not exit within {timeout}s of SIGTERM")
        return rc

    def kill_all(self) -> None:
        """kill -9 every running replica at (nearly) the same moment."""
        live = [rid for rid in self.ids if self.running(rid)]
        for rid in live:
            self.replicas[rid].proc.send_signal(signal.SIGKILL)
        for rid in live:
            assert self._wait_exit(rid, 10) is not None, f"node {rid} survives SIGKILL"
            self.replicas[rid].paused = False

    def pause(self, rid: int) -> None:
        self.replicas[rid].proc.send_signal(signal.SIGSTOP)
        self.replicas[rid].paused = True

    def resume(self, rid: int) -> None:
        self.replicas[rid].proc.send_signal(signal.SIGCONT)
        self.replicas[rid].paused = False

    def restart(self, rid: int, graceful: bool = True) -> None:
        if self.running(rid):
            if graceful:
                self.stop(rid)
            else:
                self.kill(rid)
        self.start(rid)
        self.wait_http([rid])

    def wipe(self, rid: int) -> None:
        assert not self.running(rid), "wipe a stopped replica only"
        shutil.rmtree(self.replicas[rid].data_dir, ignore_errors=True)

    def cleanup(self) -> None:
        try:
            self.firewall.clear()
        finally:
            for rid, rep in self.replicas.items():
                if rep.proc is not None and rep.proc.poll() is None:
                    try:
                        rep.proc.send_signal(signal.SIGKILL)
                        rep.proc.wait(timeout=10)
                    except Exception:
                        pass

    # -- logs ------------------------------------------------------------------------

    def log_tail(self, rid: int, lines: int = 40) -> str:
        try:
            data = self.replicas[rid].log_path.read_bytes()[-200_000:]
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def log_tails(self, lines: int = 40) -> str:
        out = []
        for rid in self.ids:
            rep = self.replicas[rid]
            state = "running" if self.running(rid) else (
                f"exited {rep.proc.returncode}" if rep.proc else "never started")
            out.append(f"--- node {rid} ({state}, pid "
                       f"{rep.proc.pid if rep.proc else '-'}) {rep.log_path} ---")
            out.append(self.log_tail(rid, lines))
        return "\n".join(out)

    # -- HTTP --------------------------------------------------------------------------

    def new_session(self) -> requests.Session:
        """A session that can talk to the agents (with internal TLS, as
        the edge)."""
        s = requests.Session()
        if self.tls_kw:
            s.cert = self.tls_kw["cert"]
            s.verify = self.tls_kw["verify"]
            # REQUESTS_CA_BUNDLE would override the session's verify
            s.trust_env = False
            s.mount("https://", _CAOnlyAdapter())
        return s

    def url(self, rid: int, path: str) -> str:
        scheme = "https" if self.tls_dir else "http"
        return f"{scheme}://{self.replicas[rid].addr}{path}"

    def http(self, rid: int, method: str, path: str, timeout: float = 2.0,
             **kw) -> requests.Response:
        with self.new_session() as s:
            return s.request(method, self.url(rid, path),
                             timeout=(1.0, timeout), **kw)

    def status(self, rid: int, timeout: float = 1.0) -> dict | None:
        if not self.running(rid) or self.replicas[rid].paused:
            return None
        try:
            r = self.http(rid, "GET", "/status", timeout=timeout)
            return r.json() if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def statuses(self, ids=None) -> dict[int, dict]:
        out = {}
        for rid in ids or self.ids:
            s = self.status(rid)
            if s is not None:
                out[rid] = s
        return out

    def wait_for_leader(self, among=None, timeout: float = 10.0,
                        exclude=()) -> int:
        """A node of `among` that says it is the leader, with no responding
        node of `among` in a later term."""
        among = [i for i in (among or self.ids) if i not in exclude]
        deadline = time.monotonic() + timeout
        last = {}
        while time.monotonic() < deadline:
            last = self.statuses(among)
            leaders = [(s["term"], rid) for rid, s in last.items()
                       if s["role"] == "leader"]
            if leaders:
                term, rid = max(leaders)
                if all(s["term"] <= term for s in last.values()):
                    self.leader_hint = rid
                    return rid
            time.sleep(0.02)
        pytest.fail(f"no leader among {among} within {timeout}s; last statuses: "
                    f"{json.dumps(last)}")

    def metrics(self, rid: int) -> dict[str, float]:
        r = self.http(rid, "GET", "/metrics")
        r.raise_for_status()
        out = {}
        for line in r.text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.split("{", 1)[0]
            if "role=" in name_labels:
                continue
            out[name] = float(value)
        return out

    def metric(self, rid: int, name: str) -> float:
        m = self.metrics(rid)
        assert name in m, f"node {rid} has no metric {name}"
        return m[name]

    def digest(self, rid: int) -> dict:
        r = self.http(rid, "GET", "/digest", timeout=5.0)
        r.raise_for_status()
        return r.json()

    def wait_converged(self, ids=None, timeout: float = 20.0) -> str:
        """Wait until every replica of `ids` has applied the same index, then
        require equal digests.  Returns the digest."""
        ids = ids or self.ids
        deadline = time.monotonic() + timeout
        last = {}
        while time.monotonic() < deadline:
            try:
                last = {rid: self.digest(rid) for rid in ids}
            except requests.RequestException:
                time.sleep(0.05)
                continue
            applied = {d["applied_index"] for d in last.values()}
            if len(applied) == 1:
                digests = {rid: d["digest"] for rid, d in last.items()}
                assert len(set(digests.values())) == 1, (
                    f"replicas diverge at applied index {applied.pop()}: {digests}")
                return next(iter(digests.values()))
            time.sleep(0.05)
        pytest.fail(f"replicas {ids} did not converge within {timeout}s: {last}; "
                    f"statuses {json.dumps(self.statuses(ids))}")

    def client(self, **kw) -> "Client":
        return Client(self, **kw)


# ---- a client that finds the leader and retries safely ----------------------------

@dataclass
class Ack:
    key: str
    value: bytes
    idem: str
    index: int
    node: int
    t_sent: float
    t_ack: float
    replayed: bool
    attempts: int
    history: list = field(default_factory=list)


class Client:
    """Follows 421 redirects; on 503, connection errors and timeouts retries
    the SAME Idempotency-Key (at another node) until `budget` runs out."""

    def __init__(self, cluster: Cluster, budget: float = 30.0,
                 req_timeout: float = 7.0, nodes=None):
        self.c = cluster
        self.budget = budget
        self.req_timeout = req_timeout
        self.nodes = list(nodes) if nodes else None
        self.session = cluster.new_session()

    def _nodes(self, nodes):
        return list(nodes or self.nodes or self.c.ids)

    def _first(self, nodes):
        h = self.c.leader_hint
        return h if h in nodes else random.choice(nodes)

    def request(self, method: str, key: str, data: bytes | None = None,
                idem: str | None = None, nodes=None, budget: float | None = None,
                params=None, ok=(200,), path: str | None = None,
                json_body=None):
        """Returns (response, node, history).  `ok` statuses end the retry
        loop (with the response); 421/503/connection problems are retried;
        anything else fails.  `path` replaces /kv/{key} (key then only
        names the request in messages); `json_body` is sent as JSON."""
        nodes = self._nodes(nodes)
        deadline = time.monotonic() + (budget or self.budget)
        target = self._first(nodes)
        history = []
        hops = 0
        headers = {"Idempotency-Key": idem} if idem else {}
        while True:
            if time.monotonic() > deadline:
                raise ClientError(f"{method} {key} (Idempotency-Key {idem}) not "
                                  f"answered within budget: {history[-12:]}")
            try:
                r = self.session.request(
                    method, self.c.url(target, path or f"/kv/{key}"),
                    data=data, json=json_body, headers=headers,
                    params=params, timeout=(1.0, self.req_timeout))
            except requests.RequestException as e:
                history.append((round(time.monotonic(), 3), target, type(e).__name__))
                target = self._rotate(target, nodes)
                time.sleep(0.05)
                continue
            history.append((round(time.monotonic(), 3), target, r.status_code))
            if r.status_code in ok:
                if r.status_code == 200:
                    self.c.leader_hint = target
                return r, target, history
            if r.status_code == 421:
                leader = self.c.by_addr.get(r.headers.get("X-Raft-Leader", ""))
                hops += 1
                if leader is not None and leader in nodes and leader != target \
                        and hops % 4 != 0:
                    target = leader
                    continue
                target = self._rotate(target, nodes)
                time.sleep(0.05)
                continue
            if r.status_code == 503:
                time.sleep(0.05)
                target = self._rotate(target, nodes)
                continue
            raise ClientError(f"{method} {key}: unexpected {r.status_code} "
                              f"{r.text[:300]} from node {target}")

    @staticmethod
    def _rotate(target, nodes):
        if len(nodes) == 1:
            return nodes[0]
        i = nodes.index(target) if target in nodes else -1
        return nodes[(i + 1) % len(nodes)]

    def put(self, key: str, value: bytes, idem: str | None = None, **kw) -> Ack:
        idem = idem or f"w-{uuid.uuid4().hex}"
        t0 = time.monotonic()
        r, node, history = self.request("PUT", key, data=value, idem=idem, **kw)
        body = r.json()
        assert body.get("key") == key, f"PUT {key} answered {body}"
        return Ack(key=key, value=value, idem=idem, index=int(body["index"]),
                   node=node, t_sent=t0, t_ack=time.monotonic(),
                   replayed=r.headers.get("Idempotent-Replayed") == "true",
                   attempts=len(history), history=history)

    def get(self, key: str, **kw) -> bytes | None:
        """Linearizable read through the leader: the value, or None (404)."""
        r, _, _ = self.request("GET", key, ok=(200, 404), **kw)
        return r.content if r.status_code == 200 else None


# ---- writer threads ------------------------------------------------------------------

class Writers:
    """n threads writing distinct keys until stopped; each logical write has
    its own Idempotency-Key, retried by the Client on failures."""

    def __init__(self, cluster: Cluster, n: int = 4, prefix: str = "w",
                 budget: float = 30.0, nodes=None, pace: float = 0.0):
        self.c = cluster
        self.n = n
        self.prefix = prefix
        self.budget = budget
        self.nodes = nodes
        self.pace = pace
        self.acks: list[Ack] = []
        self.errors: list[str] = []
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(n)]

    def _run(self, i: int) -> None:
        cl = self.c.client(budget=self.budget, nodes=self.nodes)
        j = 0
        while not self.stop_ev.is_set():
            key = f"{self.prefix}{i}-{j:05d}"
            value = f"{key}:{uuid.uuid4().hex}".encode()
            try:
                ack = cl.put(key, value)
            except Exception as e:
                with self.lock:
                    self.errors.append(f"{key}: {e!r}")
                return
            with self.lock:
                self.acks.append(ack)
            j += 1
            if self.pace:
                time.sleep(self.pace)

    def start(self) -> "Writers":
        for t in self.threads:
            t.start()
        return self

    def count(self) -> int:
        with self.lock:
            return len(self.acks)

    def wait_count(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < n:
            assert not self.errors, f"writers failed: {self.errors}"
            assert time.monotonic() < deadline, (
                f"only {self.count()} of {n} writes acknowledged in {timeout}s")
            time.sleep(0.01)

    def stop(self, timeout: float | None = None) -> list[Ack]:
        self.stop_ev.set()
        deadline = time.monotonic() + (timeout or self.budget + 10)
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, f"writer threads did not finish: {alive}"
        assert not self.errors, f"writes failed within their retry budget: {self.errors}"
        return list(self.acks)

    def first_ack_after(self, t: float, exclude=()) -> Ack | None:
        with self.lock:
            later = [a for a in self.acks if a.t_ack > t and a.node not in exclude]
        return min(later, key=lambda a: a.t_ack) if later else None


def write_many(cluster: Cluster, n: int, prefix: str, threads: int = 4,
               budget: float = 30.0, nodes=None) -> list[Ack]:
    """n acknowledged writes with distinct keys (threads in parallel)."""
    acks: list[Ack] = []
    errors: list[str] = []
    lock = threading.Lock()

    def run(i):
        cl = cluster.client(budget=budget, nodes=nodes)
        for j in range(i, n, threads):
            key = f"{prefix}-{j:05d}"
            try:
                a = cl.put(key, f"{key}:{uuid.uuid4().hex}".encode())
            except Exception as e:
                with lock:
                    errors.append(f"{key}: {e!r}")
                return
            with lock:
                acks.append(a)

    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(budget + 10)
    assert not any(t.is_alive() for t in ts), "write_many threads hang"
    assert not errors, f"writes failed: {errors}"
    assert len(acks) == n
    return acks


def verify_acked(cluster: Cluster, acks: list[Ack], ids=None,
                 linearizable: bool = True) -> None:
    """Every acknowledged write is visible with its value: through the
    leader (linearizable), and on each replica of `ids` (stale reads,
    call after wait_converged)."""
    ids = ids or cluster.ids
    latest: dict[str, Ack] = {}
    for a in acks:
        if a.key not in latest or a.index > latest[a.key].index:
            latest[a.key] = a
    cl = cluster.client(budget=20.0)
    sess = cluster.new_session()
    missing = []
    for key, a in sorted(latest.items()):
        if linearizable:
            v = cl.get(key)
            if v != a.value:
                missing.append(f"{key}: leader has {v!r}, acked {a.value!r} at {a.index}")
        for rid in ids:
            r = sess.get(cluster.url(rid, f"/kv/{key}"),
                         params={"consistency": "stale"}, timeout=(1.0, 5.0))
            if r.status_code != 200 or r.content != a.value:
                missing.append(f"{key}: node {rid} stale read {r.status_code} "
                               f"{r.content[:80]!r}, acked {a.value!r} at {a.index}")
        if len(missing) > 20:
            break
    assert not missing, f"acknowledged writes lost or wrong ({len(missing)}+):\n" + \
        "\n".join(missing[:20])


# ---- fixtures ----------------------------------------------------------------------------

@pytest.fixture
def cluster_factory(request, tmp_path):
    clusters: list[Cluster] = []
    request.node._agenda_clusters = clusters

    def make(**kw) -> Cluster:
        c = Cluster(tmp_path / f"cluster{len(clusters)}", **kw)
        clusters.append(c)
        return c

    def fin():
        errors = []
        for c in clusters:
            try:
                c.cleanup()
            except Exception as e:
                errors.append(repr(e))
        if errors:
            raise RuntimeError("; ".join(errors))

    request.addfinalizer(fin)
    return make


@pytest.fixture
def cluster(cluster_factory) -> Cluster:
    """A started three-replica shard with a leader."""
    c = cluster_factory()
    c.start_all()
    return c
