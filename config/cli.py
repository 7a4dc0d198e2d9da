"""The `candor` console script: Django's manage.py under another name (`candor up`)."""

import os
import sys

# Candor's own commands first, and the few Django ones an operator needs. Written out here, not
# discovered: listing the installed commands loads the settings, which make var/, a secret key
# and a database file, and asking for help should leave the machine as it was.
COMMANDS = (
    ("up", "start Candor on this machine: database, Redis, worker, web server"),
    ("reconcile_jobs", "fail jobs whose worker died or whose queue entry vanished (safe to cron)"),
    ("signing_identity", "show, export or rotate the Content Credentials signing identity"),
    ("api_token", "create, list or revoke a user's personal API tokens"),
    ("createsuperuser", "make an administrator account for /admin/"),
    ("changepassword", "set a user's password"),
    ("migrate", "bring the database up to date (`up` does this itself)"),
    ("rqworker", "run a worker for the named queues, e.g. `candor rqworker training generation`"),
)

HELP_ARGS = ([], ["help"], ["-h"], ["--help"])
# Names typed at the shell -> Django's command names (a module name cannot hold a hyphen).
ALIASES = {"api-token": "api_token"}
SHOWN_AS = {command: alias for alias, command in ALIASES.items()}


def usage() -> str:
    names = [SHOWN_AS.get(name, name) for name, _ in COMMANDS]
    width = max(len(name) for name in names)
    lines = [
        "Usage: candor <command> [options]",
        "",
        "Commands:",
        *(
            f"  {name.ljust(width)}  {what}"
            for name, (_, what) in zip(names, COMMANDS, strict=True)
        ),
        "",
        "`candor <command> --help` describes a command's options;",
        "`candor help --commands` lists every Django command as well.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:] in HELP_ARGS:
        sys.stdout.write(usage())
        return
    argv = list(sys.argv)
    # `candor api-token …` and `candor help api-token` alike.
    for i in (1, 2) if argv[1:2] == ["help"] else (1,):
        if i < len(argv):
            argv[i] = ALIASES.get(argv[i], argv[i])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)
