"""Stored files: random names, deletion after commit, and serving through views (nothing in
private storage has a public URL)."""

import logging
import secrets

from django.core.files.storage import default_storage
from django.db import transaction
from django.http import FileResponse, Http404

log = logging.getLogger(__name__)

# Private files (reference photos, drafts, samples) must not stay in any cache, shared or not.
PRIVATE_NO_STORE = "private, no-store"
STORAGE_FAILED = (
    "Candor couldn't save the files: the server's storage is full or read-only. Nothing was "
    "saved. Please tell the operator, then try again."
)


def new_token() -> str:
    """An unguessable token for a public link (share links, consent links)."""
    return secrets.token_urlsafe(24)


def private_name(prefix: str, owner_id: int, ext: str = "jpg") -> str:
    """A storage name for an owner's file. Random: nothing about the person or the original
    file name leaks into storage paths."""
    return f"{prefix}/{owner_id}/{secrets.token_hex(16)}.{ext}"


def delete_files_on_commit(names: list[str]) -> None:
    """Delete stored files once the transaction that removed their rows commits."""

    def delete():
        for name in names:
            try:
                default_storage.delete(name)
            except OSError:
                log.exception("Could not delete %s", name)

    transaction.on_commit(delete)


def stored_file_response(
    name: str,
    *,
    content_type: str,
    cache_control: str = PRIVATE_NO_STORE,
    download_name: str = "",
) -> FileResponse:
    """The stored bytes as they are, or a 404 when the file is gone."""
    if not name:
        raise Http404("No such file.")
    try:
        handle = default_storage.open(name)
    except FileNotFoundError:
        raise Http404("No such file.") from None
    response = FileResponse(
        handle,
        content_type=content_type,
        as_attachment=bool(download_name),
        filename=download_name or None,
    )
    response["Cache-Control"] = cache_control
    response["X-Content-Type-Options"] = "nosniff"
    return response
