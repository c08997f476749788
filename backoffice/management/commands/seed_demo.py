"""Create one demo user per role (and a second maker and checker) and the demo floor's two desks,
for training and rehearsal."""

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


# The sandbox's demo accounts split between two desks, and who sits on which. Compliance and admin
# see every account without a desk.
DEMO_DESKS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "Expiration desk": ((122503, 19816), ("ops", "supervisor")),
    "Hedge desk": ((0, 48213), ("ops2", "supervisor2")),
}
DEMO_ACCOUNT_NAMES = {0: "Demo floor", 19816: "Seed examples", 122503: "Expiration book", 48213: "Hedge book"}


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
        self._desks()

    def _desks(self) -> None:
        # The kernel imports no app: the desks are reached through the app registry.
        from django.apps import apps

        account_model = apps.get_model("positions", "Account")
        desk_model = apps.get_model("positions", "Desk")
        User = get_user_model()
        for name, (numbers, members) in DEMO_DESKS.items():
            desk, _ = desk_model.objects.get_or_create(name=name)
            accounts = [
                account_model.objects.get_or_create(number=n, defaults={"name": DEMO_ACCOUNT_NAMES[n]})[0]
                for n in numbers
            ]
            desk.accounts.set(accounts)
            desk.members.set(User.objects.filter(username__in=members))
            listed = ", ".join(str(n) for n in numbers)
            self.stdout.write(f"  {name}: accounts {listed}; {', '.join(members)}")
