"""Create one demo user per role (and a second maker and checker) for training and rehearsal."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from backoffice import roles

DEMO_USERS: list[tuple[str, str, str]] = [
    # username, role, password (demo only: refused when DEBUG is off)
    ("ops", roles.OPERATIONS, "ops-demo-pass-1"),
    ("ops2", roles.OPERATIONS, "ops2-demo-pass-1"),
    ("supervisor", roles.SUPERVISORS, "supervisor-demo-pass-1"),
    ("supervisor2", roles.SUPERVISORS, "supervisor2-demo-pass-1"),
    ("compliance", roles.COMPLIANCE, "compliance-demo-pass-1"),
    ("admin", roles.ADMINS, "admin-demo-pass-1"),
]


class Command(BaseCommand):
    help = "Create demo users for each role and print their credentials (DEBUG only)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("Demo users are for local demos only; refused because DEBUG is off.")
        User = get_user_model()
        self.stdout.write("Demo users (local demo only):")
        for username, role, password in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = role == roles.ADMINS
            user.is_superuser = False
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            self.stdout.write(f"  {username:<12} {roles.ROLE_LABELS[role]:<14} password: {password}")
