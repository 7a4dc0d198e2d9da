from django import forms
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm

from creator.accounts.models import (
    EMAIL_TAKEN,
    HANDLE_TAKEN,
    RESERVED_HANDLES,
    SCOPE_LABELS,
    SCOPES,
    TOKEN_NAME_MAX_LENGTH,
    User,
)
from creator.accounts.tokens import (
    TOKEN_NAME_REQUIRED,
    TOKEN_NAME_TOO_LONG,
    TOKEN_SCOPE_UNKNOWN,
    TOKEN_SCOPES_REQUIRED,
)

HANDLE_RESERVED = "That handle is reserved. Try another one."
LOGIN_FAILED = (
    "That handle or email and password don't match an account. The password is case-sensitive."
)


class SignupForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("handle", "email")
        help_texts = {"handle": "Your public name, shown as @handle on your gallery and images."}

    def clean_handle(self) -> str:
        handle = self.cleaned_data["handle"].strip().removeprefix("@").lower()
        if handle in RESERVED_HANDLES:
            raise forms.ValidationError(HANDLE_RESERVED)
        if User.objects.filter(handle__iexact=handle).exists():
            raise forms.ValidationError(HANDLE_TAKEN)
        return handle

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"].strip())
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(EMAIL_TAKEN)
        return email


class LoginForm(AuthenticationForm):
    error_messages = {**AuthenticationForm.error_messages, "invalid_login": LOGIN_FAILED}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.label = "Handle or email"
        field.max_length = 254
        field.widget.attrs.update(maxlength=254, autocomplete="username")


class ApiTokenForm(forms.Form):
    """Name and scopes of a new token; tokens.token_create checks the same rules, with the same
    messages, for the command line."""

    name = forms.CharField(
        max_length=TOKEN_NAME_MAX_LENGTH,
        error_messages={"required": TOKEN_NAME_REQUIRED, "max_length": TOKEN_NAME_TOO_LONG},
        help_text="What uses it, e.g. “backup script”.",
    )
    scopes = forms.MultipleChoiceField(
        choices=[(scope, SCOPE_LABELS[scope]) for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": TOKEN_SCOPES_REQUIRED, "invalid_choice": TOKEN_SCOPE_UNKNOWN},
        label="It may",
    )
