"""config/gen-agents: one config per replica, generated from the topology.

Every config written for the repository's own topology is accepted by the
agent (`raft_agent --config FILE --check`), and what the agent says it would
run as — shard, replica, ports, peers, data directory — is what the
topology says.  A topology that breaks a rule spanning shards is refused
although each shard's file alone would pass, and a refused generation
replaces nothing.  The directory is gen-agents' own: a replica that left
the topology loses its config, other files stay, and a directory of
someone else's files is not touched.  (Every other test of this directory starts its agents from such
configs: see conftest.py.)
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import AGENT, GEN_AGENTS, REPO

TOPOLOGY = REPO / "config" / "topology.json"


def gen(out: Path, *args: str, topology: Path = TOPOLOGY):
    return subprocess.run(
        ["/usr/bin/python3", str(GEN_AGENTS), "--out", str(out),
         "--topology", str(topology), *args],
        capture_output=True, text=True, timeout=60)


def check(path: Path) -> dict[str, str]:
    r = subprocess.run([str(AGENT), "--config", str(path), "--check"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{path.name} refused: {r.stderr}"
    return dict(line.split(" ", 1) for line in r.stdout.splitlines())


def test_every_replica_gets_a_config_the_agent_runs_as_the_topology_says(
        tmp_path):
    topo = json.loads(TOPOLOGY.read_text())
    hosts = {s["name"]: s["host"] for s in topo["servers"]}
    r = gen(tmp_path / "agents", "--data-root", "/srv/agenda",
            "--check-with", str(AGENT))
    assert r.returncode == 0, r.stderr
    written = sorted(p.name for p in (tmp_path / "agents").glob("*.json"))
    want = sorted(f"{s['name']}-{rep['name']}.json"
                  for s in topo["shards"] for rep in s["replicas"])
    assert written == want
    for s in topo["shards"]:
        for rep in s["replicas"]:
            path = tmp_path / "agents" / f"{s['name']}-{rep['name']}.json"
            doc = json.loads(path.read_text())
            # the agent's shard only, and only the servers it runs on
            assert doc["shard"] == s
            assert "shards" not in doc
            assert {sv["name"] for sv in doc["servers"]} == \
                {x["server"] for x in s["replicas"]}
            facts = check(path)
            host = hosts[rep["server"]]
            assert facts["shard"] == f"{s['name']} ({s['kind']})"
            assert facts["node"] == f"{rep['id']} ({rep['name']})"
            assert facts["http"] == f"{host}:{rep['http_port']}"
            assert facts["raft"] == f"{host}:{rep['raft_port']}"
            assert facts["data_dir"] == \
                f"/srv/agenda/{s['name']}/{rep['name']}"
            peers = sorted(f"{x['id']}={hosts[x['server']]}:{x['raft_port']}"
                           for x in s["replicas"] if x is not rep)
            assert sorted(facts["peers"].split()) == peers


def test_listen_and_log_level_reach_the_agent_and_options_override(
        tmp_path):
    r = gen(tmp_path, "--listen", "0.0.0.0", "--log-level", "debug")
    assert r.returncode == 0, r.stderr
    path = tmp_path / "groups-node4.json"
    assert json.loads(path.read_text())["agent"]["log_level"] == "debug"
    facts = check(path)
    assert facts["http"].startswith("0.0.0.0:")
    # the topology's data_dir, relative to the agent's working directory
    assert facts["data_dir"] == "var/data/groups/node4"
    r = subprocess.run([str(AGENT), "--config", str(path), "--check",
                        "--listen", "127.0.0.2", "--data-dir", "/tmp/x"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "http 127.0.0.2:" in r.stdout and "data_dir /tmp/x" in r.stdout


def test_a_replica_gone_from_the_topology_loses_its_config(tmp_path):
    out = tmp_path / "agents"
    assert gen(out).returncode == 0
    assert (out / "users-node7.json").exists()
    topo = json.loads(TOPOLOGY.read_text())
    users = next(s for s in topo["shards"] if s["name"] == "users")
    users["replicas"] = users["replicas"][:2]
    smaller = tmp_path / "topology.json"
    smaller.write_text(json.dumps(topo))
    r = gen(out, topology=smaller)
    assert r.returncode == 0, r.stderr
    assert not (out / "users-node7.json").exists()
    assert (out / "users-node4.json").exists()
    assert len(list(out.glob("*.json"))) == \
        sum(len(s["replicas"]) for s in topo["shards"])


def test_files_it_did_not_write_stay(tmp_path):
    out = tmp_path / "agents"
    assert gen(out).returncode == 0
    mine = out / "topology.json"
    mine.write_text("{}")
    assert gen(out).returncode == 0
    assert mine.read_text() == "{}"


def test_a_rule_across_shards_is_checked_on_the_whole_topology(tmp_path):
    topo = json.loads(TOPOLOGY.read_text())
    nz = next(s for s in topo["shards"] if s["name"] == "events_nz")
    nz["range"]["from"] = "o"  # keys from "n" to "o" would have no shard
    gap = tmp_path / "topology.json"
    gap.write_text(json.dumps(topo))
    out = tmp_path / "agents"
    r = gen(out, "--check-with", str(AGENT), topology=gap)
    assert r.returncode == 1
    assert "gap: keys from \"n\"" in r.stderr, r.stderr
    assert not out.exists() or not list(out.glob("*.json"))
    # each shard's own file would have passed: only the whole shows it
    r = gen(out, topology=gap)
    assert r.returncode == 0, r.stderr
    check(out / "events_nz-node1.json")


def test_a_refused_generation_replaces_nothing(tmp_path):
    out = tmp_path / "agents"
    assert gen(out, "--check-with", str(AGENT)).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    topo = json.loads(TOPOLOGY.read_text())
    users = next(s for s in topo["shards"] if s["name"] == "users")
    users["replicas"][2]["http_port"] = users["replicas"][2]["raft_port"]
    bad = tmp_path / "topology.json"
    bad.write_text(json.dumps(topo))
    r = gen(out, "--check-with", str(AGENT), "--log-level", "debug",
            topology=bad)
    assert r.returncode == 1, r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_directory_it_did_not_make_is_left_alone(tmp_path):
    mine = tmp_path / "notes.json"
    mine.write_text("{}")
    r = gen(tmp_path)
    assert r.returncode == 1
    assert "not made by gen-agents" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json"]


def test_a_config_the_agent_refuses_fails_generation_with_its_message(
        tmp_path):
    topo = json.loads(TOPOLOGY.read_text())
    topo["shards"][0]["replicas"][1]["raft_port"] = \
        topo["shards"][0]["replicas"][0]["raft_port"]
    bad = tmp_path / "topology.json"
    bad.write_text(json.dumps(topo))
    r = gen(tmp_path / "agents", "--check-with", str(AGENT), topology=bad)
    assert r.returncode == 1
    assert "refused by the agent" in r.stderr
    assert "shards[0].replicas[1].raft_port" in r.stderr
    assert "is already used by shards[0].replicas[0].raft_port" in r.stderr


def test_malformed_topologies_and_options_are_reported(tmp_path):
    bad = tmp_path / "topology.json"
    for text, want in (("[1]", "not a JSON object"),
                       ("{\"version\": 1}", "malformed topology"),
                       ("{", "not JSON"),
                       ('{"servers": [], "shards": [{"name": "a b"}]}',
                        "shards[0].name: not a valid name")):
        bad.write_text(text)
        r = gen(tmp_path / "agents", topology=bad)
        assert r.returncode == 1 and want in r.stderr, (text, r.stderr)
    r = gen(tmp_path / "agents", "--listen", "0.0.0.0/0")
    assert r.returncode == 1 and "--listen" in r.stderr
    r = gen(tmp_path / "agents", "--log-level", "loud")
    assert r.returncode == 2 and "--log-level" in r.stderr


def test_a_file_the_agent_refuses_replaces_nothing(tmp_path):
    """The whole topology passes; one written file does not (a data root
    longer than an agent reads): the refusal names that file, and the
    directory keeps its earlier configs, with no temporary left."""
    out = tmp_path / "agents"
    assert gen(out, "--check-with", str(AGENT)).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = gen(out, "--check-with", str(AGENT), "--data-root",
            "/" + "d" * 1100)
    assert r.returncode == 1, r.stderr
    assert ".json refused by the agent" in r.stderr, r.stderr
    assert "agent.data_dir: too long" in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
