"""User administration under four eyes: nobody changes their own access, every grant waits for a
second administrator, and an identity one person had made never checks that person's work."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail

from access import services
from api.models import ApiToken
from api.services import issue_token
from backoffice import roles
from backoffice.audit.models import AuditEntry
from backoffice.audit.services import verify_chain
from backoffice.models import AccessRequest
from backoffice.workflow import ActionRefused
from instructions import services as instructions
from instructions.models import Batch
from instructions.services import RowSpec
from positions.models import Account, Desk
from tests.access.conftest import actions_about
from tests.conftest import make_user
from tests.fixtures.desk import option

pytestmark = pytest.mark.django_db(databases=["default", "audit"])
S = AccessRequest.Status


def role_names(user: User) -> list[str]:
    return sorted(User.objects.get(pk=user.pk).groups.values_list("name", flat=True))


def test_the_stock_user_admin_cannot_make_anyone_superuser_or_change_groups(client, users):
    """The issue's first step: `admin` saved is_superuser and operations+supervisors on themselves."""
    admin = users["admins"]
    supervisors = Group.objects.get(name=roles.SUPERVISORS)
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{admin.pk}/change/",
        {"username": admin.username, "is_superuser": "on", "is_staff": "on", "groups": [supervisors.pk]},
    )
    assert response.status_code == 403
    assert client.get("/admin/auth/user/add/").status_code == 403
    assert client.get(f"/admin/auth/user/{admin.pk}/password/").status_code == 403
    admin.refresh_from_db()
    assert not admin.is_superuser and role_names(admin) == [roles.ADMINS]
    # Not even a superuser edits people in the web.
    client.force_login(users["superuser"])
    assert client.post(f"/admin/auth/user/{admin.pk}/change/", {"is_superuser": "on"}).status_code == 403
    assert client.get(f"/admin/auth/group/{supervisors.pk}/change/").status_code in (200, 403)
    assert client.post(f"/admin/auth/group/{supervisors.pk}/change/", {"name": "x"}).status_code == 403


def test_nobody_changes_their_own_roles_or_desks(client, users):
    admin = users["admins"]
    with pytest.raises(ActionRefused, match="Nobody changes their own access") as refused:
        services.change_access(admin, admin.pk, role_names=[roles.ADMINS, roles.SUPERVISORS], desk_ids=[])
    assert refused.value.code == "self_approval"
    client.force_login(admin)
    response = client.post(f"/access/users/{admin.pk}/access/", {"roles": [roles.ADMINS, roles.OPERATIONS]})
    assert response.status_code == 302
    assert "Nobody changes their own access" in str(list(response.wsgi_request._messages))
    assert role_names(admin) == [roles.ADMINS]
    assert not AccessRequest.objects.exists()


def test_a_grant_waits_for_a_second_administrator(users, admin2):
    admin, person = users["admins"], users["norole"]
    desk = Desk.objects.create(name="Expiration desk")
    request = services.change_access(admin, person.pk, role_names=[roles.SUPERVISORS], desk_ids=[desk.pk])
    assert request is not None and request.status == S.PENDING_APPROVAL
    assert role_names(person) == []  # nothing changed yet
    with pytest.raises(ActionRefused, match="someone else must approve"):
        services.approve(admin, request.pk)
    with pytest.raises(ActionRefused, match="does not allow"):
        services.approve(users["supervisors"], request.pk)  # a checker of batches is no administrator
    applied = services.approve(admin2, request.pk)
    assert applied.status == S.APPLIED
    assert role_names(person) == [roles.SUPERVISORS]
    assert list(Desk.objects.filter(members=person)) == [desk]
    granted = AuditEntry.objects.get(action="access_granted", subject_type="user", subject_id=str(person.pk))
    assert (granted.actor_username, granted.approver_username) == (admin.username, admin2.username)
    assert granted.before["roles"] == [] and granted.after["roles"] == [roles.SUPERVISORS]
    assert granted.before["desks"] == [] and granted.after["desks"] == ["Expiration desk"]
    assert actions_about("access_request", request.pk) == ["requested", "approved", "submitting", "applied"]


def test_nobody_approves_a_grant_to_themselves(users, admin2):
    """admin2 cannot approve admin's request to make admin2 a supervisor."""
    request = services.change_access(
        users["admins"], admin2.pk, role_names=[roles.ADMINS, roles.COMPLIANCE], desk_ids=[]
    )
    with pytest.raises(ActionRefused, match="about your own access"):
        services.approve(admin2, request.pk)
    assert role_names(admin2) == [roles.ADMINS]


def test_taking_access_away_applies_at_once(users):
    admin, ops = users["admins"], users["operations"]
    assert services.change_access(admin, ops.pk, role_names=[], desk_ids=[]) is None
    assert role_names(ops) == []
    removed = AuditEntry.objects.get(action="access_removed")
    assert removed.before["roles"] == [roles.OPERATIONS] and removed.after["roles"] == []


def test_a_maker_and_checker_on_one_desk_is_refused_unless_the_firm_allows_it(users, admin2, settings):
    desk = Desk.objects.create(name="Hedge desk")
    both = [roles.OPERATIONS, roles.SUPERVISORS]
    with pytest.raises(ActionRefused, match=r"both operations \(maker\) and supervisor"):
        services.change_access(users["admins"], users["operations"].pk, role_names=both, desk_ids=[desk.pk])
    with pytest.raises(ActionRefused, match="both operations"):
        services.request_new_user(
            users["admins"], username="dual", email="d@example.com", role_names=both, desk_ids=[desk.pk]
        )
    settings.ALLOW_MAKER_AND_CHECKER_ON_ONE_DESK = True
    request = services.change_access(
        users["admins"], users["operations"].pk, role_names=both, desk_ids=[desk.pk]
    )
    # The firm changed its mind before the approval: the approval checks again.
    settings.ALLOW_MAKER_AND_CHECKER_ON_ONE_DESK = False
    with pytest.raises(ActionRefused, match="both operations"):
        services.approve(admin2, request.pk)
    assert role_names(users["operations"]) == [roles.OPERATIONS]


def test_the_puppet_scenario_from_the_issue(desk, users, admin2, django_capture_on_commit_callbacks):
    """`admin` drafts a batch, then creates `puppet` in supervisors to approve it. Creating puppet now
    needs a second administrator, and even once puppet exists, puppet cannot approve the batch of
    the administrator who asked for puppet's access."""
    admin = make_user("admin", roles.ADMINS, roles.OPERATIONS, is_staff=True)
    desk_row = Desk.objects.create(name="Expiration desk")
    desk_row.accounts.add(desk)
    desk_row.members.add(admin)
    batch = instructions.create_batch(
        admin, desk, [RowSpec(option(desk, "AAPL", put_call="C").pk, "EXERCISE", 1)]
    )
    instructions.submit_for_approval(admin, batch.pk)

    request = services.request_new_user(
        admin,
        username="puppet",
        email="admin-alias@example.com",
        role_names=[roles.SUPERVISORS],
        desk_ids=[desk_row.pk],
    )
    assert not User.objects.filter(username="puppet").exists()  # admin alone cannot create puppet
    with pytest.raises(ActionRefused, match="someone else must approve"):
        services.approve(admin, request.pk)

    with django_capture_on_commit_callbacks(execute=True):
        services.approve(admin2, request.pk)  # a second administrator let it through
    puppet = User.objects.get(username="puppet")
    assert not puppet.has_usable_password()  # nobody but the e-mail's reader sets it
    assert mail.outbox[-1].to == ["admin-alias@example.com"]
    with pytest.raises(ActionRefused, match="asked for your own access") as refused:
        instructions.approve_batch(puppet, batch.pk)
    assert refused.value.code == "self_approval"
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.PENDING_APPROVAL
    # A checker nobody on the batch vouched for may approve it.
    instructions.approve_batch(users["supervisors"], batch.pk)
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.APPROVED
    assert verify_chain().ok


def test_reactivation_waits_and_deactivation_does_not(client, users, admin2):
    admin, ops = users["admins"], users["operations"]
    token, raw = issue_token(ops, "desk script")
    services.deactivate(admin, ops.pk, "left the firm")
    ops.refresh_from_db()
    assert not ops.is_active
    assert ApiToken.objects.get(pk=token.pk).is_revoked
    assert client.get("/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    request = services.request_reactivation(admin, ops.pk, "came back")
    ops.refresh_from_db()
    assert not ops.is_active
    services.approve(admin2, request.pk)
    ops.refresh_from_db()
    assert ops.is_active
    assert ApiToken.objects.get(pk=token.pk).is_revoked  # a dead token stays dead
    assert actions_about("user", ops.pk) == ["user_deactivated", "user_reactivated"]


def test_a_token_for_someone_else_is_approved_then_collected_once_by_its_maker(client, users, admin2):
    robot = make_user("risk_robot", roles.COMPLIANCE)
    request = services.request_token_for(users["admins"], robot.pk, name="nightly risk", expires_at=None)
    assert not ApiToken.objects.filter(user=robot).exists()
    approved = services.approve(admin2, request.pk)
    assert approved.status == S.APPROVED
    with pytest.raises(ActionRefused, match="Only the administrator who asked"):
        services.collect_token(admin2, request.pk)
    collected, raw = services.collect_token(users["admins"], request.pk)
    assert collected.status == S.APPLIED
    assert client.get("/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    with pytest.raises(ActionRefused, match="shown once"):
        services.collect_token(users["admins"], request.pk)
    issued = AuditEntry.objects.get(action="issued_api_token")
    assert (issued.actor_username, issued.approver_username) == ("admin_frank", "admin_gail")
    assert issued.after["owner"] == "risk_robot"


def test_the_pages_carry_a_request_from_asking_to_applied(client, users, admin2):
    desk = Desk.objects.create(name="Expiration desk")
    desk.accounts.add(Account.objects.create(number=122503))
    client.force_login(users["admins"])
    response = client.post(
        "/access/users/new/",
        {
            "username": "new_ops",
            "email": "new.ops@example.com",
            "roles": [roles.OPERATIONS],
            "desks": [desk.pk],
        },
    )
    request = AccessRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/access/requests/{request.pk}/"
    page = client.get(f"/access/requests/{request.pk}/").content.decode()
    assert "another administrator must decide it" in page
    client.force_login(admin2)
    assert "Approve" in client.get(f"/access/requests/{request.pk}/").content.decode()
    client.post(f"/access/requests/{request.pk}/approve/")
    person = User.objects.get(username="new_ops")
    assert role_names(person) == [roles.OPERATIONS]
    detail = client.get(f"/access/users/{person.pk}/").content.decode()
    assert "user_created" in detail and "admin_frank" in detail and "admin_gail" in detail
    # Bad input gets a message, never a 500.
    response = client.post("/access/users/new/", {"username": "bad name!", "email": "x"})
    assert response.status_code == 200 and "Enter a valid email address" in response.content.decode()
    response = client.post("/access/users/new/", {"username": "new_ops", "email": "n@example.com"})
    assert "already exists" in response.content.decode()


def test_every_access_change_is_a_row_on_a_chain_that_still_verifies(client, users, admin2):
    admin, person = users["admins"], users["norole"]
    request = services.change_access(admin, person.pk, role_names=[roles.COMPLIANCE], desk_ids=[])
    services.approve(admin2, request.pk)
    services.change_access(admin, person.pk, role_names=[], desk_ids=[])
    services.deactivate(admin, person.pk)
    services.approve(admin2, services.request_reactivation(admin, person.pk).pk)
    desk = Desk.objects.create(name="D")
    client.force_login(admin)
    client.post(
        f"/admin/positions/desk/{desk.pk}/change/",
        {"name": "D", "accounts": [Account.objects.create(number=7).pk]},
    )
    assert actions_about("user", person.pk) == [
        "access_granted",
        "access_removed",
        "user_deactivated",
        "user_reactivated",
    ]
    assert actions_about("desk", desk.pk) == ["desk_changed"]
    result = verify_chain()
    assert result.ok, result.message
