from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from backoffice.audit.models import AuditEntry
from backoffice.roles import VIEW_AUDIT

if TYPE_CHECKING:
    EntryAdmin = admin.ModelAdmin[AuditEntry]
else:  # Django's ModelAdmin takes no type parameter at run time
    EntryAdmin = admin.ModelAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(EntryAdmin):
    """Read-only, with Django's default changelist (the audit list's benchmark compares against it)."""

    def has_view_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return request.user.has_perm(VIEW_AUDIT) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
