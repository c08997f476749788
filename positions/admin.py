from django.contrib import admin

from backoffice.audit.services import record_decision
from positions.models import Account, Desk


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    """Administrators choose which Clear Street accounts the back-office follows."""

    list_display = ("number", "name", "active", "snapshot_as_of", "created_at")
    list_filter = ("active",)
    search_fields = ("=number", "name")
    readonly_fields = ("snapshot_as_of", "created_at")
    fields = ("number", "name", "active", "snapshot_as_of", "created_at")

    def get_readonly_fields(self, request, obj=None):
        # The Clear Street id is the account's identity once it has a mirror.
        return (*self.readonly_fields, "number") if obj else self.readonly_fields


@admin.register(Desk)
class DeskAdmin(admin.ModelAdmin):
    """A desk and the accounts it owns. Its members are shown, and changed only through access
    requests (four eyes); every change of a desk's accounts is recorded on the audit chain."""

    list_display = ("name", "account_numbers", "member_names")
    search_fields = ("name",)
    fields = ("name", "accounts", "member_names")
    readonly_fields = ("member_names",)
    filter_horizontal = ("accounts",)

    @admin.display(description="accounts")
    def account_numbers(self, desk: Desk) -> str:
        return ", ".join(str(number) for number in desk.accounts.values_list("number", flat=True))

    @admin.display(description="members")
    def member_names(self, desk: Desk) -> str:
        return ", ".join(desk.members.values_list("username", flat=True)) or "nobody yet"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a desk with history is kept; take its accounts and people away instead

    def save_model(self, request, obj, form, change) -> None:
        obj._audit_before = self._state(Desk.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        desk = form.instance
        before = getattr(desk, "_audit_before", None)
        super().save_related(request, form, formsets, change)
        after = self._state(desk)
        if before != after:
            record_decision(
                action="desk_changed" if change else "desk_created",
                actor=request.user,
                subject_type="desk",
                subject_id=desk.pk,
                before=before,
                after=after,
            )

    @staticmethod
    def _state(desk: Desk) -> dict:
        return {"name": desk.name, "accounts": sorted(desk.accounts.values_list("number", flat=True))}
