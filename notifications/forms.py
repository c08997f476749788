"""The preferences form: for each kind, in the application and by e-mail."""

from __future__ import annotations

from typing import Any

from django import forms

from notifications.models import Kind
from notifications.queries import Channels


class PreferencesForm(forms.Form):
    def __init__(self, *args: Any, current: dict[str, Channels], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind, label in Kind.choices:
            channels = current.get(kind, Channels())
            for channel, initial, how in (
                ("in_app", channels.in_app, "in the application"),
                ("email", channels.email, "by e-mail"),
            ):
                name = f"{label}: {how}"
                self.fields[f"{kind}__{channel}"] = forms.BooleanField(
                    required=False,
                    initial=initial,
                    label=name,
                    widget=forms.CheckboxInput(attrs={"aria-label": name}),
                )

    def rows(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [(str(label), self[f"{kind}__in_app"], self[f"{kind}__email"]) for kind, label in Kind.choices]

    def chosen(self) -> dict[str, Channels]:
        data = self.cleaned_data
        return {kind: Channels(data[f"{kind}__in_app"], data[f"{kind}__email"]) for kind in Kind.values}
