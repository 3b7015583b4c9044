"""PyJWT as a resource server: PyJWKClient on the discovered jwks_uri and
jwt.decode with the algorithm, audience and issuer pinned."""

import jwt
import pytest
from jwt import PyJWKClient

from conftest import ISSUER, TIMEOUT, plain_password_grant

REQUIRED = ["exp", "iat", "nbf", "iss", "sub", "aud", "jti"]


def verify(metadata: dict, token: str, audience: str, required=REQUIRED) -> dict:
    jwks = PyJWKClient(metadata["jwks_uri"], cache_keys=True, timeout=TIMEOUT)
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode_complete(
        token,
        key.key,
        algorithms=["RS256"],
        audience=audience,
        issuer=ISSUER,
        options={"require": required},
    )


@pytest.mark.rp("PyJWT", "access token (at+jwt)")
def test_access_token(metadata, user):
    email, password = user
    access = plain_password_grant(metadata, email, password)["access_token"]
    decoded = verify(metadata, access, "spa")
    assert decoded["header"].get("typ") == "at+jwt", decoded["header"]
    payload = decoded["payload"]
    assert payload.get("client_id") == "spa", payload
    assert "openid" in str(payload.get("scope", "")).split(), payload


@pytest.mark.rp("PyJWT", "access token (typ JWT)")
def test_access_token_typ_jwt(metadata, user):
    # Client `spring` is configured with access_token_typ = "JWT", for
    # resource servers whose JOSE library refuses at+jwt.
    email, password = user
    access = plain_password_grant(metadata, email, password, client_id="spring")["access_token"]
    decoded = verify(metadata, access, "spring")
    assert decoded["header"].get("typ") == "JWT", decoded["header"]
    assert decoded["payload"].get("client_id") == "spring", decoded["payload"]


@pytest.mark.rp("PyJWT", "ID token")
def test_id_token(metadata, user):
    email, password = user
    tokens = plain_password_grant(metadata, email, password)
    assert tokens.get("id_token"), "no id_token although scope has openid"
    decoded = verify(metadata, tokens["id_token"], "spa", required=["exp", "iat", "iss", "sub", "aud"])
    access = verify(metadata, tokens["access_token"], "spa")
    assert decoded["payload"]["sub"] == access["payload"]["sub"]
    assert decoded["payload"].get("email") == email, decoded["payload"]
