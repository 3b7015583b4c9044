"""authlib as a relying party: the requests-based OAuth2Session (which sends
`Content-Type: application/x-www-form-urlencoded;charset=UTF-8`) against the
token, revocation and introspection endpoints, and authlib's RFC 9068
JWTBearerTokenValidator for the access token."""

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator

from conftest import ISSUER, TIMEOUT, jwt_part, plain_password_grant

SCOPE = "openid profile email offline_access"
RS_ID, RS_SECRET = "rs", "rs-secret-123456"


def spa_session() -> OAuth2Session:
    # A public client: client_id in the body, no secret.
    return OAuth2Session(
        client_id="spa",
        token_endpoint_auth_method="none",
        revocation_endpoint_auth_method="none",
        scope=SCOPE,
        default_timeout=TIMEOUT,
    )


def rs_session() -> OAuth2Session:
    # The confidential resource server: HTTP Basic (client_secret_basic).
    return OAuth2Session(
        client_id=RS_ID,
        client_secret=RS_SECRET,
        token_endpoint_auth_method="client_secret_basic",
        default_timeout=TIMEOUT,
    )


@pytest.mark.rp("authlib", "password grant")
def test_password_grant(metadata, user):
    email, password = user
    with spa_session() as s:
        token = s.fetch_token(
            metadata["token_endpoint"], username=email, password=password, grant_type="password"
        )
    assert token.get("token_type", "").lower() == "bearer", token
    assert token.get("access_token"), token
    assert token.get("refresh_token"), token
    assert token.get("id_token"), "no id_token although scope has openid"
    assert int(token.get("expires_in", 0)) > 0, token
    assert "openid" in token.get("scope", "").split(), token
    claims = jwt_part(token["access_token"], 1)
    assert claims.get("client_id") == "spa", claims


@pytest.mark.rp("authlib", "refresh")
def test_refresh(metadata, user):
    email, password = user
    first = plain_password_grant(metadata, email, password)
    with spa_session() as s:
        token = s.refresh_token(metadata["token_endpoint"], refresh_token=first["refresh_token"])
    assert token.get("access_token"), token
    assert token["access_token"] != first["access_token"]
    assert token.get("refresh_token") and token["refresh_token"] != first["refresh_token"], (
        "refresh token not rotated"
    )
    assert jwt_part(token["access_token"], 1)["sub"] == jwt_part(first["access_token"], 1)["sub"]


@pytest.mark.rp("authlib", "revoke")
def test_revoke(metadata, user):
    email, password = user
    first = plain_password_grant(metadata, email, password)
    with spa_session() as s:
        resp = s.revoke_token(
            metadata["revocation_endpoint"],
            token=first["refresh_token"],
            token_type_hint="refresh_token",
        )
        assert resp.status_code == 200, f"revocation answered {resp.status_code}: {resp.text[:200]}"
        with pytest.raises(OAuthError) as refused:
            s.refresh_token(metadata["token_endpoint"], refresh_token=first["refresh_token"])
    assert refused.value.error == "invalid_grant", refused.value


@pytest.mark.rp("authlib", "introspect")
def test_introspect(metadata, user):
    email, password = user
    tokens = plain_password_grant(metadata, email, password)
    access = tokens["access_token"]
    with rs_session() as rs:
        resp = rs.introspect_token(
            metadata["introspection_endpoint"], token=access, token_type_hint="access_token"
        )
        assert resp.status_code == 200, f"introspection answered {resp.status_code}: {resp.text[:200]}"
        body = resp.json()
        assert body.get("active") is True, body
        assert body.get("client_id") == "spa", body
        assert body.get("sub") == jwt_part(access, 1)["sub"], body
        # RFC 7662 §2.2: token_type as in RFC 6749 §7.1, i.e. "Bearer"
        # (case-insensitive per §5.1).
        assert str(body.get("token_type", "")).lower() == "bearer", body
        assert "openid" in body.get("scope", "").split(), body
        assert isinstance(body.get("exp"), int), body

        resp = rs.introspect_token(metadata["introspection_endpoint"], token="not-a-token")
        assert resp.status_code == 200, f"unknown token: {resp.status_code}: {resp.text[:200]}"
        assert resp.json() == {"active": False}, resp.json()


class GatehouseValidator(JWTBearerTokenValidator):
    def __init__(self, jwks_uri: str, **kwargs):
        super().__init__(**kwargs)
        self.jwks_uri = jwks_uri

    def get_jwks(self):
        resp = requests.get(self.jwks_uri, timeout=TIMEOUT)
        resp.raise_for_status()
        return resp.json()


@pytest.mark.rp("authlib", "access token (at+jwt)")
def test_rfc9068_access_token(metadata, user):
    email, password = user
    access = plain_password_grant(metadata, email, password)["access_token"]
    validator = GatehouseValidator(metadata["jwks_uri"], issuer=ISSUER, resource_server="spa")
    claims = validator.authenticate_token(access)
    # Raises InvalidTokenError / InsufficientScopeError on any problem.
    validator.validate_token(claims, scopes=["openid"], request=None)
    # authlib refuses a wrong typ but lets a missing one through; RFC 9068
    # §2.1 says MUST, so check it is there.
    typ = str(claims.header.get("typ", "")).lower()
    assert typ in ("at+jwt", "application/at+jwt"), claims.header
    assert claims["client_id"] == "spa", dict(claims)
