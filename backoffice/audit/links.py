"""Where an audit row's subject lives: a registry other apps fill as their pages arrive.

``register_subject_url("batch", "instructions:batch_detail")`` (in the app's ``AppConfig.ready``)
makes the audit pages link batch rows to that page, reversed with the subject id as its one
argument. Until a name resolves, the pages show the subject as plain text.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

SUBJECT_URLS: dict[str, str] = {
    "account": "positions:account_detail",
    "batch": "instructions:batch_detail",
    "cancel_request": "instructions:cancel_detail",
    "close_request": "positions:close_detail",
    "sync_run": "positions:sync_run_detail",
}

SUBJECT_TYPES: tuple[str, ...] = ("batch", "cancel_request", "close_request", "sync_run", "instruction")


def register_subject_url(subject_type: str, url_name: str) -> None:
    SUBJECT_URLS[subject_type] = url_name


def subject_url(subject_type: str | None, subject_id: object) -> str | None:
    url_name = SUBJECT_URLS.get(subject_type or "")
    if not url_name or subject_id in (None, ""):
        return None
    try:
        return reverse(url_name, args=[subject_id])
    except NoReverseMatch:
        return None
