from typing import Any

from django.apps import AppConfig


def _warm_calendar(**_: Any) -> None:
    """Build the exchange calendar in a worker's parent process, before it forks its children: a
    child that built it on its first submission (pandas imported on a busy host) held that batch
    back by seconds, at the cutoff of all times."""
    from instructions import calendar

    calendar.warm()


class InstructionsConfig(AppConfig):
    name = "instructions"

    def ready(self) -> None:
        from celery.signals import worker_init

        from backoffice.audit.links import register_subject

        register_subject("batch", "instructions:batch_detail")
        register_subject("cancel_request", "instructions:cancel_detail")
        register_subject("instruction", "instructions:instruction_detail")
        worker_init.connect(_warm_calendar, weak=False)
