"""Sign and read C2PA manifests with c2pa-python (Builder, Signer.from_info, Context).

No Django imports: bytes in, bytes out. Readers never fetch anything over the network: remote
manifests and OCSP are off (a file could otherwise make the server request any URL it names).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import c2pa as c2pa_lib

from gallery.provenance.keys import Identity
from gallery.provenance.manifest import PARENT_INGREDIENT

BASE_SETTINGS = {
    "version": 1,
    # A manifest thumbnail adds up to 1.8 MB and 60 ms per image; the image is its own preview.
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
}


class Signer:
    """A reusable signer for one identity (the c2pa Signer and Context are reusable)."""

    def __init__(self, identity: Identity, *, tsa_url: str = "", trust_anchors_pem: bytes = b""):
        self.identity = identity
        # The trust anchors judge the ingredients it signs over: their validation is recorded.
        self._context = c2pa_lib.Context.from_json(reader_settings(trust_anchors_pem))
        info = c2pa_lib.C2paSignerInfo(
            b"es256", identity.chain_pem, identity.key_pem, tsa_url.encode() if tsa_url else None
        )
        self._signer = c2pa_lib.Signer.from_info(info)

    def sign(
        self, data: bytes, mime: str, manifest: dict, *, parent: Parent | None = None
    ) -> bytes:
        """`data` with the manifest embedded and signed. Sign last: any later change breaks it.
        With a `parent` (a signed file this one was made from) that file is the manifest's
        parentOf ingredient, its manifest carried along."""
        out = io.BytesIO()
        builder = c2pa_lib.Builder(manifest, self._context)  # a Builder signs once
        if parent is not None:
            ingredient = {
                "title": parent.title,
                "relationship": "parentOf",
                "label": PARENT_INGREDIENT,
            }
            builder.add_ingredient(ingredient, parent.mime, io.BytesIO(parent.data))
        builder.sign(self._signer, mime, io.BytesIO(data), out)
        return out.getvalue()

    def derived_from(self, parent: Parent) -> DerivedSigner:
        return DerivedSigner(self, parent)


@dataclass(frozen=True)
class Parent:
    """A signed file another is made from (the original of a display size, say)."""

    data: bytes
    mime: str
    title: str


@dataclass(frozen=True)
class DerivedSigner:
    """Signs files made from `parent`, each with the parent as its ingredient. It has the
    Signer's `sign(data, mime, manifest)`, so the marking pipeline takes either."""

    signer: Signer
    parent: Parent

    @property
    def identity(self) -> Identity:
        return self.signer.identity

    def sign(self, data: bytes, mime: str, manifest: dict) -> bytes:
        return self.signer.sign(data, mime, manifest, parent=self.parent)


@dataclass
class ReadResult:
    state: str  # "Trusted", "Valid", "Invalid", or "" when nothing could be read
    manifest: dict | None = None
    failures: list[dict] = field(default_factory=list)
    informational: list[dict] = field(default_factory=list)
    error: str = ""  # why the credentials could not be read (unsupported, remote, ...)
    found: bool = False  # a manifest store is present
    # Every manifest in the store, the active one's ingredients' included, by label.
    manifests: dict = field(default_factory=dict)
    # Failures in the ingredients' own manifests, as the active manifest's validation sees them.
    ingredient_failures: list[dict] = field(default_factory=list)

    @property
    def failure_codes(self) -> list[str]:
        return [f.get("code", "") for f in self.failures]


def reader_settings(trust_anchors_pem: bytes = b"") -> str:
    settings = dict(BASE_SETTINGS)
    # Belt and braces: even if a fetch were switched on, no host may be contacted.
    settings["core"] = {"allowed_network_hosts": [], "allow_redirects": False}
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem.decode()}
    return json.dumps(settings)


def read(data: bytes, mime: str | None = None, *, trust_anchors_pem: bytes = b"") -> ReadResult:
    """Validate an image's Content Credentials against the given trust anchors."""
    context = c2pa_lib.Context.from_json(reader_settings(trust_anchors_pem))
    try:
        reader = c2pa_lib.Reader(mime or "", io.BytesIO(data), None, context)
    except c2pa_lib.C2paError.ManifestNotFound:
        return ReadResult(state="")
    except c2pa_lib.C2paError as exc:  # prerelease, unknown algorithm, remote-only, damaged...
        return ReadResult(state="", error=str(exc), found=True)
    with reader:
        results = reader.get_validation_results() or {}
        active = results.get("activeManifest") or {}
        deltas = [
            failure
            for delta in results.get("ingredientDeltas") or []
            for failure in ((delta.get("validationDeltas") or {}).get("failure") or [])
        ]
        return ReadResult(
            state=reader.get_validation_state() or "",
            manifest=reader.get_active_manifest(),
            failures=list(active.get("failure") or []),
            informational=list(active.get("informational") or []),
            found=True,
            manifests=(json.loads(reader.json() or "{}").get("manifests") or {}),
            ingredient_failures=deltas,
        )


def assertion(manifest: dict | None, label: str) -> dict | None:
    """An assertion's data by label prefix (c2pa.actions comes back as c2pa.actions.v2)."""
    for item in (manifest or {}).get("assertions", []):
        if item.get("label", "").startswith(label):
            return item.get("data")
    return None
