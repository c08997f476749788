from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backoffice.audit import anchor, services


class Command(BaseCommand):
    help = (
        "Checkpoint the audit chain's head outside the database now (beat does it every "
        "AUDIT_ANCHOR_INTERVAL_SECONDS); after a key rotation, to sign with the new key at once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checkpoint = services.checkpoint_chain()
        except services.ChainBroken as exc:
            raise CommandError(f"not checkpointed: {exc}") from exc
        if checkpoint is None:
            self.stdout.write(f"Nothing new to checkpoint ({anchor.anchor_path()}).")
            return
        self.stdout.write(
            f"Checkpointed row id={checkpoint.head_id} ({checkpoint.count} rows) to {anchor.anchor_path()}."
        )
