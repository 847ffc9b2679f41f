"""Single sign-on with the bank's identity provider: OpenID Connect, authorization-code flow with PKCE (S256).

``GET /sign-in/oidc`` makes a state, a nonce and a PKCE verifier, keeps them in a short-lived cookie signed with
the workspace's secret (HttpOnly, SameSite=Lax, only sent to ``/sign-in/oidc``), and sends the browser to the
provider's authorization endpoint (Authlib builds the URL and, on the way back, exchanges the code at the token
endpoint with the client secret and the verifier). The callback checks the state against the cookie (and that
it was not used before in this process), and the ID token (joserfc, the JOSE library of Authlib's author):
RS256 only, its signature against the provider's JWKS (fetched again once for an unknown key id), issuer,
audience (and ``azp`` when there are several), expiry, issued-at and the nonce. The user named by
``user_claim`` must then be a Lifeloop user (``Context.web_sign_in_oidc``): the provider grants nothing.

The provider's discovery document and JWKS are fetched from the configured issuer only (the bank's, or the
tests' stub on 127.0.0.1); nothing else is fetched. Authlib, joserfc and httpx are imported inside functions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lifeloop.config.workspace import OidcSettings
from lifeloop.errors import ConfigError, LifeloopError

PENDING_COOKIE = "lifeloop_oidc"
PENDING_PATH = "/sign-in/oidc"
CALLBACK = "/sign-in/oidc/callback"
PENDING_SECONDS = 600      # a sign-on not finished in 10 minutes starts again
METADATA_SECONDS = 3600    # the discovery document and the JWKS are fetched again after an hour
ALGORITHMS = ["RS256"]


class SignOnRefused(LifeloopError):
    """The provider's answer did not pass a check (state, code, signature, issuer, audience, expiry, nonce)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    return hmac.new(secret, f"oidc:{payload}".encode(), hashlib.sha256).hexdigest()


def pending_cookie(secret: bytes, pending: dict[str, Any]) -> str:
    """The cookie that carries a sign-on in progress: its JSON, base64url, and an HMAC of the workspace's secret."""
    payload = _b64(json.dumps(pending, sort_keys=True, separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload)}"


def read_pending(secret: bytes, cookie: str | None, now: float) -> dict[str, Any] | None:
    """The sign-on in progress of a cookie this workspace signed and that is less than PENDING_SECONDS old."""
    payload, _, mac = (cookie or "").rpartition(".")
    if not payload or len(cookie or "") > 4096 or not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    try:
        pending = json.loads(_unb64(payload))
    except ValueError:
        return None
    if not isinstance(pending, dict) or not 0 <= now - float(pending.get("issued", 0)) < PENDING_SECONDS:
        return None
    return pending


def get_json(url: str) -> dict[str, Any]:
    """GET a JSON document from the provider (discovery, JWKS); no redirects followed."""
    import httpx

    answer = httpx.get(url, timeout=10.0, follow_redirects=False, headers={"Accept": "application/json"})
    answer.raise_for_status()
    doc = answer.json()
    if not isinstance(doc, dict):
        raise ValueError(f"{url} did not answer a JSON object")
    return doc


@dataclass
class Provider:
    """The configured identity provider: its discovery document and keys (cached), the flow's two halves."""

    settings: OidcSettings
    fetch: Callable[[str], dict[str, Any]] = get_json
    _cache: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _used: dict[str, float] = field(default_factory=dict)   # states already redeemed here -> when they expire
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.settings.name

    def client_secret(self) -> str:
        variable = self.settings.client_secret_env
        secret = os.environ.get(variable, "")
        if not secret:
            raise ConfigError(f"single sign-on is configured but the environment variable {variable} (the client "
                              "secret, web.oidc.client_secret_env) is empty",
                              hint=f"set {variable} in the environment of `lifeloop serve`")
        return secret

    def _cached(self, key: str, load: Callable[[], Any], refresh: bool = False) -> Any:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and not refresh and time.monotonic() - hit[0] < METADATA_SECONDS:
                return hit[1]
        value = load()
        with self._lock:
            self._cache[key] = (time.monotonic(), value)
        return value

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document; its ``issuer`` must be the configured one (OIDC Discovery 4.3)."""
        def load() -> dict[str, Any]:
            try:
                doc = self.fetch(self.settings.issuer + "/.well-known/openid-configuration")
            except Exception as exc:   # the provider cannot be reached or answers nonsense: I/O edge
                raise SignOnRefused(f"the provider's discovery document could not be read: {type(exc).__name__}"
                                    ) from None
            if doc.get("issuer") != self.settings.issuer:
                raise SignOnRefused(f"the discovery document names issuer {doc.get('issuer')!r}, not "
                                    f"{self.settings.issuer!r}")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(doc.get(key), str):
                    raise SignOnRefused(f"the discovery document has no {key}")
            return doc
        return self._cached("metadata", load)

    def keys(self, refresh: bool = False) -> Any:
        from joserfc.jwk import KeySet

        def load() -> Any:
            try:
                return KeySet.import_key_set(self.fetch(self.metadata()["jwks_uri"]))
            except SignOnRefused:
                raise
            except Exception as exc:   # I/O edge: unreachable, or not a key set
                raise SignOnRefused(f"the provider's JWKS could not be read: {type(exc).__name__}") from None
        return self._cached("jwks", load, refresh)

    def _client(self, redirect_uri: str, secret: str | None) -> Any:
        from authlib.integrations.httpx_client import OAuth2Client

        return OAuth2Client(self.settings.client_id, secret, scope=" ".join(self.settings.scopes),
                            redirect_uri=redirect_uri, code_challenge_method="S256",
                            token_endpoint_auth_method=self.settings.token_auth, timeout=10.0)

    def start(self, redirect_uri: str, now: float) -> tuple[str, dict[str, Any]]:
        """Where to send the browser, and the sign-on in progress to keep in the pending cookie."""
        self.client_secret()   # refuse before the user goes to the provider when the secret is missing
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        with self._client(redirect_uri, None) as client:
            url, _ = client.create_authorization_url(self.metadata()["authorization_endpoint"], state=state,
                                                     nonce=nonce, code_verifier=verifier)
        return url, {"state": state, "nonce": nonce, "verifier": verifier, "redirect_uri": redirect_uri,
                     "issued": now}

    def redeem(self, state: str) -> None:
        """Mark a state used: a replayed callback is refused even if the provider took a code twice."""
        now = time.monotonic()
        with self._lock:
            for old in [s for s, until in self._used.items() if until < now]:
                del self._used[old]
            if state in self._used:
                raise SignOnRefused("this sign-on was already used (a replayed callback)")
            self._used[state] = now + PENDING_SECONDS

    def finish(self, params: dict[str, str], pending: dict[str, Any] | None, now: float) -> str:
        """The Lifeloop user name the provider vouches for, after every check; else SignOnRefused saying why."""
        if params.get("error"):
            raise SignOnRefused(f"the provider answered {params['error'][:64]!r}")
        if pending is None:
            raise SignOnRefused("no sign-on in progress in this browser (or it took more than 10 minutes)")
        if not hmac.compare_digest(params.get("state", ""), pending["state"]):
            raise SignOnRefused("the state does not match this browser's sign-on")
        if not params.get("code"):
            raise SignOnRefused("the provider sent no code")
        self.redeem(pending["state"])
        token = self.exchange(params["code"], pending)
        claims = self.verify(token, pending["nonce"], now)
        user = claims.get(self.settings.user_claim)
        if not isinstance(user, str) or not user:
            raise SignOnRefused(f"the ID token has no {self.settings.user_claim!r} claim")
        return user

    def exchange(self, code: str, pending: dict[str, Any]) -> str:
        """The ID token for a code (the client secret and the PKCE verifier go to the token endpoint)."""
        secret = self.client_secret()
        try:
            with self._client(pending["redirect_uri"], secret) as client:
                token = client.fetch_token(self.metadata()["token_endpoint"], grant_type="authorization_code",
                                           code=code, code_verifier=pending["verifier"])
        except SignOnRefused:
            raise
        except Exception as exc:   # the provider refused the code, or could not be reached: I/O edge
            raise SignOnRefused(f"the token endpoint refused the code: {type(exc).__name__}: {str(exc)[:120]}"
                                ) from None
        if not isinstance(token.get("id_token"), str):
            raise SignOnRefused("the token endpoint sent no ID token")
        return token["id_token"]

    def verify(self, id_token: str, nonce: str, now: float) -> dict[str, Any]:
        """The ID token's claims once its signature (RS256, the provider's JWKS) and claims are checked."""
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            try:
                decoded = jwt.decode(id_token, self.keys(), algorithms=ALGORITHMS)
            except JoseError as exc:
                if "key" not in type(exc).__name__.lower() and "kid" not in str(exc).lower():
                    raise
                decoded = jwt.decode(id_token, self.keys(refresh=True), algorithms=ALGORITHMS)  # keys rolled over
            claims = decoded.claims
            jwt.JWTClaimsRegistry(
                now=int(now), leeway=self.settings.leeway_seconds,
                iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.client_id},
                exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
                nonce={"essential": True, "value": nonce}).validate(claims)
        except (JoseError, ValueError) as exc:
            raise SignOnRefused(f"the ID token was refused: {type(exc).__name__}: {str(exc)[:120]}") from None
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.settings.client_id:
            raise SignOnRefused("the ID token has several audiences and azp is not this client")
        return claims
