"""A stub OpenID Connect provider for the tests, served by uvicorn on 127.0.0.1 (a free port) in a thread.

It serves the discovery document, ``/authorize`` (approves at once: redirects back with a code and the state),
``/token`` (client_secret_basic, the code once, the PKCE S256 verifier; an RS256-signed ID token) and ``/jwks``.
Knobs a test turns: ``user`` (the ``preferred_username``), ``audience``, ``lifetime`` (seconds; negative:
expired), ``signing_key`` (another key under the same kid: a bad signature), ``codes_once`` (off: the stub
takes a replayed code, so Lifeloop's own replay check is what refuses it).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import yaml

CLIENT_ID = "lifeloop-web"
CLIENT_SECRET = "stub-client-secret-0123456789"
SECRET_ENV = "LIFELOOP_TEST_OIDC_SECRET"


class StubProvider:
    def __init__(self, clock: Callable[[], object]):
        from joserfc.jwk import RSAKey

        self.clock = clock
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        self.signing_key = self.key
        self.user, self.audience, self.lifetime, self.codes_once = "analyst", CLIENT_ID, 300, True
        self.codes: dict[str, dict] = {}
        self.used: set[str] = set()
        self.token_calls = 0
        self.origin = ""

    # ------------------------------------------------------------------------------------------ the app
    def app(self):
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, RedirectResponse
        from starlette.routing import Route

        def discovery(request):
            return JSONResponse({"issuer": self.origin, "authorization_endpoint": self.origin + "/authorize",
                                 "token_endpoint": self.origin + "/token", "jwks_uri": self.origin + "/jwks",
                                 "response_types_supported": ["code"], "id_token_signing_alg_values_supported":
                                 ["RS256"], "code_challenge_methods_supported": ["S256"]})

        def jwks(request):
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        def authorize(request):
            q = request.query_params
            assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID and "openid" in q["scope"].split()
            assert q["code_challenge_method"] == "S256" and q.get("code_challenge") and q.get("nonce")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"challenge": q["code_challenge"], "nonce": q["nonce"],
                                "redirect_uri": q["redirect_uri"], "user": self.user}
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}",
                                    status_code=302)

        async def token(request):
            from joserfc import jwt

            self.token_calls += 1
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            auth = base64.b64decode(request.headers.get("authorization", "Basic ").split()[1] or b"").decode()
            if auth != f"{CLIENT_ID}:{CLIENT_SECRET}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            code = form.get("code")
            grant = self.codes.get(code)
            if grant is None or (self.codes_once and code in self.used):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            self.used.add(code)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(form["code_verifier"].encode()).digest()
                                                 ).decode().rstrip("=")
            if challenge != grant["challenge"] or form.get("redirect_uri") != grant["redirect_uri"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(self.clock().timestamp())
            claims = {"iss": self.origin, "sub": f"sub-{grant['user']}", "aud": self.audience, "iat": now,
                      "exp": now + self.lifetime, "nonce": grant["nonce"], "preferred_username": grant["user"]}
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.signing_key)
            return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                 "expires_in": 300, "id_token": id_token})

        return Starlette(routes=[Route("/.well-known/openid-configuration", discovery), Route("/jwks", jwks),
                                 Route("/authorize", authorize), Route("/token", token, methods=["POST"])])

    def bad_key(self):
        """Sign with another key under the same kid (the JWKS still publishes the real one)."""
        from joserfc.jwk import RSAKey

        self.signing_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})

    # -------------------------------------------------------------------------------------- the server
    def __enter__(self) -> StubProvider:
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.origin = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the stub provider did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def configure(ws: Path, stub: StubProvider, name: str = "Bank SSO") -> None:
    """Point the workspace's lifeloop.yaml ``web.oidc`` at the stub (the secret's variable, never the secret)."""
    path = ws / "lifeloop.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    doc.setdefault("web", {})["oidc"] = {"name": name, "issuer": stub.origin, "client_id": CLIENT_ID,
                                         "client_secret_env": SECRET_ENV}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
