"""The `candor` command: its help lists Candor's own commands first and touches nothing."""

import os
import subprocess
import sys

from django.core.management import get_commands

from config import cli
from tests.conftest import ROOT


def candor(*args: str, var_dir) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["CANDOR_VAR_DIR"] = str(var_dir)
    return subprocess.run(
        [sys.executable, "-c", "from config.cli import main; main()", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def test_help_lists_candors_commands_first_and_creates_nothing(tmp_path):
    var_dir = tmp_path / "var"
    for args in ((), ("--help",), ("-h",), ("help",)):
        out = candor(*args, var_dir=var_dir).stdout
        lines = out.split("Commands:\n")[1].splitlines()
        commands = [line.split()[0] for line in lines if line.startswith("  ")]
        assert commands[:3] == ["up", "reconcile_jobs", "signing_identity"]
    assert not var_dir.exists()  # no var/, secret key or database


def test_every_command_the_help_lists_exists():
    assert {name for name, _ in cli.COMMANDS} <= set(get_commands())
