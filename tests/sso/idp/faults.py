"""Make the provider answer wrongly, the ways a misconfigured or hostile one would.

A test switches a fault on with POST /control/fault (`fault=<name>`); it applies to every
answer until switched off with an empty name. Tokens are re-signed with the provider's
own key, so only the one thing the fault names is wrong.
"""

from __future__ import annotations

import json
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from tests.sso.idp import people

FAULTS = {
    "",
    "expired",  # the ID token expired an hour ago
    "other-issuer",  # the ID token names another issuer
    "unknown-kid",  # the ID token is signed by a key the JWKS does not list
    "token-not-json",  # the token endpoint answers with broken JSON
    "discovery-not-json",  # the discovery document is broken JSON
    "jwks-not-json",  # the JWKS document is broken JSON
}
state = {"fault": ""}
_stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@csrf_exempt
def control_fault(request):
    fault = request.POST.get("fault", "")
    if fault not in FAULTS:
        return HttpResponse(f"unknown fault {fault!r}", status=400)
    state["fault"] = fault
    return HttpResponse("ok")


@csrf_exempt
def control_groups(request):
    """Set a user's groups claim: a JSON list, or null for no claim."""
    people.GROUP_OVERRIDES[request.POST["username"]] = json.loads(request.POST["groups"])
    return HttpResponse("ok")


def reissue(id_token: str, fault: str) -> str:
    header = jwt.get_unverified_header(id_token)
    payload = jwt.decode(id_token, options={"verify_signature": False})
    key = settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]
    kid = header["kid"]
    if fault == "expired":
        payload["iat"] = int(time.time()) - 7200
        payload["exp"] = int(time.time()) - 3600
    elif fault == "other-issuer":
        payload["iss"] = "https://idp.attacker.test"
    elif fault == "unknown-kid":
        key = _stranger_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        kid = "a-key-nobody-published"
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


class FaultMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        fault = state["fault"]
        path = request.path
        if fault == "discovery-not-json" and path.endswith("openid-configuration"):
            return HttpResponse('{"issuer": "http://', content_type="application/json")
        if fault == "jwks-not-json" and path.endswith("jwks.json"):
            return HttpResponse("<html>maintenance</html>", content_type="application/json")
        if fault == "token-not-json" and path == "/o/token/":
            self.get_response(request)  # the code is spent, as after a crash mid-answer
            return HttpResponse('{"access_token": ', content_type="application/json")
        response = self.get_response(request)
        if path == "/o/token/" and response.status_code == 200 and fault:
            body = json.loads(response.content)
            if "id_token" in body:
                body["id_token"] = reissue(body["id_token"], fault)
                return JsonResponse(body)
        return response
