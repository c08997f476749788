"""Single sign-on against a real OpenID Connect provider started here (oidc-provider-mock): the
provider's claims give the person a role and a desk; local accounts stay out of it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client
from oidc_provider_mock import User as ProviderUser
from oidc_provider_mock import run_server_in_thread

from backoffice import roles
from backoffice.audit.models import AuditEntry
from positions.models import Desk
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(databases=["default", "audit"])

ALICE = ProviderUser(
    sub="alice",
    claims={"email": "alice@corp.example", "groups": ["cs-ops", "unrelated"], "desks": ["EXP"]},
)
DUAL = ProviderUser(
    sub="dual", claims={"email": "dual@corp.example", "groups": ["cs-ops", "cs-sup"], "desks": ["EXP"]}
)
LOCAL = ProviderUser(sub="break", claims={"email": "breakglass@corp.example", "groups": ["cs-admin"]})


@pytest.fixture
def provider(settings) -> Iterator[str]:
    with run_server_in_thread(user_claims=[ALICE, DUAL, LOCAL]) as server:
        base = f"http://localhost:{server.server_port}"
        settings.OIDC_RP_CLIENT_ID = "backoffice"
        settings.OIDC_RP_CLIENT_SECRET = "backoffice-secret"
        settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{base}/oauth2/authorize"
        settings.OIDC_OP_TOKEN_ENDPOINT = f"{base}/oauth2/token"
        settings.OIDC_OP_USER_ENDPOINT = f"{base}/userinfo"
        settings.OIDC_OP_JWKS_ENDPOINT = f"{base}/jwks"
        settings.OIDC_ROLE_MAP = {
            "cs-ops": roles.OPERATIONS,
            "cs-sup": roles.SUPERVISORS,
            "cs-admin": roles.ADMINS,
        }
        settings.OIDC_DESK_MAP = {"EXP": "Expiration desk"}
        settings.OIDC_VERIFY_KID = False  # the test provider publishes one key, without an id
        settings.AUTHENTICATION_BACKENDS = [
            *settings.AUTHENTICATION_BACKENDS,
            "access.sso.ClaimsMappingBackend",
        ]
        yield base


def sso_sign_in(client: Client, sub: str):
    """The browser's round trip: to the provider, the person picks who they are, back to us."""
    to_provider = client.get("/oidc/authenticate/")
    assert to_provider.status_code == 302, to_provider.content
    chosen = requests.post(to_provider["Location"], data={"sub": sub}, allow_redirects=False, timeout=10)
    assert chosen.status_code == 302, chosen.text
    back = urlsplit(chosen.headers["Location"])
    assert back.path == "/oidc/callback/"
    return client.get(f"{back.path}?{back.query}")


def test_a_claim_maps_to_a_role_and_a_desk(provider):
    desk = Desk.objects.create(name="Expiration desk")
    client = Client()
    assert "Sign in with single sign-on" in client.get("/login/").content.decode()
    response = sso_sign_in(client, "alice")
    assert response.status_code == 302 and response["Location"] == "/"
    alice = User.objects.get(username="alice@corp.example")
    assert list(alice.groups.values_list("name", flat=True)) == [roles.OPERATIONS]
    assert list(Desk.objects.filter(members=alice)) == [desk]
    assert not alice.has_usable_password()
    assert client.get("/positions/").status_code == 200
    mapped = AuditEntry.objects.get(action="access_from_provider", subject_id=str(alice.pk))
    assert mapped.after["roles"] == [roles.OPERATIONS] and mapped.after["desks"] == ["Expiration desk"]
    signed_in = AuditEntry.objects.get(action="signed_in", subject_id=str(alice.pk))
    assert signed_in.after["method"] == "single sign-on"
    # The provider drops her group: at the next sign-in she loses the role.
    requests.put(f"{provider}/users/alice", json={"email": "alice@corp.example", "groups": []}, timeout=10)
    sso_sign_in(Client(), "alice")
    assert not alice.groups.exists() and not Desk.objects.filter(members=alice).exists()


def test_a_maker_and_checker_on_one_desk_from_the_provider_is_refused(provider):
    Desk.objects.create(name="Expiration desk")
    response = sso_sign_in(Client(), "dual")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert not User.objects.filter(username="dual@corp.example", groups__isnull=False).exists()


def test_a_local_break_glass_account_is_never_signed_in_through_the_provider(provider):
    make_user("breakglass@corp.example", roles.OPERATIONS)  # a local account, with a password
    response = sso_sign_in(Client(), "break")
    assert response["Location"] == "/login/"
    local = User.objects.get(username="breakglass@corp.example")
    assert list(local.groups.values_list("name", flat=True)) == [roles.OPERATIONS]
