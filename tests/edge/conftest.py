"""Harness for the edge tests (tests/edge): the packaged /usr/sbin/nginx
with ngx_http_agenda_module and nchan, configured by config/gen-nginx.

An `Edge` is one nginx: a runtime directory of its own (configuration, pid
file, logs, temporary files), free ports for HTTPS and the HTTP redirect,
and the development TLS material of config/dev-certs.  `start()` runs nginx
in the foreground (`-g 'daemon off;'`) as a child; `stop()` signals exactly
that PID (SIGTERM, then SIGKILL) and waits for it, and a finalizer does so
even when the test fails.  On a failure the tail of nginx's error log and
stderr are attached to the report.  No agents are needed yet.

Environment: AGENDA_MODULE (absolute path of ngx_http_agenda_module.so;
default build/nginx/ngx_http_agenda_module.so of the repository).
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NGINX = "/usr/sbin/nginx"
GEN_NGINX = REPO / "config" / "gen-nginx"
DEV_CERTS = REPO / "config" / "dev-certs"
TOPOLOGY = REPO / "config" / "topology.json"
MODULE = Path(os.environ.get("AGENDA_MODULE")
              or REPO / "build" / "nginx" / "ngx_http_agenda_module.so")

# Ports of the dev cluster and of `make run`'s edge: never hand them out.
RESERVED_PORTS = set(range(7000, 7400)) | {8080, 8443}


def free_ports(n: int) -> list[int]:
    """n distinct ports that were free a moment ago (bound together to
    port 0, then closed), outside the ports `make run` uses."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            p = s.getsockname()[1]
            if p not in RESERVED_PORTS and p not in ports:
                ports.append(p)
    finally:
        for s in socks:
            s.close()
    return ports


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
    for e in edges:
        try:
            rep.sections.append((f"nginx logs ({e.root})", e.logs()))
        except Exception as ex:  # never hide the real failure
            rep.sections.append(("nginx logs", f"cannot read logs: {ex!r}"))
