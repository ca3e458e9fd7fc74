"""config/dev-certs, the edge's development TLS material (the run command
makes it, and its output tells people to trust ca.pem in their browser).

Run twice it keeps what it made; its CA may vouch for this machine's names
only (localhost, 127.0.0.1, ::1), so a browser's trust in it is no use for
any other site even to whoever reads ca.key; a certificate or CA whose key
no longer matches it (an interrupted run) is made again; private keys are
0600.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import DEV_CERTS


def dev_certs(d: Path) -> str:
    r = subprocess.run([str(DEV_CERTS), str(d)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, text=True,
                          timeout=60, check=check)


def leaf(ca: Path, d: Path, name: str, san: str) -> Path:
    """A server certificate for san in d, signed with the key of the CA
    in ca."""
    key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    ext = d / f"{name}.cnf"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-out", str(key))
    openssl("req", "-new", "-key", str(key), "-subj", f"/CN={name}",
            "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca / "ca.pem"),
            "-CAkey", str(ca / "ca.key"), "-CAcreateserial", "-CAserial",
            str(d / f"{name}.srl"), "-days", "30", "-extfile", str(ext),
            "-out", str(crt))
    return crt


def test_made_once_and_kept(tmp_path):
    d = tmp_path / "tls"
    assert "wrote" in dev_certs(d)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    assert set(before) >= {"ca.pem", "ca.key", "server.pem", "server.key",
                           "dhparam.pem", "jwt.key"}
    dev_certs(d)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    for name in ("ca.key", "server.key", "jwt.key"):
        assert (d / name).stat().st_mode & 0o077 == 0, name


def test_the_ca_vouches_for_this_machine_only(tmp_path):
    d = tmp_path / "tls"
    dev_certs(d)
    ca = ["-CAfile", str(d / "ca.pem")]
    assert openssl("verify", *ca, str(d / "server.pem")).returncode == 0
    ok = leaf(d, tmp_path, "local", "DNS:localhost,IP:127.0.0.1")
    assert openssl("verify", *ca, str(ok)).returncode == 0
    for name, san in (("bank", "DNS:bank.example"),
                      ("lan", "IP:192.168.1.10"),
                      ("sneaky", "DNS:localhost,DNS:mail.example")):
        r = openssl("verify", *ca, str(leaf(d, tmp_path, name, san)),
                    check=False)
        assert r.returncode != 0, name
        assert "subtree violation" in r.stdout + r.stderr, r


def test_a_key_that_no_longer_matches_is_made_again(tmp_path):
    d = tmp_path / "tls"
    dev_certs(d)
    other = tmp_path / "other"
    dev_certs(other)
    # an interrupted run: a new server key, the old certificate
    (d / "server.key").write_bytes((other / "server.key").read_bytes())
    out = dev_certs(d)
    assert "server.pem" in out and "ca.pem" not in out
    # the same with the CA: both made again, and they verify
    (d / "ca.key").write_bytes((other / "ca.key").read_bytes())
    out = dev_certs(d)
    assert "ca.pem" in out and "server.pem" in out
    for crt, key in (("ca.pem", "ca.key"), ("server.pem", "server.key")):
        pub = openssl("x509", "-in", str(d / crt), "-noout", "-pubkey")
        priv = openssl("pkey", "-in", str(d / key), "-pubout")
        assert pub.stdout == priv.stdout, crt
    assert openssl("verify", "-CAfile", str(d / "ca.pem"),
                   str(d / "server.pem")).returncode == 0
