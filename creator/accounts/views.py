from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from config import ratelimit
from config.confirm import confirm_page, confirmed
from creator.accounts import auth, services, tokens
from creator.accounts.forms import ApiTokenForm, LoginForm, SignupForm
from creator.accounts.models import ApiToken

TOO_MANY_ATTEMPTS = (
    "Too many attempts from your network. For your safety, please wait a while and try again."
)
TOO_MANY_FOR_ACCOUNT = (
    "Too many attempts to log in to this account. For your safety, please wait a while, "
    "log in from a device you used before, or reset your password."
)
LOGIN_WINDOW = 15 * 60
SIGNUP_WINDOW = 3600
RESET_WINDOW = 3600
TOKEN_REVOKED = "Token “{name}” revoked. It no longer works."  # noqa: S105 - a message
PASSWORD_WRONG = "That password is not right. Your account was not deleted."  # noqa: S105 - a message, not a password


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html")


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        wait = ratelimit.attempt(
            "signup",
            ratelimit.client_ip(request),
            limit=settings.SIGNUP_RATE_LIMIT,
            window=SIGNUP_WINDOW,
        )
        if wait:
            form.add_error(None, TOO_MANY_ATTEMPTS)
            response = render(request, "registration/signup.html", {"form": form}, status=429)
            return ratelimit.with_retry_after(response, wait)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="creator.accounts.auth.HandleOrEmailBackend")
            messages.success(request, f"Welcome to Candor, @{user.handle}.")
            response = redirect("dashboard")
            auth.known_device_remember(request, response, user)
            return response
    return render(request, "registration/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    """Django's login, with failed attempts limited per client address and per account.

    Guesses at one account from anywhere count together, but a browser that logged in to it
    before (the known-device cookie) counts on its own instead, so whoever hammers the account
    cannot lock its owner out. Every attempt still counts against its address.
    """

    form_class = LoginForm
    redirect_authenticated_user = True
    bucket: tuple[str, str] | None = None  # see auth.login_bucket; set per POST

    def _refusal(self) -> tuple[str, int] | None:
        """(message, seconds to wait) when this attempt may not be made now."""
        limit = settings.LOGIN_RATE_LIMIT
        ip = ratelimit.client_ip(self.request)
        wait = ratelimit.retry_after("login-ip", ip, limit=limit, window=LOGIN_WINDOW)
        if wait:
            return TOO_MANY_ATTEMPTS, wait
        if self.bucket:
            wait = ratelimit.retry_after(*self.bucket, limit=limit, window=LOGIN_WINDOW)
            if wait:
                return TOO_MANY_FOR_ACCOUNT, wait
        return None

    def post(self, request, *args, **kwargs):
        self.bucket = auth.login_bucket(request, request.POST.get("username") or "")
        refusal = self._refusal()
        if refusal:
            message, wait = refusal
            # Without the password, so a refused attempt costs no password hash.
            username = request.POST.get("username", "")
            form = self.get_form_class()(request, data={"username": username})
            form.errors.clear()
            form.add_error(None, message)
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            return ratelimit.with_retry_after(response, wait)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        auth.known_device_remember(self.request, response, form.get_user())
        return response

    def form_invalid(self, form):
        limit = settings.LOGIN_RATE_LIMIT
        ip = ratelimit.client_ip(self.request)
        ratelimit.hit("login-ip", ip, limit=limit, window=LOGIN_WINDOW)
        if self.bucket:
            ratelimit.hit(*self.bucket, limit=limit, window=LOGIN_WINDOW)
        return super().form_invalid(form)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, limited per client address so it cannot be used to spam.

    Not limited per account: that would let whoever guesses at an account also block its
    owner's way back in.
    """

    def post(self, request, *args, **kwargs):
        wait = ratelimit.attempt(
            "password-reset",
            ratelimit.client_ip(request),
            limit=settings.PASSWORD_RESET_RATE_LIMIT,
            window=RESET_WINDOW,
        )
        if wait:
            form = self.get_form()
            form.add_error(None, TOO_MANY_ATTEMPTS)
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            return ratelimit.with_retry_after(response, wait)
        return super().post(request, *args, **kwargs)


# The session key that carries a just-made token to the one page view that shows it.
NEW_TOKEN_SESSION_KEY = "api_token_new"  # noqa: S105 - a key name, not a secret


def _account_page(
    request: HttpRequest, *, form: ApiTokenForm | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "api_tokens": request.user.api_tokens.filter(revoked_at__isnull=True),
        "token_form": form or ApiTokenForm(initial={"scopes": ["read"]}),
        # Shown once: taken out of the session by the first page view after it was made.
        "new_token": request.session.pop(NEW_TOKEN_SESSION_KEY, None),
    }
    return render(request, "accounts/account.html", context, status=status)


@never_cache  # the page may show a new token: no copy of it in any cache
@login_required
@require_safe
def account(request: HttpRequest) -> HttpResponse:
    return _account_page(request)


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            token, raw = tokens.token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            request.session[NEW_TOKEN_SESSION_KEY] = {"name": token.name, "raw": raw}
            return redirect(reverse("account") + "#api-tokens")
    return _account_page(request, form=form, status=400)


def _get_token_for_user(request: HttpRequest, pk: int) -> ApiToken:
    return get_object_or_404(ApiToken, pk=pk, user=request.user)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = _get_token_for_user(request, pk)
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Revoke the API token “{token.name}”?",
            consequences=[
                f"the token “{token.name}” ({token.prefix}…): "
                "scripts and apps that use it stop working at once"
            ],
            button="Revoke token",
            cancel_url=reverse("account") + "#api-tokens",
        )
    tokens.token_revoke(token=token)
    messages.success(request, TOKEN_REVOKED.format(name=token.name))
    return redirect(reverse("account") + "#api-tokens")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def account_delete(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        if request.user.check_password(request.POST.get("password", "")):
            user = request.user
            logout(request)
            services.account_delete(user=user)
            messages.success(request, "Your account, photos and models were deleted.")
            return redirect("home")
        error = PASSWORD_WRONG
    return render(
        request, "accounts/account_delete.html", {"error": error}, status=400 if error else 200
    )


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Setting a new password through the emailed link logs the owner in and marks this browser
    as theirs: an account under a guessing attack is never locked away from its owner."""

    post_reset_login = True
    post_reset_login_backend = "creator.accounts.auth.HandleOrEmailBackend"

    def form_valid(self, form):
        response = super().form_valid(form)
        auth.known_device_remember(self.request, response, form.user)
        return response
