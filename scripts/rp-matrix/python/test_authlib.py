"""authlib as a relying party: the requests-based OAuth2Session (which sends
`Content-Type: application/x-www-form-urlencoded;charset=UTF-8`) against the
token, revocation and introspection endpoints; the authorization code flow
with PKCE (S256) as the confidential web app `webapp`, the login page posted
with requests; the ID token checked the way authlib's OpenID client
(`parse_id_token`) does it; and authlib's RFC 9068 JWTBearerTokenValidator
for the access token. The same for the clients `es` (signing_alg = "ES256")
and `ed` (signing_alg = "EdDSA"), whose ID tokens come from a password grant:
they have no redirect URI."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidClaimError, UnsupportedAlgorithmError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from conftest import (
    ISSUER,
    REDIRECT_URI,
    TIMEOUT,
    authorization_response,
    jwt_part,
    login_through_pages,
    plain_code_flow,
    plain_password_grant,
)

SCOPE = "openid profile email offline_access"
RS_ID, RS_SECRET = "rs", "rs-secret-123456"
WEB_ID, WEB_SECRET = "webapp", "webapp-secret-123456"


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


def webapp_session() -> OAuth2Session:
    # A confidential web app: PKCE S256 on top of HTTP Basic.
    return OAuth2Session(
        client_id=WEB_ID,
        client_secret=WEB_SECRET,
        token_endpoint_auth_method="client_secret_basic",
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        default_timeout=TIMEOUT,
    )


@pytest.mark.rp("authlib", "code flow (PKCE)")
def test_code_flow(metadata, user):
    email, password = user
    verifier = generate_token(48)
    nonce = generate_token(20)
    with webapp_session() as s:
        url, state = s.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        query = parse_qs(urlsplit(url).query)
        assert query.get("code_challenge_method") == ["S256"], url
        with requests.Session() as browser:
            callback = login_through_pages(browser, url, email, password)
        params = authorization_response(callback)
        # RFC 9207 (discovery says authorization_response_iss_parameter_supported);
        # authlib itself does not look at iss.
        assert params.get("iss") == ISSUER, f"iss in the authorization response: {params.get('iss')!r}"
        # fetch_token checks state, sends code, redirect_uri and code_verifier.
        token = s.fetch_token(
            metadata["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier
        )
        assert token.get("access_token"), token
        assert token.get("refresh_token"), "no refresh_token although scope has offline_access"
        assert token.get("id_token"), "no id_token although scope has openid"
        access = jwt_part(token["access_token"], 1)
        assert access.get("client_id") == WEB_ID, access
        assert jwt_part(token["id_token"], 1).get("nonce") == nonce, jwt_part(token["id_token"], 1)
        # The session refreshes as the confidential client.
        again = s.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
        assert again.get("access_token") and again["access_token"] != token["access_token"], again


def jwks(metadata: dict) -> KeySet:
    resp = requests.get(metadata["jwks_uri"], timeout=TIMEOUT)
    resp.raise_for_status()
    return KeySet.import_key_set(resp.json())


def parse_id_token(metadata: dict, token: dict, nonce: str | None, client_id: str) -> CodeIDToken:
    """What authlib's OpenID client (OpenIDMixin.parse_id_token in
    authlib.integrations.base_client) does: the JWKS as a joserfc KeySet,
    jwt.decode with the discovered algorithms, then authlib's CodeIDToken
    claims validated with nonce, client_id and access_token (at_hash);
    authlib checks only iss by default, the audience is pinned here too.
    A nonce of None: an ID token from a password grant, which has none."""
    decoded = jwt.decode(
        token["id_token"],
        key=jwks(metadata),
        registry=JWSRegistry(
            algorithms=metadata["id_token_signing_alg_values_supported"], strict_check_header=False
        ),
    )
    options = {
        "iss": {"essential": True, "value": ISSUER},
        "aud": {"essential": True, "value": client_id},
        "auth_time": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True}
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options,
        {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate(leeway=120)
    return claims


@pytest.mark.rp("authlib", "ID token")
def test_id_token(metadata, user):
    email, password = user
    nonce = generate_token(20)
    before = int(time.time()) - 5
    tokens = plain_code_flow(metadata, email, password, WEB_ID, WEB_SECRET, nonce=nonce)
    assert tokens.get("id_token"), "no id_token although scope has openid"
    claims = parse_id_token(metadata, tokens, nonce, WEB_ID)
    assert claims.header.get("alg") == "RS256", claims.header
    assert claims["nonce"] == nonce, dict(claims)
    assert claims["sub"] == jwt_part(tokens["access_token"], 1)["sub"], dict(claims)
    assert claims.get("email") == email, dict(claims)
    assert claims.get("amr") == ["pwd"], f"amr: {claims.get('amr')!r}"
    assert isinstance(claims.get("sid"), str) and claims["sid"], f"sid: {claims.get('sid')!r}"
    assert before <= claims["auth_time"] <= claims["iat"] + 5, (
        f"auth_time {claims['auth_time']} is not the login just made (iat {claims['iat']})"
    )
    # A different nonce is refused, as the app must do.
    with pytest.raises(InvalidClaimError, match="nonce"):
        parse_id_token(metadata, tokens, nonce + "-other", WEB_ID)


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


def check_id_token_signed_with(metadata: dict, tokens: dict, client_id: str, alg: str, email: str) -> CodeIDToken:
    """The ID token as authlib's OpenID client checks it, signed with `alg`
    by the published key its kid names (the kid being that key's RFC 7638
    thumbprint), and refused when only the other algorithms are allowed."""
    assert tokens.get("id_token"), "no id_token although scope has openid"
    claims = parse_id_token(metadata, tokens, None, client_id)
    assert claims.header.get("alg") == alg, f"ID token header: {claims.header}"
    assert claims.header.get("typ") == "JWT", f"ID token header: {claims.header}"
    kid = claims.header.get("kid")
    keys = jwks(metadata)
    key = keys.get_by_kid(kid)
    assert key.thumbprint() == kid, f"kid {kid} is not the RFC 7638 thumbprint {key.thumbprint()} of its key"
    assert claims["sub"] == jwt_part(tokens["access_token"], 1)["sub"], dict(claims)
    assert claims.get("email") == email, dict(claims)
    others = [a for a in ("RS256", "ES256", "EdDSA") if a != alg]
    with pytest.raises(UnsupportedAlgorithmError):
        jwt.decode(tokens["id_token"], key=keys, registry=JWSRegistry(algorithms=others, strict_check_header=False))
    return claims


def public_session(client_id: str) -> OAuth2Session:
    return OAuth2Session(client_id=client_id, token_endpoint_auth_method="none", default_timeout=TIMEOUT)


@pytest.mark.rp("authlib", "ES256 tokens")
def test_es256_tokens(metadata, user):
    # Client `es` is configured with signing_alg = "ES256".
    email, password = user
    tokens = plain_password_grant(metadata, email, password, client_id="es")
    check_id_token_signed_with(metadata, tokens, "es", "ES256", email)
    # ES256 is one of joserfc's recommended algorithms, so authlib's RFC 9068
    # validator takes ES256 access tokens as they are.
    validator = GatehouseValidator(metadata["jwks_uri"], issuer=ISSUER, resource_server="es")

    def validate_access(what: str, access: str) -> None:
        claims = validator.authenticate_token(access)
        validator.validate_token(claims, scopes=["openid"], request=None)
        assert claims.header.get("alg") == "ES256", f"{what} header: {claims.header}"
        assert claims["client_id"] == "es", dict(claims)

    validate_access("access token", tokens["access_token"])
    # After a refresh (by authlib's session) the tokens are ES256 too.
    with public_session("es") as s:
        again = s.refresh_token(metadata["token_endpoint"], refresh_token=tokens["refresh_token"])
    validate_access("refreshed access token", again["access_token"])
    if again.get("id_token"):
        check_id_token_signed_with(metadata, again, "es", "ES256", email)


@pytest.mark.rp("authlib", "EdDSA tokens")
def test_eddsa_tokens(metadata, user):
    # Client `ed` is configured with signing_alg = "EdDSA". The ID token only
    # (and the refreshed access token's alg): authlib's RFC 9068 validator
    # decodes with joserfc's default registry, which allows only its
    # recommended algorithms (HS256, RS256, ES256), so it refuses EdDSA access
    # tokens ("not recommended") unless authenticate_token is overridden.
    # joserfc also warns that "EdDSA" is deprecated by RFC 9864 (which names
    # it "Ed25519"), but accepts it when allowed.
    email, password = user
    tokens = plain_password_grant(metadata, email, password, client_id="ed")
    check_id_token_signed_with(metadata, tokens, "ed", "EdDSA", email)
    with public_session("ed") as s:
        again = s.refresh_token(metadata["token_endpoint"], refresh_token=tokens["refresh_token"])
    header = jwt_part(again["access_token"], 0)
    assert header.get("alg") == "EdDSA", f"refreshed access token header: {header}"
    if again.get("id_token"):
        check_id_token_signed_with(metadata, again, "ed", "EdDSA", email)
