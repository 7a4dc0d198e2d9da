"""`candor api-token create|list|revoke`: personal API tokens for operators and scripts.

`create` writes only the token to standard output, so a script can capture it
(`TOKEN=$(candor api-token create --user alice --name backup)`); what was made goes to stderr.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from creator.accounts import tokens
from creator.accounts.models import SCOPES, ApiToken, User


def _plain(text: str) -> str:
    return text


class Command(BaseCommand):
    help = "Create, list or revoke a user's personal API tokens."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        # Its usage lines name it as typed at the shell, `candor api-token`.
        return super().create_parser(prog_name, "api-token", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="create|list|revoke")
        create = actions.add_parser("create", help="make a token and print it (only it) on stdout")
        create.add_argument("--user", required=True, metavar="HANDLE")
        create.add_argument("--name", required=True, help="what uses it, e.g. 'backup script'")
        create.add_argument(
            "--scopes",
            default=",".join(SCOPES),
            help=f"comma-separated, from {', '.join(SCOPES)} (default: all)",
        )
        listing = actions.add_parser("list", help="show a user's active tokens")
        listing.add_argument("--user", required=True, metavar="HANDLE")
        revoke = actions.add_parser("revoke", help="stop a token working, by its prefix")
        revoke.add_argument("--prefix", required=True, help="the token's first 12 characters")
        revoke.add_argument("--user", metavar="HANDLE", help="whose token, if the prefix is shared")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    def _note(self, text: str) -> None:
        self.stderr.write(text, style_func=_plain)

    def _user(self, handle: str) -> User:
        try:
            return User.objects.get_by_natural_key(handle.strip().removeprefix("@"))
        except User.DoesNotExist:
            raise CommandError(f"No user with the handle @{handle.removeprefix('@')}.") from None

    def _create(self, *, user: str, name: str, scopes: str, **_) -> None:
        owner = self._user(user)
        wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        try:
            token, raw = tokens.token_create(user=owner, name=name, scopes=wanted)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(raw)
        self._note(
            f"Made the API token “{token.name}” ({token.prefix}…) for @{owner.handle}, "
            f"scopes {', '.join(token.scopes)}. It is shown only this once: keep it safe."
        )

    def _list(self, *, user: str, **_) -> None:
        owner = self._user(user)
        for token in owner.api_tokens.filter(revoked_at__isnull=True):
            used = (
                token.last_used_at.isoformat(timespec="seconds") if token.last_used_at else "never"
            )
            self.stdout.write(
                f"{token.prefix}\t{token.name}\t{','.join(token.scopes)}\t"
                f"made {token.created_at.isoformat(timespec='seconds')}\tlast used {used}"
            )

    def _revoke(self, *, prefix: str, user: str | None, **_) -> None:
        found = ApiToken.objects.filter(prefix=prefix.strip().removesuffix("…"))
        if user:
            found = found.filter(user=self._user(user))
        matches = list(found.select_related("user")[:2])
        if not matches:
            raise CommandError(f"No token starts with {prefix}.")
        if len(matches) > 1:
            raise CommandError(f"More than one token starts with {prefix}: name its --user.")
        token = matches[0]
        tokens.token_revoke(token=token)
        self._note(
            f"Revoked the API token “{token.name}” ({token.prefix}…) of @{token.user.handle}."
        )
