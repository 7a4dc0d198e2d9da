from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from config import ratelimit
from creator.accounts import services
from creator.accounts.forms import LoginForm, SignupForm

TOO_MANY_ATTEMPTS = (
    "Too many attempts from your network. For your safety, please wait a while and try again."
)
LOGIN_WINDOW = 15 * 60
SIGNUP_WINDOW = 3600
RESET_WINDOW = 3600
PASSWORD_WRONG = "That password is not right. Your account was not deleted."  # noqa: S105 - a message, not a password


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html")


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        ip = ratelimit.client_ip(request)
        if ratelimit.hit("signup", ip, window=SIGNUP_WINDOW) > settings.SIGNUP_RATE_LIMIT:
            form.add_error(None, TOO_MANY_ATTEMPTS)
            return render(request, "registration/signup.html", {"form": form}, status=429)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="creator.accounts.auth.HandleOrEmailBackend")
            messages.success(request, f"Welcome to Candor, @{user.handle}.")
            return redirect("dashboard")
    return render(request, "registration/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    """Django's login, with failed attempts limited per client address and per account."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def _limited(self) -> bool:
        limit = settings.LOGIN_RATE_LIMIT
        account = (self.request.POST.get("username") or "").strip().removeprefix("@")
        ip = ratelimit.client_ip(self.request)
        return ratelimit.is_limited(
            "login-ip", ip, limit=limit, window=LOGIN_WINDOW
        ) or ratelimit.is_limited("login-account", account, limit=limit, window=LOGIN_WINDOW)

    def post(self, request, *args, **kwargs):
        if self._limited():
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, TOO_MANY_ATTEMPTS)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        account = (self.request.POST.get("username") or "").strip().removeprefix("@")
        ratelimit.hit("login-ip", ratelimit.client_ip(self.request), window=LOGIN_WINDOW)
        if account:
            ratelimit.hit("login-account", account, window=LOGIN_WINDOW)
        return super().form_invalid(form)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, limited per client address so it cannot be used to spam."""

    def post(self, request, *args, **kwargs):
        ip = ratelimit.client_ip(request)
        attempts = ratelimit.hit("password-reset", ip, window=RESET_WINDOW)
        if attempts > settings.PASSWORD_RESET_RATE_LIMIT:
            form = self.get_form()
            form.add_error(None, TOO_MANY_ATTEMPTS)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


@login_required
@require_http_methods(["GET", "POST"])
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
