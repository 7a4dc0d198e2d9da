"""The web processes stay light: serving pages never loads the ML stack."""

import os
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("torch", "diffusers", "transformers", "peft", "accelerate")

PROBE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
import config.wsgi
from django.urls import get_resolver
get_resolver().url_patterns  # imports every view module the URLconf names
print(",".join(m for m in {heavy!r} if m in sys.modules))
"""


def test_loading_the_urlconf_imports_no_ml_library():
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"the web process imported {result.stdout.strip()}"
