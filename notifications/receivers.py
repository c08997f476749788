"""What the notifications app listens to: every recorded move of a four-eyes request, every change
of an instruction's status Clear Street reported, and every finished verification of the audit
chain. A receiver never raises: whatever goes wrong here is logged inside a savepoint, and the move,
report or verification that announced it goes on."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from backoffice.audit.models import ChainVerification
from backoffice.workflow import Workflow, recorded
from instructions.services.mirror import Reported, reported
from notifications import services
from positions.models import Account

logger = logging.getLogger(__name__)


def on_recorded(
    sender: type[Any],
    workflow: Workflow[Any],
    request: Any,
    from_state: str | None,
    to_state: str,
    reason: str = "",
    **kwargs: Any,
) -> None:
    try:
        with transaction.atomic():
            services.announce(workflow, request, from_state=from_state, to_state=to_state, reason=reason)
    except Exception:
        logger.exception("notifications of %s #%s not written", workflow.subject_type, request.pk)


def on_reported(
    sender: type[Any], account: Account, source: str, changes: list[Reported], **kwargs: Any
) -> None:
    try:
        with transaction.atomic():
            services.announce_rejected_later(account, source, changes)
    except Exception:
        logger.exception("notifications of instructions reported on account %s not written", account.number)


def on_verification(sender: type[ChainVerification], instance: ChainVerification, **kwargs: Any) -> None:
    if instance.ok is not False or instance.finished_at is None:
        return
    try:
        with transaction.atomic():
            services.announce_verification(instance.message)
    except Exception:
        logger.exception("notification of failed verification #%s not written", instance.pk)


def connect() -> None:
    recorded.connect(on_recorded, dispatch_uid="notifications.on_recorded")
    reported.connect(on_reported, dispatch_uid="notifications.on_reported")
    post_save.connect(on_verification, sender=ChainVerification, dispatch_uid="notifications.on_verification")
