"""Relying-party matrix, Python side: fixtures and the result recorder.

run.sh starts a Gatehouse and sets:
  RP_ISSUER        its public URL (the issuer)
  RP_BACKEND       sqlite | postgres (a label for the results)
  RP_RESULTS       JSON-lines file the results are appended to
  RP_GATEHOUSE_BIN, RP_GATEHOUSE_CONFIG
                   the server binary and its config, used only to create a
                   test user with `gatehouse users create` when registration
                   over HTTP fails (so one broken endpoint does not hide the
                   results of every other check; registration has its own
                   cell in the browser row)

Every test marked `@pytest.mark.rp(library, check)` becomes one JSON line:
  {"library", "version", "check", "backend", "result": "pass"|"fail", "detail"}
The version is the installed distribution's, so the table names what ran.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from importlib.metadata import version as dist_version

import pytest
import requests

TIMEOUT = 10  # seconds, every HTTP call
PASSWORD_BASE = "vivid-Meadow-lantern-42"

# Row name in the table -> distribution whose version is reported.
DISTRIBUTIONS = {"authlib": "Authlib", "PyJWT": "PyJWT"}


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run scripts/rp-matrix/run.sh")
    return value


ISSUER = os.environ.get("RP_ISSUER", "").rstrip("/")
BACKEND = os.environ.get("RP_BACKEND", "sqlite")
RESULTS = os.environ.get("RP_RESULTS", "")


def pytest_configure(config):
    if not ISSUER or not RESULTS:
        raise pytest.UsageError("RP_ISSUER and RP_RESULTS must be set: run scripts/rp-matrix/run.sh")


def _detail(report, call) -> str:
    """The failure in one line, with its chain of causes (authlib wraps the
    JOSE error that says which claim was refused)."""
    if call.excinfo is not None:
        parts, exc, seen = [], call.excinfo.value, set()
        while exc is not None and id(exc) not in seen and len(parts) < 4:
            seen.add(id(exc))
            parts.append(f"{type(exc).__name__}: {exc}")
            exc = exc.__cause__ or exc.__context__
        text = " <- caused by ".join(parts)
    else:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr)
    return " ".join(text.split())[:500]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("rp")
    if marker is None:
        return
    # One line per test: the call phase, or a setup that failed (no call then).
    if report.when == "call" or (report.when == "setup" and not report.passed):
        library, check = marker.args
        result = "pass" if report.passed else "fail"
        record = {
            "library": library,
            "version": dist_version(DISTRIBUTIONS.get(library, library)),
            "check": check,
            "backend": BACKEND,
            "result": result,
            "detail": "" if report.passed else _detail(report, call),
        }
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


# --- Gatehouse helpers ---------------------------------------------------------


def jwt_part(token: str, index: int) -> dict:
    """Header (0) or payload (1) of a JWT, unverified: for comparing claims."""
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="session")
def issuer() -> str:
    return ISSUER


@pytest.fixture(scope="session")
def metadata() -> dict:
    """The OIDC discovery document (endpoints come from it, as an RP does)."""
    resp = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert resp.status_code == 200, f"discovery answered {resp.status_code}: {resp.text[:200]}"
    return resp.json()


def _register(email: str, password: str) -> tuple[bool, str]:
    try:
        resp = requests.post(
            f"{ISSUER}/account/register",
            json={"email": email, "password": password, "given_name": "Ada", "client_id": "spa"},
            timeout=TIMEOUT,
        )
    except requests.RequestException as e:
        return False, str(e)
    return resp.status_code == 201, f"HTTP {resp.status_code} {resp.text[:200]}"


def _create_with_cli(email: str, password: str) -> None:
    cmd = [
        _env("RP_GATEHOUSE_BIN"),
        "--config",
        _env("RP_GATEHOUSE_CONFIG"),
        "users",
        "create",
        "--email",
        email,
    ]
    proc = subprocess.run(cmd, input=password, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"gatehouse users create failed: {proc.stderr.strip()[-300:]}")


@pytest.fixture
def user() -> tuple[str, str]:
    """A fresh (email, password): registered over HTTP, or by the CLI if that fails."""
    suffix = secrets.token_hex(6)
    email = f"rp-py-{suffix}@example.com"
    password = f"{PASSWORD_BASE}-{suffix}"
    ok, why = _register(email, password)
    if not ok:
        print(f"rp-matrix: register failed ({why}); creating {email} with the CLI", file=sys.stderr)
        _create_with_cli(email, password)
    return email, password


def plain_password_grant(metadata: dict, email: str, password: str, client_id: str = "spa",
                         scope: str = "openid profile email offline_access") -> dict:
    """Tokens from a plain RFC 6749 form POST (no library involved): the
    fixture for checks that are about something else than getting tokens."""
    resp = requests.post(
        metadata["token_endpoint"],
        data={"grant_type": "password", "username": email, "password": password,
              "client_id": client_id, "scope": scope},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, (
        f"setup: password grant for {client_id} answered {resp.status_code}: {resp.text[:200]}"
    )
    return resp.json()
