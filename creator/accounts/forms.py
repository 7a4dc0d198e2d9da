from django import forms
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm

from creator.accounts.models import EMAIL_TAKEN, HANDLE_TAKEN, RESERVED_HANDLES, User

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
