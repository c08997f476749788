"""The stock user and group admin, locked down: people are changed through the access pages (four
eyes, audited), so the Django admin only shows them. Nobody, not even a superuser, edits a user,
a group's permissions or the superuser flag here; superusers are made on the command line."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ShownUserAdmin(ReadOnly, UserAdmin):
    list_display = ("username", "email", "is_active", "is_staff", "last_login")
    list_filter = ("is_active", "groups", "desks")


class ShownGroupAdmin(ReadOnly, GroupAdmin):
    pass


admin.site.unregister(User)
admin.site.unregister(Group)
# django-otp's own admin shows and edits authenticator secrets: second factors are enrolled by their
# owner and reset through the access pages only.
admin.site.unregister(TOTPDevice)
admin.site.unregister(StaticDevice)
admin.site.register(User, ShownUserAdmin)
admin.site.register(Group, ShownGroupAdmin)


def _sign_in_here(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    # The admin's own sign-in form would skip the address limit and the second factor: use ours.
    return HttpResponseRedirect(
        f"{reverse('login')}?{urlencode({'next': request.GET.get('next', '/admin/')})}"
    )


admin.site.login = _sign_in_here  # type: ignore[method-assign]
