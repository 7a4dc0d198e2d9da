"""What Candor holds about a person shown, for them to download from their consent page: one
ZIP with a JSON record (consents and their scope, face data, photos, models, images) and the
files themselves (their reference photos, and every image made with their likeness)."""

from __future__ import annotations

import io
import json
import zipfile

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from creator.likeness import selectors as likeness
from creator.likeness.models import Consent
from creator.studio.models import PersonalModel


def _when(value) -> str | None:
    return value.isoformat() if value else None


def _consent_record(consent: Consent) -> dict:
    return {
        "id": consent.pk,
        "status": consent.status,
        "method": consent.method,
        "selfie_method": consent.selfie_method,
        "created_at": _when(consent.created_at),
        "granted_at": _when(consent.granted_at),
        "declined_at": _when(consent.declined_at),
        "revoked_at": _when(consent.revoked_at),
        "revoked_by": consent.revoked_by,
        "signed_name": consent.signed_name,
        "invited_email": consent.invited_email,
        "scope": consent.scope_summary,
        "selfie_sha256": consent.selfie_sha256,
        "face_signature": consent.selfie_embedding,
        "face_distances_to_photos": consent.distances,
        "liveness_scores": consent.liveness,
    }


def person_export(*, consent: Consent) -> bytes:
    """The ZIP for the person a consent link was sent to (their subject, all its consents)."""
    subject = consent.subject
    buffer = io.BytesIO()
    record = {
        "instance": settings.SITE_NAME,
        "exported_at": timezone.now().isoformat(),
        "creator": f"@{subject.owner.handle}",
        "subject_name": subject.name,
        "consents": [_consent_record(c) for c in subject.consents.order_by("created_at")],
        "reference_photos": [],
        "models": [
            {
                "name": m.public_name,
                "created_at": _when(m.created_at),
                "base_model": m.base_model_label,
                "lora_sha256": m.lora_sha256,
            }
            for m in PersonalModel.objects.filter(subject=subject).select_related("subject__owner")
        ],
        "images": [],
    }
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for photo in subject.photos.all():
            path = f"reference-photos/{photo.pk}.jpg"
            if _add(archive, photo.image.name, path):
                record["reference_photos"].append(
                    {
                        "file": path,
                        "original_name": photo.original_name,
                        "uploaded_at": _when(photo.created_at),
                        "check": photo.verdict,
                        "face_signature": photo.embedding,
                        "face_box": photo.face_box,
                    }
                )
        for post in likeness.posts_of_subject(subject):
            path = f"images/{post.pk}.png"
            if _add(archive, post.image.name, path):
                record["images"].append(
                    {
                        "file": path,
                        "made_at": _when(post.created_at),
                        "visibility": post.visibility,
                        "taken_down_at": _when(post.withdrawn_at or post.consent_revoked_at),
                        "caption": post.caption,
                        "prompt": post.prompt,
                    }
                )
        archive.writestr("candor-record.json", json.dumps(record, indent=2, ensure_ascii=False))
    return buffer.getvalue()


def _add(archive: zipfile.ZipFile, name: str, path: str) -> bool:
    """Copy one stored file into the archive; a file already gone is left out."""
    if not name:
        return False
    try:
        with default_storage.open(name) as handle:
            archive.writestr(path, handle.read())
    except FileNotFoundError:
        return False
    return True
