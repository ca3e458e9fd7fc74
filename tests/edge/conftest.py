"""Harness for the edge tests (tests/edge): the packaged /usr/sbin/nginx
with ngx_http_agenda_module and nchan, configured by config/gen-nginx.

An `Edge` is one nginx: a runtime directory of its own (configuration, pid
file, logs, temporary files), free ports for HTTPS and the HTTP redirect,
and the development TLS material of config/dev-certs.  `start()` runs nginx
in the foreground (`-g 'daemon off;'`) as a child; `stop()` signals exactly
that PID (SIGTERM, then SIGKILL) and waits for it, and a finalizer does so
even when the test fails.  On a failure the tail of nginx's error log and
stderr are attached to the report.  `Agents` runs raft_agents for every
shard of a test topology (fixture `stack`: agents plus an nginx in front).

Environment: AGENDA_MODULE (absolute path of ngx_http_agenda_module.so;
default build/nginx/ngx_http_agenda_module.so of the repository).
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# the helpers every test directory shares (tests/ports.py)
sys.path.insert(0, str(REPO / "tests"))
from ports import free_ports as ports_below_ephemeral  # noqa: E402
NGINX = "/usr/sbin/nginx"
GEN_NGINX = REPO / "config" / "gen-nginx"
DEV_CERTS = REPO / "config" / "dev-certs"
TOPOLOGY = REPO / "config" / "topology.json"
MODULE = Path(os.environ.get("AGENDA_MODULE")
              or REPO / "build" / "nginx" / "ngx_http_agenda_module.so")

# Ports of the dev cluster and of `make run`'s edge: never hand them out.
RESERVED_PORTS = set(range(7000, 7400)) | {8080, 8443}


def free_ports(n: int) -> list[int]:
    """n distinct ports that were free a moment ago, below the kernel's
    ephemeral range (tests/ports.py), outside the ports `make run` uses."""
    return ports_below_ephemeral(n, RESERVED_PORTS)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace")
                         .splitlines()[-lines:])
    except OSError as e:
        return f"({path}: {e.strerror})"


class Edge:
    """One nginx with a generated configuration, in its own directory."""

    def __init__(self, root: Path, tls_dir: Path,
                 topology: Path = TOPOLOGY):
        self.root = root
        self.tls_dir = tls_dir
        self.topology = topology
        self.https_port, self.http_port = free_ports(2)
        self.conf = root / "nginx.conf"
        self.proc: subprocess.Popen | None = None
        self.stderr_path = root / "logs" / "stderr.log"

    # -- configuration ----------------------------------------------------

    def generate(self, *extra: str) -> None:
        """Runs config/gen-nginx into the edge's directory."""
        subprocess.run(
            ["/usr/bin/python3", str(GEN_NGINX), "--out", str(self.root),
             "--topology", str(self.topology), "--module", str(MODULE),
             "--tls-dir", str(self.tls_dir), "--workers", "1",
             "--https-port", str(self.https_port),
             "--http-port", str(self.http_port), *extra],
            check=True, capture_output=True, text=True, timeout=30)

    def check(self) -> subprocess.CompletedProcess:
        """`nginx -t` on the configuration; never raises on failure."""
        return subprocess.run(
            [NGINX, "-t", "-p", str(self.root), "-c", str(self.conf)],
            capture_output=True, text=True, timeout=30)

    # -- process ----------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None, "already started"
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [NGINX, "-p", str(self.root), "-c", str(self.conf),
                 "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"nginx exited with status {self.proc.returncode}:\n"
                    + tail(self.stderr_path))
            if self._listening(self.https_port) and \
                    self._listening(self.http_port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen within {timeout}s:\n"
                           + self.logs())

    @staticmethod
    def _listening(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM to the master we started (it stops its workers), then
        SIGKILL after timeout seconds."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)

    def logs(self) -> str:
        return (f"== {self.root}/logs/error.log\n"
                + tail(self.root / "logs" / "error.log")
                + f"\n== {self.stderr_path}\n" + tail(self.stderr_path))

    # -- clients ----------------------------------------------------------

    def tls_context(self, version: ssl.TLSVersion | None = None
                    ) -> ssl.SSLContext:
        """A client context that trusts the dev CA; pinned to one protocol
        version when version is given."""
        ctx = ssl.create_default_context(cafile=str(self.tls_dir / "ca.pem"))
        if version is not None:
            ctx.minimum_version = version
            ctx.maximum_version = version
        return ctx

    def https(self, method: str, path: str,
              ctx: ssl.SSLContext | None = None, body: bytes | None = None,
              headers: dict | None = None):
        """One request over HTTPS; returns (response, body bytes, the
        TLS version and cipher used)."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.https_port, timeout=5,
            context=ctx or self.tls_context())
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            sock = conn.sock
            return resp, data, sock.version(), sock.cipher()[0]
        finally:
            conn.close()

    def http(self, method: str, path: str):
        """One request over plain HTTP; returns (response, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                          timeout=5)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp, resp.read()
        finally:
            conn.close()


def json_body(data: bytes):
    return json.loads(data.decode("utf-8"))


# ---- fixtures --------------------------------------------------------------

def _private_dir(prefix: str) -> Path:
    """A directory nginx's workers can traverse: they run as an
    unprivileged user when the master is root, and pytest's tmp_path is
    0700."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(d, 0o755)
    return d


@pytest.fixture(scope="session")
def tls_dir():
    """Development TLS material made by config/dev-certs, once per
    session."""
    if not MODULE.is_file():
        pytest.exit(f"{MODULE} not found: run `make module` first", 2)
    d = _private_dir("agenda-edge-tls-")
    subprocess.run([str(DEV_CERTS), str(d)], check=True,
                   capture_output=True, timeout=60)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_edge(request, tls_dir):
    """Factory: make_edge(topology=...) -> an Edge (not generated, not
    started).  Every edge is stopped and its directory removed at the end
    of the test."""
    edges: list[Edge] = []

    def make(topology: Path = TOPOLOGY) -> Edge:
        e = Edge(_private_dir("agenda-edge-"), tls_dir, topology)
        edges.append(e)
        request.node._agenda_edges = edges
        return e

    yield make
    for e in edges:
        e.stop()
        shutil.rmtree(e.root, ignore_errors=True)


@pytest.fixture(scope="module")
def edge(request, tls_dir):
    """One running edge with the repository's topology, shared by the
    tests of a file."""
    e = Edge(_private_dir("agenda-edge-"), tls_dir)
    request.module._agenda_shared_edge = e
    try:
        e.generate()
        e.start()
        yield e
    finally:
        e.stop()
        shutil.rmtree(e.root, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    edges = list(getattr(item, "_agenda_edges", []))
    shared = getattr(item.module, "_agenda_shared_edge", None)
    if shared is not None:
        edges.append(shared)
    agents = getattr(item.module, "_agenda_agents", None)
    if agents is not None:
        rep.sections.append(("agent logs", agents.logs()))
    for e in edges:
        try:
            rep.sections.append((f"nginx logs ({e.root})", e.logs()))
        except Exception as ex:  # never hide the real failure
            rep.sections.append(("nginx logs", f"cannot read logs: {ex!r}"))


# ---- agents: every shard of a test topology --------------------------------

BUILD = Path(os.environ.get("AGENDA_BUILD") or REPO / "build" / "release")
AGENT = BUILD / "raft_agent"

# Fast Raft timing: elections within ~200 ms, heartbeats every 20 ms.
FAST_RAFT = {"tick_ms": 10, "election_ticks": 10, "heartbeat_ticks": 2,
             "snapshot_threshold": 10000, "map_size_mb": 64}


class Agents:
    """Every shard of a four-shard topology (events_am, events_nz, groups,
    users) on free loopback ports, data and logs under root.  events_am has
    `replicas` replicas (the failover tests kill its leader); the others
    have `others` each, to spare the two cores.  Processes are stopped by
    their own PID."""

    SHARDS = (("events_am", "events", {"from": "", "to": "n"}),
              ("events_nz", "events", {"from": "n", "to": ""}),
              ("groups", "groups", None), ("users", "users", None))

    def __init__(self, root: Path, replicas: int = 3, others: int = 1,
                 raft: dict | None = None, internal_tls: bool = False):
        if not AGENT.is_file():
            pytest.exit(f"{AGENT} not found: run `make all` first", 2)
        self.root = root
        self.procs: dict[tuple[str, int], subprocess.Popen] = {}
        # extra environment of a replica's process (an LD_PRELOAD shim)
        self.env: dict[tuple[str, int], dict[str, str]] = {}
        counts = [replicas] + [others] * (len(self.SHARDS) - 1)
        ports = iter(free_ports(2 * sum(counts)))
        shards = []
        self.http_ports: dict[tuple[str, int], int] = {}
        for (name, kind, rng), n in zip(self.SHARDS, counts):
            reps = []
            for i in range(1, n + 1):
                hp, rp = next(ports), next(ports)
                reps.append({"id": i, "name": f"{name}-{i}",
                             "server": f"server{i}", "http_port": hp,
                             "raft_port": rp})
                self.http_ports[(name, i)] = hp
            sh = {"name": name, "kind": kind, "replicas": reps}
            if rng is not None:
                sh["range"] = rng
            shards.append(sh)
        topo = {"version": 1, "cluster": "agenda-edge-test",
                "raft": dict(FAST_RAFT, **(raft or {})),
                "data_dir": str(root / "data"),
                "servers": [{"name": f"server{i}", "host": "127.0.0.1"}
                            for i in range(1, max(counts) + 1)],
                "shards": shards}
        self.topology = root / "topology.json"
        (root / "logs").mkdir(parents=True, exist_ok=True)
        # Internal TLS: the agents' certificates and the edge's, from
        # config/dev-internal-certs; this harness calls them as the edge.
        self.tls_context: ssl.SSLContext | None = None
        if internal_tls:
            topo["internal_tls"] = {"dir": str(root / "internal-tls")}
        self.topology.write_text(json.dumps(topo, indent=2))
        if internal_tls:
            d = root / "internal-tls"
            subprocess.run([str(REPO / "config" / "dev-internal-certs"),
                            "--topology", str(self.topology)], check=True,
                           capture_output=True, timeout=120)
            ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
            ctx.check_hostname = False   # dialled by address
            ctx.load_cert_chain(str(d / "edge.pem"), str(d / "edge.key"))
            self.tls_context = ctx

    def log_path(self, shard: str, rid: int) -> Path:
        return self.root / "logs" / f"{shard}-{rid}.log"

    def start(self, shard: str, rid: int) -> None:
        data = self.root / "data" / f"{shard}-{rid}"
        data.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(shard, rid), "ab") as log:
            self.procs[(shard, rid)] = subprocess.Popen(
                [str(AGENT), "--topology", str(self.topology),
                 "--shard", shard, "--node", str(rid), "--data-dir",
                 str(data), "--log-level", "warn"],
                env=dict(os.environ, **self.env.get((shard, rid), {})),
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def start_all(self, timeout: float = 20.0) -> None:
        for key in self.http_ports:
            self.start(*key)
        for shard in {s for s, _ in self.http_ports}:
            self.wait_for_leader(shard, timeout)

    def status(self, shard: str, rid: int) -> dict | None:
        p = self.procs.get((shard, rid))
        if p is None or p.poll() is not None:
            return None
        try:
            port = self.http_ports[(shard, rid)]
            conn = http.client.HTTPSConnection(
                "127.0.0.1", port, timeout=1, context=self.tls_context) \
                if self.tls_context else \
                http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                conn.request("GET", "/status")
                resp = conn.getresponse()
                body = resp.read()
                return json.loads(body) if resp.status == 200 else None
            finally:
                conn.close()
        except (OSError, ValueError):
            return None

    def wait_for_leader(self, shard: str, timeout: float = 15.0,
                        exclude=()) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leaders = []
            for (s, rid) in self.http_ports:
                if s != shard or rid in exclude:
                    continue
                st = self.status(s, rid)
                if st and st.get("role") == "leader":
                    leaders.append((st["term"], rid))
            if leaders:
                return max(leaders)[1]
            time.sleep(0.05)
        raise RuntimeError(f"no leader in {shard} within {timeout}s:\n"
                           + self.logs())

    def revive(self, shard: str, timeout: float = 15.0) -> None:
        """Start again the replicas of shard that are not running (an
        earlier test killed them) and wait until every one answers."""
        for (s, rid), p in list(self.procs.items()):
            if s == shard and p.poll() is not None:
                self.start(s, rid)
        deadline = time.monotonic() + timeout
        for (s, rid) in self.http_ports:
            while s == shard and self.status(s, rid) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{s}-{rid} did not come back:\n"
                                       + self.logs())
                time.sleep(0.05)

    def kill(self, shard: str, rid: int) -> None:
        p = self.procs.get((shard, rid))
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def logs(self) -> str:
        out = []
        for (s, rid) in self.http_ports:
            out.append(f"== {s}-{rid}\n" + tail(self.log_path(s, rid), 15))
        return "\n".join(out)


@contextlib.contextmanager
def started_stack(request, tls_dir, name: str, generate: tuple,
                  replicas: int = 3, internal_tls: bool = False,
                  agent_env=None):
    """Agents for every shard (events_am with `replicas` replicas) and one
    nginx generated with `generate` in front of them, for the tests of a
    file (module-scoped fixtures): yields (agents, edge); everything is
    stopped by PID and removed at the end, even on failure.  agent_env,
    if given, is called with (root, shard, rid) for the extra environment
    of that replica."""
    root = _private_dir(f"agenda-{name}-agents-")
    agents = Agents(root, replicas=replicas, internal_tls=internal_tls)
    if agent_env is not None:
        for key in agents.http_ports:
            agents.env[key] = agent_env(root, *key)
    e = Edge(_private_dir(f"agenda-{name}-"), tls_dir, agents.topology)
    request.module._agenda_shared_edge = e
    request.module._agenda_agents = agents
    try:
        agents.start_all()
        e.generate(*generate)
        e.start()
        yield agents, e
    finally:
        e.stop()
        agents.stop_all()
        shutil.rmtree(e.root, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


# gen-nginx options of the shared stacks: a retry budget that outlasts an
# election on a loaded machine, and login limits tests do not trip over
STACK_ARGS = ("--retry-budget", "8s", "--auth-rate", "100r/s",
              "--auth-burst", "200")


@pytest.fixture(scope="module")
def stack(request, tls_dir):
    """Agents for every shard plus one nginx in front of them, shared by
    the tests of a file: (agents, edge)."""
    with started_stack(request, tls_dir, "edge", STACK_ARGS) as s:
        yield s
