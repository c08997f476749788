"""A rejection Clear Street makes after it answered SENT (found by a poll of its list) is a failure the
desk must act on: the batch goes on the attention list and its badge, its maker may redraft the row,
and it stays there until someone acknowledges it."""

from __future__ import annotations

import pytest
from django.test import Client

from instructions import queries, services
from instructions.models import Batch
from instructions.services import RowSpec
from tests.fixtures.desk import option

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])


def test_a_rejection_found_by_a_poll_is_on_the_attention_list_until_acknowledged(desk, users, sandbox):
    maker, checker = users["operations"], users["supervisors"]
    sandbox.set_behaviour(
        accept_delay_seconds=30, outcome="REJECTED", rejection_reason="Position not found at OCC"
    )
    row = RowSpec(option(desk, "AAPL", put_call="C").pk, "EXERCISE", 1)
    batch = services.submit_for_approval(maker, services.create_batch(maker, desk, [row]).pk)
    services.approve_batch(checker, batch.pk)
    assert services.submit_batch(batch.pk).status == Batch.Status.SUBMITTED
    assert not queries.batch_attention(checker, batch.pk) and queries.attention_count(maker) == 0

    sandbox.advance(60)
    services.sync_instructions(desk)
    (item,) = queries.batch_attention(checker, batch.pk)
    assert item.what == f"Clear Street rejected 1 of 1 row(s) of batch #{batch.pk}: Position not found at OCC"
    assert queries.attention_count(maker) == 1 and queries.attention_count(checker) == 1

    # Its maker is offered the redraft, and the form starts from the rejected row.
    client = Client()
    client.force_login(maker)
    page = client.get(f"/instructions/batches/{batch.pk}/").content.decode()
    assert f"?redraft={batch.pk}" in page
    assert [r.pk for r in queries.rows_to_redraft(batch)] == [batch.rows.get().pk]

    services.acknowledge_batch(checker, batch.pk, "redrafted by phone with the desk")
    assert not queries.batch_attention(checker, batch.pk) and queries.attention_count(maker) == 0
