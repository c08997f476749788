"""Create the firm's first administrators on a new deployment, from the environment or standard input.

User administration runs under four eyes (a second administrator approves every new user), so a new
deployment needs two administrators before anyone else can be created:

    python manage.py bootstrap_admin --username alice --email alice@firm.example
    python manage.py bootstrap_admin --username bob --email bob@firm.example --second

The password comes from ``BOOTSTRAP_ADMIN_PASSWORD`` or, without it, from the first line of standard
input; it is checked against the password rules. The command refuses once an administrator exists
(the second only with ``--second``, and never a third): after that, people are created in the web
under four eyes. Each creation is a row on the audit chain, made by ``system``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from backoffice import roles
from backoffice.audit.context import SYSTEM
from backoffice.audit.services import record_decision

PASSWORD_VARIABLE = "BOOTSTRAP_ADMIN_PASSWORD"


class Command(BaseCommand):
    help = "Create the first (or, with --second, the second) administrator of a new deployment."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("BOOTSTRAP_ADMIN_USERNAME", ""))
        parser.add_argument("--email", default=os.environ.get("BOOTSTRAP_ADMIN_EMAIL", ""))
        parser.add_argument(
            "--second",
            action="store_true",
            help="Create the second administrator four eyes needs (refused unless exactly one exists).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username, email = options["username"].strip(), options["email"].strip()
        if not username or not email:
            raise CommandError(
                "Give --username and --email (or BOOTSTRAP_ADMIN_USERNAME and BOOTSTRAP_ADMIN_EMAIL)."
            )
        password = os.environ.get(PASSWORD_VARIABLE) or sys.stdin.readline().rstrip("\n")
        if not password:
            raise CommandError(f"Give the password in {PASSWORD_VARIABLE} or on standard input.")
        candidate = User(username=username, email=email)
        try:
            password_validation.validate_password(password, candidate)
        except ValidationError as exc:
            raise CommandError("Password refused: " + " ".join(exc.messages)) from None

        with transaction.atomic():
            # One bootstrap at a time: two at once could each see no administrator.
            admins = Group.objects.select_for_update().get(name=roles.ADMINS)
            existing = User.objects.filter(groups=admins, is_active=True).count()
            allowed = 1 if options["second"] else 0
            if existing != allowed:
                raise CommandError(self._refusal(existing, options["second"]))
            if User.objects.filter(username=username).exists():
                raise CommandError(f"A user named {username!r} already exists.")
            candidate.is_staff = True
            candidate.set_password(password)
            candidate.save()
            candidate.groups.add(admins)
            record_decision(
                action="administrator_bootstrapped",
                actor=SYSTEM,
                subject_type="user",
                subject_id=candidate.pk,
                reason="bootstrap_admin on the command line",
                after={"username": username, "email": email, "roles": [roles.ADMINS]},
            )
        self.stdout.write(
            f"Administrator {username!r} created. They enrol a second factor at their first sign-in."
        )

    @staticmethod
    def _refusal(existing: int, second: bool) -> str:
        if existing == 0:
            return "No administrator exists yet: create the first one without --second."
        if existing == 1 and not second:
            return (
                "An administrator already exists. Further users are created in the web under four "
                "eyes; the second administrator four eyes needs is created with --second."
            )
        return "The firm already has its administrators: create further users in the web under four eyes."
