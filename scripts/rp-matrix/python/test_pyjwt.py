"""PyJWT as a resource server: PyJWKClient on the discovered jwks_uri and
jwt.decode with the algorithm, audience and issuer pinned: RS256 for the
clients `spa` and `spring`, ES256 for `es` and EdDSA for `ed` (clients
configured with `signing_alg`)."""

import base64

import jwt
import pytest
from jwt import PyJWKClient

from conftest import ISSUER, TIMEOUT, jwks_key, plain_password_grant, plain_refresh_grant

REQUIRED = ["exp", "iat", "nbf", "iss", "sub", "aud", "jti"]
ID_REQUIRED = ["exp", "iat", "iss", "sub", "aud"]
ALGORITHMS = ["RS256", "ES256", "EdDSA"]
# How each algorithm's key is published (RFC 7518 §6.2, RFC 8037 §2) and
# how long its signature is (RFC 7518 §3.4: R || S, 32 bytes each, not DER;
# RFC 8032: 64 bytes).
KEY_SHAPES = {"ES256": {"kty": "EC", "crv": "P-256"}, "EdDSA": {"kty": "OKP", "crv": "Ed25519"}}
SIGNATURE_BYTES = {"ES256": 64, "EdDSA": 64}


def verify(metadata: dict, token: str, audience: str, required=REQUIRED, algorithms=("RS256",)) -> dict:
    jwks = PyJWKClient(metadata["jwks_uri"], cache_keys=True, timeout=TIMEOUT)
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode_complete(
        token,
        key.key,
        algorithms=list(algorithms),
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
    decoded = verify(metadata, tokens["id_token"], "spa", required=ID_REQUIRED)
    access = verify(metadata, tokens["access_token"], "spa")
    assert decoded["payload"]["sub"] == access["payload"]["sub"]
    assert decoded["payload"].get("email") == email, decoded["payload"]


def verify_signed_with(metadata: dict, what: str, token: str, audience: str, alg: str, typ: str, required) -> dict:
    """`token` as a resource server pinned to `alg` checks it: the header
    says alg, typ and a kid; the kid names a published key of that
    algorithm's shape (public half only); jwt.decode with algorithms=[alg]
    accepts it, and with every other algorithm refuses it."""
    header = jwt.get_unverified_header(token)
    assert header.get("alg") == alg, f"{what} header: {header}"
    assert header.get("typ") == typ, f"{what} header: {header}"
    assert header.get("kid"), f"{what} header has no kid: {header}"
    signature = token.split(".")[2]
    size = len(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    assert size == SIGNATURE_BYTES[alg], f"{what}: a {alg} signature of {size} bytes (expected {SIGNATURE_BYTES[alg]})"

    jwk = jwks_key(metadata, header["kid"])
    shown = {k: v for k, v in jwk.items() if k not in ("x", "y", "n", "e")}
    for field, value in {**KEY_SHAPES[alg], "alg": alg, "use": "sig"}.items():
        assert jwk.get(field) == value, f"the JWKS key has {field}={jwk.get(field)!r}, not {value!r}: {shown}"
    assert "d" not in jwk, f"the JWKS key {header['kid']} publishes its private part d"
    nulls = sorted(k for k, v in jwk.items() if v is None)
    assert not nulls, f"the JWKS key {header['kid']} has members that are null (RFC 7517 §4: omit them): {nulls}"

    decoded = verify(metadata, token, audience, required, algorithms=[alg])
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(metadata, token, audience, required, algorithms=[a for a in ALGORITHMS if a != alg])
    return decoded


def check_client_signs_with(metadata: dict, user: tuple[str, str], client_id: str, alg: str) -> None:
    email, password = user
    tokens = plain_password_grant(metadata, email, password, client_id=client_id)
    assert tokens.get("id_token"), "no id_token although scope has openid"
    assert tokens.get("refresh_token"), "no refresh_token although scope has offline_access"

    access = verify_signed_with(metadata, "access token", tokens["access_token"], client_id, alg, "at+jwt", REQUIRED)
    assert access["payload"].get("client_id") == client_id, access["payload"]
    id_token = verify_signed_with(metadata, "ID token", tokens["id_token"], client_id, alg, "JWT", ID_REQUIRED)
    assert id_token["payload"]["sub"] == access["payload"]["sub"], id_token["payload"]
    assert id_token["payload"].get("email") == email, id_token["payload"]

    # After a refresh the new tokens are signed with the client's algorithm too.
    again = plain_refresh_grant(metadata, tokens["refresh_token"], client_id)
    refreshed = verify_signed_with(
        metadata, "refreshed access token", again["access_token"], client_id, alg, "at+jwt", REQUIRED
    )
    assert refreshed["payload"]["sub"] == access["payload"]["sub"], refreshed["payload"]
    assert refreshed["payload"]["jti"] != access["payload"]["jti"], "the refresh gave the same access token"
    if again.get("id_token"):
        verify_signed_with(metadata, "refreshed ID token", again["id_token"], client_id, alg, "JWT", ID_REQUIRED)


@pytest.mark.rp("PyJWT", "ES256 tokens")
def test_es256_tokens(metadata, user):
    # Client `es` is configured with signing_alg = "ES256".
    check_client_signs_with(metadata, user, "es", "ES256")


@pytest.mark.rp("PyJWT", "EdDSA tokens")
def test_eddsa_tokens(metadata, user):
    # Client `ed` is configured with signing_alg = "EdDSA" (Ed25519).
    check_client_signs_with(metadata, user, "ed", "EdDSA")
