"""Where an audit row's subject lives: a registry each app fills from its ``AppConfig.ready``.

``register_subject("batch", "instructions:batch_detail")`` makes the audit pages link batch rows to
that page, reversed with the subject id as its one argument, and offers "batch" among the list's
"linked to" suggestions. The audit (a kernel app) thereby never names another app's pages itself.
Until a name resolves, the pages show the subject as plain text.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

SUBJECT_URLS: dict[str, str | None] = {}


def register_subject(subject_type: str, url_name: str | None = None) -> None:
    """Declare an audit subject type, with the URL name of its page where it has one."""
    SUBJECT_URLS[subject_type] = url_name


def subject_types() -> list[str]:
    return sorted(SUBJECT_URLS)


def subject_url(subject_type: str | None, subject_id: object) -> str | None:
    url_name = SUBJECT_URLS.get(subject_type or "")
    if not url_name or subject_id in (None, ""):
        return None
    try:
        return reverse(url_name, args=[subject_id])
    except NoReverseMatch:
        return None
