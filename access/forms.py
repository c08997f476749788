"""Forms of the access pages. Roles and desks are chosen from lists; nothing here can set a
superuser flag or a raw permission (there is no such field)."""

from __future__ import annotations

from django import forms

from backoffice import roles
from positions.models import Desk

ROLE_CHOICES = [(role, roles.ROLE_LABELS[role]) for role in roles.ROLES]


class AccessForm(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    desks = forms.ModelMultipleChoiceField(
        queryset=Desk.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class NewUserForm(AccessForm):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(help_text="The link to set a password is sent here.")
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)

    field_order = ["username", "email", "first_name", "last_name", "roles", "desks", "note"]


class TokenForSomeoneForm(forms.Form):
    name = forms.CharField(max_length=100)
    expires_at = forms.DateTimeField(
        required=False, help_text="Empty: the default lifetime (API_TOKEN_DEFAULT_DAYS)."
    )
    note = forms.CharField(required=False, max_length=2000)


class ReasonForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000)


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=16,
        label="Code",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
