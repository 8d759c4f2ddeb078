"""Secrets: key material never enters git, logs or outputs.

- every git-tracked file is scanned for private-key material (PEM markers, a ``"private_key":``
  value, key files by name); tests build their fake keys at run time so the scan stays strict;
- ``auth`` and ``run --engine ee`` with a fake service-account key (the key really is read and
  handed to the credential call, which is stubbed): stdout, stderr and every file of the run
  hold none of the key's distinctive strings;
- ``auth/.gitignore`` ignores keys (``*.json``, ``*.pem``, ``*.p12``, anything) but keeps
  ``README.md`` and itself;
- a key readable by other users is refused with one line saying ``chmod 600``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from helpers.cli import assert_user_error, cli
from helpers.ee import StubServer
from helpers.robust import REPO

PEM = "PRIVATE" + " KEY-----"
SECRET_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7FAKEFAKEgeealtSECRETzz"
KEY_ID = "9f3c0ffee1234567890abcdef0123456789abcd"
MARKERS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r'"private_key"\s*:\s*"'),
    re.compile("-----BEGIN OPENSSH " + "PRIVATE"),
]


def fake_key(path: Path, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            dict(
                type="service_account",
                project_id="fake-proj",
                private_key_id=KEY_ID,
                private_key=f"-----BEGIN {PEM}\n{SECRET_BODY}\n-----END {PEM}\n",
                client_email="robot@fake-proj.iam.gserviceaccount.com",
                client_id="1234",
            )
        )
    )
    os.chmod(path, mode)
    return path


def assert_no_secret(text: str, where: str) -> None:
    for m in MARKERS:
        assert not m.search(text), (where, m.pattern)
    for s in (SECRET_BODY, SECRET_BODY[:24], KEY_ID, "PRIVATE KEY"):
        assert s not in text, (where, s)


def test_git_tracked_files_hold_no_key_material():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    files = [f.decode() for f in files if f]
    assert len(files) > 20
    for rel in files:
        name = rel.rsplit("/", 1)[-1].lower()
        assert not name.endswith((".pem", ".p12", ".pfx", ".key")), rel
        assert not re.search(r"(service.?account|sa-key|credentials).*\.json$", name), rel
        p = REPO / rel
        if not p.is_file() or p.stat().st_size > 5_000_000:
            continue
        text = p.read_bytes().decode("utf-8", "replace")
        for m in MARKERS:
            assert not m.search(text), (rel, m.pattern)


def test_auth_gitignore_keeps_keys_out():
    probes = [
        "auth/sa-key.json",
        "auth/my project key.json",
        "auth/key.pem",
        "auth/cert.p12",
        "auth/sub/key.json",
        "auth/credentials",
    ]
    res = subprocess.run(["git", "check-ignore", "--no-index", *probes], cwd=REPO, capture_output=True, text=True)
    assert sorted(res.stdout.split("\n")[:-1]) == sorted(probes), res.stdout
    for kept in ("auth/README.md", "auth/.gitignore"):
        r = subprocess.run(["git", "check-ignore", "--no-index", kept], cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 1, kept  # 1 = not ignored
    # and key files anywhere else in the repo
    r = subprocess.run(
        ["git", "check-ignore", "--no-index", "key.pem", "notebooks/x.p12"], cwd=REPO, capture_output=True, text=True
    )
    assert r.stdout.split() == ["key.pem", "notebooks/x.p12"]


@pytest.fixture
def no_creds(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("GEE_ALT_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "EE_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)


def test_auth_never_echoes_the_key(no_creds, tmp_path, monkeypatch):
    key = fake_key(tmp_path / "auth" / "sa.json")
    # the fake key reaches google-auth, which rejects it: one line, no key material
    line = assert_user_error(cli("auth", "--key", key, "--project", "p"), "rejected")
    assert_no_secret(line, "auth stderr")
    # accepted (credential and init calls stubbed): the success line names the account, never the key
    import ee

    seen = {}
    monkeypatch.setattr(
        ee, "ServiceAccountCredentials", lambda email, key_file=None: seen.setdefault("c", (email, key_file))
    )
    monkeypatch.setattr(ee, "Initialize", lambda **kw: seen.setdefault("init", kw))
    code, out, err = cli("auth", "--key", key)
    assert code == 0, err
    assert "robot@fake-proj.iam.gserviceaccount.com" in out and "fake-proj" in out
    assert_no_secret(out + err, "auth output")
    assert seen["c"] == ("robot@fake-proj.iam.gserviceaccount.com", str(key))
    # via the environment variable, in a separate process (what a log would capture)
    env = {**os.environ, "GEE_ALT_SERVICE_ACCOUNT_KEY": str(key), "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [__import__("sys").executable, "-m", "gee_alt", "auth", "--project", "p"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert_no_secret(res.stdout + res.stderr, "auth subprocess")


def test_world_readable_key_is_refused_with_chmod_advice(no_creds, tmp_path):
    key = fake_key(tmp_path / "auth" / "sa.json", mode=0o644)
    line = assert_user_error(cli("auth", "--key", key), "readable by other users", "chmod 600")
    assert_no_secret(line, "auth stderr")


def test_ee_run_outputs_and_logs_hold_no_key_material(ee_offline, no_creds, tmp_path, monkeypatch):
    import ee

    from gee_alt.grid import grid_from_bbox

    key = fake_key(tmp_path / "auth" / "sa.json")
    monkeypatch.setattr(ee, "ServiceAccountCredentials", lambda email, key_file=None: object())
    monkeypatch.setattr(ee, "Initialize", lambda **kw: None)
    grid = grid_from_bbox((99.0, 38.0, 99.06, 38.04), 30.0, "EPSG:32647")
    StubServer(grid).install(monkeypatch)
    from gee_alt.science import homogeneity

    # the stub's DDT and site fields are pixel noise
    for metric in ("ddt_cv", "dem_std", "ndvi_std", "dem_std_1km", "ndvi_std_1km", "landcover_impurity_1km"):
        monkeypatch.setitem(homogeneity.DEFAULT_THRESHOLDS, metric, None)
    (tmp_path / "s.toml").write_text(
        "[study]\nyears = [2010, 2012]\n[aoi]\nbbox = [99.0, 38.0, 99.06, 38.04]\n[pull]\ninitial_delay_s = 0.0\n"
    )
    rows = "".join(
        f"S{i},{99.005 + 0.005 * i},{38.01 + 0.002 * i},{y},{1.2 + 0.05 * i}\n"
        for i in range(8)
        for y in (2010, 2011, 2012)
    )
    (tmp_path / "sites.csv").write_text("site_id,lon,lat,year,alt_m\n" + rows)
    code, out, err = cli(
        "run",
        "--engine",
        "ee",
        "--config",
        tmp_path / "s.toml",
        "--key",
        key,
        "--insitu",
        tmp_path / "sites.csv",
        "--out",
        tmp_path / "run",
    )
    assert code == 0, err
    assert_no_secret(out + err, "run output")
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in files)
    for p in files:
        assert_no_secret(p.read_bytes().decode("utf-8", "replace"), str(p))
