from django.contrib import admin

from positions.models import Account


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
