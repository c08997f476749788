"""Celery entry points of the notifications app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from notifications import services


@shared_task(name=services.DELIVER)
def deliver(notification_ids: list[int]) -> int:
    return services.deliver(notification_ids)


@shared_task(name=services.POST_WEBHOOK)
def post_webhook(text: str) -> bool:
    return services.post_webhook(text)


@shared_task(name="notifications.watch")
def watch() -> int:
    return services.watch()
