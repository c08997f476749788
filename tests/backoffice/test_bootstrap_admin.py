"""bootstrap_admin: the first two administrators of a new deployment, and never more."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from backoffice import roles
from backoffice.audit.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "audit"])
GOOD = "a-long-and-uncommon-passphrase-42"


def bootstrap(monkeypatch, username: str, *, password: str = GOOD, stdin: str | None = None, second=False):
    if stdin is None:
        monkeypatch.setenv("BOOTSTRAP_ADMIN_PASSWORD", password)
    else:
        monkeypatch.delenv("BOOTSTRAP_ADMIN_PASSWORD", raising=False)
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    args = ["--username", username, "--email", f"{username}@firm.example", *(["--second"] if second else [])]
    call_command("bootstrap_admin", *args, stdout=out)
    return out.getvalue()


def test_creates_an_administrator_who_can_sign_in_and_is_on_the_audit_chain(monkeypatch, client):
    assert "created" in bootstrap(monkeypatch, "alice")
    alice = User.objects.get(username="alice")
    assert alice.is_staff and not alice.is_superuser
    assert roles.roles_of(alice) == [roles.ADMINS]
    response = client.post("/login/", {"username": "alice", "password": GOOD})
    assert response.status_code == 302 and response["Location"] == "/"
    entry = AuditEntry.objects.using("audit").get(action="administrator_bootstrapped")
    assert entry.subject_id == str(alice.pk)


def test_reads_the_password_from_standard_input(monkeypatch):
    bootstrap(monkeypatch, "alice", stdin=GOOD + "\n")
    assert User.objects.get(username="alice").check_password(GOOD)


def test_refuses_a_weak_password(monkeypatch):
    with pytest.raises(CommandError, match="Password refused"):
        bootstrap(monkeypatch, "alice", password="password")
    assert not User.objects.filter(username="alice").exists()


def test_refuses_once_an_administrator_exists_but_for_the_second_four_eyes_needs(monkeypatch):
    bootstrap(monkeypatch, "alice")
    with pytest.raises(CommandError, match="already exists"):
        bootstrap(monkeypatch, "mallory")
    bootstrap(monkeypatch, "bob", second=True)
    with pytest.raises(CommandError, match="already has its administrators"):
        bootstrap(monkeypatch, "mallory", second=True)
    assert not User.objects.filter(username="mallory").exists()
    assert User.objects.filter(groups__name=roles.ADMINS).count() == 2


def test_second_is_refused_before_the_first(monkeypatch):
    with pytest.raises(CommandError, match="without --second"):
        bootstrap(monkeypatch, "bob", second=True)
