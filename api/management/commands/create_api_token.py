"""Issue an API token for a user: ``manage.py create_api_token alice --name "risk system" [--days 90]``."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from api.services import issue_token
from backoffice.workflow import ActionRefused


class Command(BaseCommand):
    help = "Create an API token for a user and print it once (only its SHA-256 hash is stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What the token is for")
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Expire after this many days (default: API_TOKEN_DEFAULT_DAYS, 90)",
        )

    def handle(self, *args, username: str, name: str, days: int | None, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if days is not None and days < 1:
            raise CommandError("--days must be 1 or more.")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            token, raw = issue_token(user, name, expires_at=expires_at)
        except ActionRefused as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"Token #{token.pk} for {username} ({name}); it is shown only now:")
        self.stdout.write(raw)
