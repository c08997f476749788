"""The one scoping function per model: ``Model.objects.visible_to(user)`` gives the rows of the
user's desks' accounts; compliance and administrators see every account; nobody else sees any."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from backoffice import roles
from instructions.models import Batch, BatchRow, CancelRequest, Instruction, StatusChange
from positions.models import Account, CloseRequest, Desk, Order, Position, SyncRun
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


def book(number: int, maker) -> dict:
    """One row of every model on account ``number``."""
    account = Account.objects.create(number=number)
    now = timezone.now()
    position = Position.objects.create(
        account=account,
        instrument_id=f"i{number}",
        symbol="AAPL",
        instrument_type="COMMON_STOCK",
        position_type="LONG",
        quantity=1,
        available_quantity=1,
        market_value=1,
        first_seen_at=now,
        updated_at=now,
    )
    batch = Batch.objects.create(account=account, business_date=date(2026, 4, 24), created_by=maker)
    row = BatchRow.objects.create(
        batch=batch,
        instruction_type="EXERCISE",
        position=position,
        instrument_id=f"i{number}",
        symbol="AAPL",
        quantity=1,
        instruction_id=f"k{number}",
    )
    instruction = Instruction.objects.create(
        id=f"in{number}",
        account=account,
        instruction_id=f"k{number}",
        instruction_type="EXERCISE",
        instrument_id=f"i{number}",
        quantity=1,
        status="SENT",
    )
    close = CloseRequest.objects.create(account=account, requested_by=maker)
    return {
        Account: account,
        Position: position,
        SyncRun: SyncRun.objects.create(account=account),
        CloseRequest: close,
        Order: Order.objects.create(
            id=f"o{number}",
            account=account,
            close_request=close,
            side="SELL",
            quantity=1,
            order_type="MARKET",
            time_in_force="DAY",
            status="NEW",
            filled_quantity=0,
            leaves_quantity=1,
        ),
        Batch: batch,
        BatchRow: row,
        Instruction: instruction,
        StatusChange: StatusChange.objects.create(instruction=instruction, to_status="SENT", source="submit"),
        CancelRequest: CancelRequest.objects.create(instruction=instruction, requested_by=maker),
    }


MODELS = (
    Account,
    Position,
    SyncRun,
    CloseRequest,
    Order,
    Batch,
    BatchRow,
    Instruction,
    StatusChange,
    CancelRequest,
)


@pytest.fixture
def floor():
    maker = make_user("maker_on_both", roles.OPERATIONS)
    a, b, shared = book(1001, maker), book(2002, maker), book(3003, maker)
    desk_a, desk_b = Desk.objects.create(name="A"), Desk.objects.create(name="B")
    desk_a.accounts.add(a[Account], shared[Account])
    desk_b.accounts.add(b[Account], shared[Account])
    on_a = make_user("sup_on_a", roles.SUPERVISORS)
    on_both = make_user("ops_on_both", roles.OPERATIONS)
    desk_a.members.add(on_a, on_both)
    desk_b.members.add(on_both)
    return {"a": a, "b": b, "shared": shared, "on_a": on_a, "on_both": on_both}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_a_desk_member_sees_their_desks_rows_once_each(floor, model):
    seen = list(model.objects.visible_to(floor["on_a"]))
    assert sorted(r.pk for r in seen) == sorted([floor["a"][model].pk, floor["shared"][model].pk])
    both = list(model.objects.visible_to(floor["on_both"]))
    assert len(both) == 3 == len({r.pk for r in both})  # the shared account's rows come back once


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("role", [roles.COMPLIANCE, roles.ADMINS])
def test_compliance_and_administrators_see_every_account(floor, model, role):
    assert model.objects.visible_to(make_user(f"firm_{role}", role)).count() == 3


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_nobody_else_sees_anything(floor, model):
    deskless = make_user("sup_no_desk", roles.SUPERVISORS)
    gone = make_user("left", roles.COMPLIANCE, is_active=False)
    for user in (deskless, gone, AnonymousUser()):
        assert not model.objects.visible_to(user).exists()


def test_scoping_composes_with_other_filters(floor):
    rows = Position.objects.filter(symbol="AAPL").visible_to(floor["on_a"]).order_by("account__number")
    assert [p.account.number for p in rows] == [1001, 3003]
