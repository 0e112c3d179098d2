"""Run the test identity provider: `python -m tests.sso.idp.serve PORT DATABASE`.

It creates a fresh database with the users of claims.py and one confidential client per
name in IDP_CLIENTS (JSON: {client_id: {"secret": ..., "redirect_uris": [...]}}), makes
an RS256 key, and serves until killed. Prints "ready" once it accepts connections.
"""

from __future__ import annotations

import json
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def new_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def main() -> None:
    port, database = int(sys.argv[1]), sys.argv[2]
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.sso.idp.settings"
    os.environ["IDP_DATABASE"] = database
    os.environ["IDP_ISSUER"] = f"http://127.0.0.1:{port}/o"
    os.environ["IDP_PRIVATE_KEY"] = new_private_key()

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application
    from oauth2_provider.models import Application

    from tests.sso.idp.people import PASSWORD, USERS

    call_command("migrate", verbosity=0, interactive=False)
    for username, (name, email, _) in USERS.items():
        User.objects.create_user(username, email=email, password=PASSWORD, first_name=name)
    for client_id, client in json.loads(os.environ["IDP_CLIENTS"]).items():
        Application.objects.create(
            name=client_id,
            client_id=client_id,
            client_secret=client["secret"],
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris=" ".join(client["redirect_uris"]),
            post_logout_redirect_uris=" ".join(client.get("post_logout_redirect_uris", [])),
            algorithm=Application.RS256_ALGORITHM,
            skip_authorization=True,
        )
    print("ready", flush=True)
    run("127.0.0.1", port, get_wsgi_application(), threading=True)


if __name__ == "__main__":
    main()
