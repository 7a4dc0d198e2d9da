"""The webhook endpoint form: what a creator types and ticks; the services check it."""

from django import forms

from creator.notices import webhook_http, webhooks


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=webhook_http.URL_MAX,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/candor-webhooks"}),
        help_text="Candor POSTs each event there as JSON, signed (Standard Webhooks).",
    )
    description = forms.CharField(
        label="Description (optional)", max_length=webhooks.DESCRIPTION_MAX, required=False
    )
    all_events = forms.BooleanField(
        label="All events, including ones Candor adds later", required=False
    )
    events = forms.MultipleChoiceField(
        label="Or only these events",
        choices=list(webhooks.EVENTS.items()),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    @classmethod
    def for_endpoint(cls, endpoint) -> "EndpointForm":
        return cls(
            initial={
                "url": endpoint.url,
                "description": endpoint.description,
                "all_events": endpoint.all_events,
                "events": [] if endpoint.all_events else endpoint.events,
            }
        )

    def chosen_events(self) -> list[str]:
        if self.cleaned_data.get("all_events"):
            return [webhooks.ALL_EVENTS]
        return list(self.cleaned_data.get("events") or [])
