"""This instance's signer and trust anchors, from settings (one per process)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from gallery.provenance import keys, watermark
from gallery.provenance.c2pa import Signer


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(f"Cannot read {path}: {exc}") from None


@functools.cache
def identity() -> keys.Identity:
    if settings.C2PA_CERT_CHAIN_FILE or settings.C2PA_PRIVATE_KEY_FILE:
        if not (settings.C2PA_CERT_CHAIN_FILE and settings.C2PA_PRIVATE_KEY_FILE):
            raise ImproperlyConfigured(
                "Set both C2PA_CERT_CHAIN_FILE and C2PA_PRIVATE_KEY_FILE, or neither."
            )
        try:
            return keys.operator_identity(
                _read(settings.C2PA_CERT_CHAIN_FILE), _read(settings.C2PA_PRIVATE_KEY_FILE)
            )
        except ValueError as exc:
            raise ImproperlyConfigured(f"C2PA signing identity: {exc}") from None
    return keys.identity_load_or_create(settings.C2PA_KEYS_DIR, instance_name=settings.SITE_NAME)


@functools.cache
def signer() -> Signer:
    return Signer(identity(), tsa_url=settings.C2PA_TSA_URL, trust_anchors_pem=trust_anchors_pem())


# How identity_create names an instance's certificates: common name "<instance> Content
# Credentials", organisation "<instance> (Candor instance)". Read together they said the instance's
# name three times ("Candor Content Credentials (Candor (Candor instance))").
_CANDOR_ORGANISATION = re.compile(
    r"^.+? Content Credentials(?: Root)? \((?P<instance>.+) \(Candor instance\)\)$"
)


def signer_display_name(subject: str) -> str:
    """A signer's name as people read it: "Candor at <instance>" for a Candor instance's own
    certificate (formatted here, so identities made before this read the same); any other
    signer's name as it is."""
    match = _CANDOR_ORGANISATION.match((subject or "").strip())
    if match is None:
        return subject or ""
    instance = match["instance"].strip()
    return "Candor" if instance.casefold() == "candor" else f"Candor at {instance}"


def instance_roots_pem() -> bytes:
    """Every root this instance has signed under — the current one and each one rotated out —
    so images signed before a rotation stay Trusted. What /credentials/trust-anchor.pem serves."""
    current = identity().root_pem  # made on first use; empty for an operator chain
    pem = keys.roots_pem(settings.C2PA_KEYS_DIR)
    if current.strip() and current.strip() not in pem:
        pem = current + pem
    return pem


def trust_anchors_pem() -> bytes:
    """This instance's roots plus the operator's extra anchors (e.g. the C2PA trust list)."""
    pem = instance_roots_pem()
    if settings.C2PA_TRUST_ANCHORS_FILE:
        pem = pem + b"\n" + _read(settings.C2PA_TRUST_ANCHORS_FILE)
    return pem


@functools.cache
def watermark_key() -> bytes:
    """The key this instance marks and reads its watermark with (kept across key rotations)."""
    return watermark.key_for(keys.watermark_secret(settings.C2PA_KEYS_DIR))


def reset() -> None:
    identity.cache_clear()
    signer.cache_clear()
    watermark_key.cache_clear()
