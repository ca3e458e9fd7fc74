"""docker/gen-stack: the Docker Swarm stack generated from the topology.

Without a Docker engine (make test-stack deploys it for real): the stack
file parses as YAML, has one service per replica placed on its server's
label (so no two replicas of a shard share a server when the topology
says so) and the edge; the networks, volumes, configs and secrets are
wired as docker/README.md says; every agent config is one the agent
accepts, and runs it as the replica its service is named after, reachable
at its service's name; a changed file gets a new config name and an
unchanged one keeps it; bad input is refused and writes nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml  # Debian python3-yaml

from conftest import AGENT, REPO

GEN_STACK = REPO / "docker" / "gen-stack"
TOPOLOGY = REPO / "config" / "topology.json"
SECRETS = ("server.pem", "server.key", "dhparam.pem", "jwt.key")


@pytest.fixture
def tls(tmp_path) -> Path:
    """Stand-ins for dev-certs' files: gen-stack only passes them on."""
    d = tmp_path / "tls"
    d.mkdir()
    for name in SECRETS:
        (d / name).write_text(f"{name} of this test\n")
        os.chmod(d / name, 0o600)
    return d


def gen(out: Path, tls: Path, *args: str, topology: Path = TOPOLOGY):
    return subprocess.run(
        ["/usr/bin/python3", str(GEN_STACK), "--out", str(out),
         "--tls-dir", str(tls), "--topology", str(topology), *args],
        capture_output=True, text=True, timeout=60)


def load(out: Path) -> dict:
    return yaml.safe_load((out / "stack.yml").read_text())


def service(shard: str, replica: str) -> str:
    return f"{shard}-{replica}".replace("_", "-").lower()


def test_one_service_per_replica_placed_on_its_server(tmp_path, tls):
    out = tmp_path / "out"
    r = gen(out, tls, "--tag", "v7", "--https-port", "443",
            "--http-port", "80", "--check-with", str(AGENT))
    assert r.returncode == 0, r.stderr
    doc = load(out)
    topo = json.loads(TOPOLOGY.read_text())
    expected = {service(s["name"], rep["name"]): (s, rep)
                for s in topo["shards"] for rep in s["replicas"]}
    assert set(doc["services"]) == set(expected) | {"edge"}

    for name, (shard, rep) in expected.items():
        svc = doc["services"][name]
        assert svc["image"] == "agenda/raft_agent:v7"
        assert svc["deploy"]["replicas"] == 1
        assert svc["deploy"]["endpoint_mode"] == "dnsrr"
        assert svc["deploy"]["placement"]["constraints"] == [
            f"node.labels.agenda.server.{rep['server']} == true"]
        assert sorted(svc["networks"]) == ["api-network", "raft-network"]
        assert svc["volumes"] == [{"type": "volume",
                                   "source": f"data-{name}",
                                   "target": "/var/lib/agenda"}]
        assert f"data-{name}" in doc["volumes"]
        assert str(rep["http_port"]) in svc["healthcheck"]["test"][-1]
        (cfg,) = svc["configs"]
        assert cfg["target"] == "/etc/agenda/agent.json"
        assert cfg["mode"] == 0o444
        path = Path(doc["configs"][cfg["source"]]["file"])
        agent = json.loads(path.read_text())
        assert agent["shard"]["name"] == shard["name"]
        assert agent["agent"] == {"node": rep["id"],
                                  "data_dir": f"/var/lib/agenda/"
                                              f"{shard['name']}/{rep['name']}",
                                  "listen": "0.0.0.0"}
        # reached at its service's name, on the topology's ports
        mine = next(x for x in agent["shard"]["replicas"]
                    if x["id"] == rep["id"])
        host = next(s["host"] for s in agent["servers"]
                    if s["name"] == mine["server"])
        assert host == name
        assert (mine["http_port"], mine["raft_port"]) == \
            (rep["http_port"], rep["raft_port"])
    # (each file was checked by raft_agent --check: --check-with above)

    # the shipped topology follows table 3: a shard's replicas on distinct
    # servers, hence on distinct Swarm nodes
    for shard in topo["shards"]:
        placed = [doc["services"][service(shard["name"], r["name"])]
                  ["deploy"]["placement"]["constraints"][0]
                  for r in shard["replicas"]]
        assert len(set(placed)) == len(placed), shard["name"]

    edge = doc["services"]["edge"]
    assert edge["image"] == "agenda/edge:v7"
    assert edge["deploy"]["replicas"] == 1
    assert edge["deploy"]["placement"]["constraints"] == [
        "node.labels.agenda.edge == true"]
    assert sorted(edge["networks"]) == ["api-network", "public-network"]
    assert edge["ports"] == [
        {"target": p, "published": p, "protocol": "tcp", "mode": "host"}
        for p in (443, 80)]
    assert edge["command"][:6] == ["--https-port", "443", "--http-port",
                                   "80", "--server-name", "localhost"]
    assert sorted((s["target"], s["mode"]) for s in edge["secrets"]) == \
        sorted((n, 0o400) for n in SECRETS)
    for s in edge["secrets"]:
        assert Path(doc["secrets"][s["source"]]["file"]) == \
            (tls / s["target"]).resolve()
    (tcfg,) = edge["configs"]
    assert tcfg["target"] == "/etc/agenda/topology.json"
    ctopo = json.loads(Path(doc["configs"][tcfg["source"]]["file"])
                       .read_text())
    assert {s["host"] for s in ctopo["servers"]} == set(expected)

    nets = doc["networks"]
    for n in ("raft-network", "api-network"):
        assert nets[n]["driver"] == "overlay" and nets[n]["internal"] is True
        assert nets[n]["driver_opts"] == {"encrypted": "true"}
    assert nets["public-network"] == {"driver": "overlay"}


def test_names_follow_content_so_a_changed_file_is_a_new_config(tmp_path,
                                                                  tls):
    out = tmp_path / "out"
    assert gen(out, tls).returncode == 0
    first = load(out)
    assert gen(out, tls).returncode == 0
    assert load(out) == first, "an unchanged input changed the stack"

    (tls / "jwt.key").write_text("another secret\n")
    topo = json.loads(TOPOLOGY.read_text())
    topo["raft"]["snapshot_threshold"] = 12345
    changed = tmp_path / "topology.json"
    changed.write_text(json.dumps(topo))
    assert gen(out, tls, topology=changed).returncode == 0
    second = load(out)
    assert set(first["configs"]).isdisjoint(second["configs"])
    old = {k for k in first["secrets"] if k.startswith("jwt-key-")}
    new = {k for k in second["secrets"] if k.startswith("jwt-key-")}
    assert old and new and old != new
    same = {k for k in first["secrets"] if not k.startswith("jwt-key-")}
    assert same <= set(second["secrets"])


def test_no_encrypt_and_edge_arguments(tmp_path, tls):
    out = tmp_path / "out"
    r = gen(out, tls, "--no-encrypt", "--server-name", "agenda.example.org",
            "--edge-arg=--retry-budget=8s")
    assert r.returncode == 0, r.stderr
    doc = load(out)
    assert "driver_opts" not in doc["networks"]["raft-network"]
    cmd = doc["services"]["edge"]["command"]
    assert cmd[cmd.index("--server-name") + 1] == "agenda.example.org"
    assert cmd[-1] == "--retry-budget=8s"


def bad_topology(tmp_path, change) -> Path:
    topo = json.loads(TOPOLOGY.read_text())
    change(topo)
    p = tmp_path / "bad-topology.json"
    p.write_text(json.dumps(topo))
    return p


def rename_shard(i, name):
    def change(t):
        t["shards"][i]["name"] = name
    return change


@pytest.mark.parametrize("case", [
    "missing-key", "readable-key", "tag", "ports", "server-name",
    "edge-arg", "collision", "long-name", "not-json"])
def test_bad_input_is_refused_and_writes_nothing(tmp_path, tls, case):
    args: list[str] = []
    topology = TOPOLOGY
    if case == "missing-key":
        (tls / "server.key").unlink()
        expect = "server.key not found"
    elif case == "readable-key":
        os.chmod(tls / "jwt.key", 0o644)
        expect = "readable by group or others"
    elif case == "tag":
        args = ["--tag", "x y"]
        expect = "--tag: not a docker tag"
    elif case == "ports":
        args = ["--https-port", "8443", "--http-port", "8443"]
        expect = "must differ"
    elif case == "server-name":
        args = ["--server-name", "a b"]
        expect = "--server-name: not a host name"
    elif case == "edge-arg":
        args = ["--edge-arg=--x;rm -rf /"]
        expect = "--edge-arg"
    elif case == "collision":
        # events_nz's replicas would be the services of "events-am" ones
        def change(t):
            t["shards"][0]["name"] = "events-nz"
        topology = bad_topology(tmp_path, change)
        expect = "would both be the service"
    elif case == "long-name":
        topology = bad_topology(tmp_path, rename_shard(2, "g" * 60))
        expect = "is not a DNS label"
    else:
        topology = tmp_path / "garbage.json"
        topology.write_text("{not json")
        expect = "garbage.json"
    out = tmp_path / "out"
    r = gen(out, tls, *args, topology=topology)
    assert r.returncode == 1, r.stdout
    assert expect in r.stderr, r.stderr
    assert not out.exists(), sorted(out.iterdir())


def internal_certs(topology: Path, d: Path) -> None:
    """Stand-ins for dev-internal-certs' files for topology, in d:
    gen-stack checks their names and modes and passes them on, and real
    ones (a CA and 13 certificates) cost seconds per test."""
    topo = json.loads(topology.read_text())
    names = ["ca.pem", "edge.pem", "edge.key"]
    for shard in topo["shards"]:
        for r in shard["replicas"]:
            names += [f"{shard['name']}-{r['name']}.{x}" for x in ("pem",
                                                                   "key")]
    d.mkdir(exist_ok=True)
    for name in names:
        (d / name).write_text(f"{name} of this test\n")
        os.chmod(d / name, 0o600 if name.endswith(".key") else 0o644)


@pytest.fixture
def tls_topology(tmp_path) -> tuple[Path, Path]:
    """The shipped topology with internal TLS, and its certificates."""
    topo = json.loads(TOPOLOGY.read_text())
    d = tmp_path / "internal"
    topo["internal_tls"] = {"dir": str(d)}
    path = tmp_path / "tls-topology.json"
    path.write_text(json.dumps(topo))
    internal_certs(path, d)
    return path, d


def test_internal_tls_gives_each_agent_its_own_certificate(tmp_path, tls,
                                                           tls_topology):
    topology, certs = tls_topology
    out = tmp_path / "out"
    r = gen(out, tls, topology=topology)
    assert r.returncode == 0, r.stderr
    doc = load(out)
    topo = json.loads(topology.read_text())
    for shard in topo["shards"]:
        for rep in shard["replicas"]:
            svc = doc["services"][service(shard["name"], rep["name"])]
            base = f"{shard['name']}-{rep['name']}"
            mine = {s["target"]: s for s in svc["secrets"]}
            assert set(mine) == {"ca.pem", f"{base}.pem", f"{base}.key"}
            for target, s in mine.items():
                assert (s["mode"], s["uid"], s["gid"]) == \
                    (0o400, "10001", "10001")   # the image's agenda user
                assert Path(doc["secrets"][s["source"]]["file"]) == \
                    certs / target
            test = svc["healthcheck"]["test"]
            assert test[-1].startswith("https://127.0.0.1:")
            assert f"/run/secrets/{base}.key" in test
    edge = {s["target"] for s in doc["services"]["edge"]["secrets"]}
    assert edge == set(SECRETS) | {"ca.pem", "edge.pem", "edge.key"}
    ctopo = json.loads((out / "topology.json").read_text())
    assert ctopo["internal_tls"] == {"dir": "/run/secrets"}
    agent = json.loads((out / "agents" / "users-node1.json").read_text())
    assert agent["internal_tls"] == {"dir": "/run/secrets"}


@pytest.mark.parametrize("case", ["missing-cert", "readable-key",
                                  "check-with", "dir-without-tls"])
def test_internal_tls_input_is_checked(tmp_path, tls, tls_topology, case):
    topology, certs = tls_topology
    args: list[str] = []
    if case == "missing-cert":
        (certs / "groups-node4.pem").unlink()
        expect = "groups-node4.pem not found"
    elif case == "readable-key":
        os.chmod(certs / "users-node7.key", 0o640)
        expect = "users-node7.key is readable by group or others"
    elif case == "check-with":
        args = ["--check-with", str(AGENT)]
        expect = "exists only in their containers"
    else:
        topology = TOPOLOGY
        args = ["--internal-tls-dir", str(certs)]
        expect = "the topology has no internal_tls"
    out = tmp_path / "out"
    r = gen(out, tls, *args, topology=topology)
    assert r.returncode == 1, r.stdout
    assert expect in r.stderr, r.stderr
    assert not out.exists(), sorted(out.iterdir())


def test_object_names_fit_swarm_with_a_stack_prefix(tmp_path, tls,
                                                     tls_topology):
    """Swarm names configs and secrets "<stack>_<name>" in at most 64
    characters: with the longest service names a topology allows, every
    name leaves room for a stack name of 16."""
    topology, certs = tls_topology
    topo = json.loads(topology.read_text())
    topo["shards"][2]["name"] = "g" * 40               # the groups shard
    for i, r in enumerate(topo["shards"][2]["replicas"]):
        r["name"] = f"replica{i}" + "x" * 12
    long_topology = tmp_path / "long.json"
    long_topology.write_text(json.dumps(topo))
    internal_certs(long_topology, certs)
    out = tmp_path / "out"
    r = gen(out, tls, topology=long_topology)
    assert r.returncode == 0, r.stderr
    doc = load(out)
    names = list(doc["configs"]) + list(doc["secrets"])
    assert max(len(n) for n in names) <= 64 - len("agenda-t0123456_"), \
        max(names, key=len)
    assert len(set(names)) == len(names)


def test_a_server_name_that_is_not_a_name_is_refused(tmp_path, tls):
    topo = json.loads(TOPOLOGY.read_text())
    topo["servers"][0]["name"] = "s1 == true"
    for shard in topo["shards"]:
        for r in shard["replicas"]:
            if r["server"] == "server1":
                r["server"] = "s1 == true"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(topo))
    r = gen(tmp_path / "out", tls, topology=bad)
    assert r.returncode == 1 and "is not a valid name" in r.stderr, r.stderr
