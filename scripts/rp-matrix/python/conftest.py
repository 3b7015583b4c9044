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
import hashlib
import json
import os
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from importlib.metadata import version as dist_version
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

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


def plain_refresh_grant(metadata: dict, refresh_token: str, client_id: str) -> dict:
    """RFC 6749 §6 as a plain form POST (public client: client_id in the body)."""
    resp = requests.post(
        metadata["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, (
        f"refresh for {client_id} answered {resp.status_code}: {resp.text[:200]}"
    )
    return resp.json()


def jwks_key(metadata: dict, kid: str) -> dict:
    """The published JWK with this kid (the JWKS fetched with requests), or a
    failure that shows what the JWKS has."""
    resp = requests.get(metadata["jwks_uri"], timeout=TIMEOUT)
    assert resp.status_code == 200, f"the JWKS answered {resp.status_code}: {resp.text[:200]}"
    keys = resp.json().get("keys", [])
    found = [k for k in keys if k.get("kid") == kid]
    shown = [{f: k.get(f) for f in ("kty", "crv", "alg", "use", "kid")} for k in keys]
    assert len(found) == 1, f"{len(found)} keys with kid {kid!r} in the JWKS: {shown}"
    return found[0]


# --- browser login without a browser ---------------------------------------------
#
# The hosted login page driven with plain HTTP, as a browser without
# JavaScript would: follow the authorization request to the login page, post
# its form (hidden fields included) with the cookies the server set, and
# stop at the redirect to the client's redirect_uri, which is a loopback URI
# nobody listens on: its Location is the authorization response.

REDIRECT_URI = "http://127.0.0.1/callback"  # registered for spa, spring, webapp


class _Forms(HTMLParser):
    """The forms of a page: action, input name -> value, label texts; the
    text of role="alert" elements (the page's error message) and of <main>."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.labels: list[str] = []
        self.alerts: list[str] = []
        self.main: list[str] = []
        self._form = None
        self._label = None
        self._alert_depth = 0
        self._in_main = False

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "main":
            self._in_main = True
        if tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get").lower(), "fields": {}}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            self._form["fields"][a["name"]] = a.get("value", "")
        elif tag == "label":
            self._label = []
        if a.get("role") == "alert" or self._alert_depth:
            self._alert_depth += 1
            if self._alert_depth == 1:
                self.alerts.append("")

    def handle_endtag(self, tag):
        if tag == "main":
            self._in_main = False
        if tag == "form":
            self._form = None
        elif tag == "label" and self._label is not None:
            self.labels.append(" ".join("".join(self._label).split()))
            self._label = None
        if self._alert_depth:
            self._alert_depth -= 1

    def handle_data(self, data):
        if self._in_main:
            self.main.append(data)
        if self._label is not None:
            self._label.append(data)
        if self._alert_depth:
            self.alerts[-1] += data


def _parse(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser


def _page_says(resp: requests.Response) -> str:
    """What a page answer says, for a failure message: its alert, else the
    text of its <main>, else the start of the body."""
    if "html" in resp.headers.get("content-type", ""):
        page = _parse(resp.text)
        alerts = [" ".join(a.split()) for a in page.alerts if a.strip()]
        if alerts:
            return "; ".join(alerts)[:200]
        if page.main:
            return " ".join(" ".join(page.main).split())[:200]
    return " ".join(resp.text.split())[:200]


def _redirect(resp: requests.Response, step: str, statuses=(302, 303)) -> str:
    assert resp.status_code in statuses, (
        f"{step} answered {resp.status_code} (expected {' or '.join(map(str, statuses))}): {_page_says(resp)}"
    )
    location = resp.headers.get("location")
    assert location, f"{step} answered {resp.status_code} without a Location"
    return urljoin(resp.url, location)


def login_through_pages(browser: requests.Session, authorization_url: str, email: str, password: str) -> str:
    """Follows `authorization_url` through the hosted login page with the
    cookies in `browser`; returns the authorization response (the URL the
    server sends the browser to), not followed. With a live login session
    (single sign-on) there is no login page on the way."""
    resp = browser.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    where = _redirect(resp, "GET /oauth/authorize", (302,))
    if not where.startswith(f"{ISSUER}/login?"):
        return where

    resp = browser.get(where, allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 200, f"GET /login answered {resp.status_code}: {_page_says(resp)}"
    page = _parse(resp.text)
    forms = [f for f in page.forms if f["method"] == "post" and urlsplit(urljoin(where, f["action"])).path == "/login"]
    assert forms, "the login page has no form posting to /login"
    fields = dict(forms[0]["fields"])
    for name in ("csrf", "continue", "username", "password"):
        assert name in fields, f"the login form has no field {name!r}: {sorted(fields)}"
    for label in ("Email or username", "Password"):
        assert label in page.labels, f"the login form has no label {label!r}: {page.labels}"
    fields.update(username=email, password=password)

    # A browser sends its Origin with a form POST.
    resp = browser.post(urljoin(where, forms[0]["action"]), data=fields, headers={"Origin": ISSUER},
                        allow_redirects=False, timeout=TIMEOUT)
    back = _redirect(resp, "POST /login", (303,))
    assert back.startswith(f"{ISSUER}/oauth/authorize?"), f"POST /login sent the browser to {back}"
    resp = browser.get(back, allow_redirects=False, timeout=TIMEOUT)
    return _redirect(resp, "GET /oauth/authorize after the login", (302,))


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_response(url: str, redirect_uri: str = REDIRECT_URI) -> dict:
    """The parameters of an authorization response at `redirect_uri`; fails
    on an error response or a redirect elsewhere."""
    base, _, query = url.partition("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    assert base == redirect_uri, f"the browser was sent to {url[:300]}, not to {redirect_uri}"
    assert "error" not in params, f"authorization error: {params}"
    assert params.get("code"), f"no code in {url[:300]}"
    return params


def plain_code_flow(metadata: dict, email: str, password: str, client_id: str, client_secret: str | None = None,
                    scope: str = "openid profile email offline_access", nonce: str | None = None) -> dict:
    """Tokens from the authorization code flow with PKCE done by hand
    (requests only): the fixture for checks about what the tokens are."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": scope,
             "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
    if nonce:
        query["nonce"] = nonce
    with requests.Session() as browser:
        url = login_through_pages(browser, f"{ISSUER}/oauth/authorize?{urlencode(query)}", email, password)
    params = authorization_response(url)
    assert params.get("state") == state, f"setup: state came back as {params.get('state')!r}"
    data = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}
    auth = None
    if client_secret is None:
        data["client_id"] = client_id
    else:
        auth = (client_id, client_secret)
    resp = requests.post(metadata["token_endpoint"], data=data, auth=auth, timeout=TIMEOUT)
    assert resp.status_code == 200, (
        f"setup: code exchange for {client_id} answered {resp.status_code}: {resp.text[:200]}"
    )
    return resp.json()
