"""Serving stored files through views (nothing in private storage has a public URL)."""

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404


def stored_file_response(
    name: str,
    *,
    content_type: str,
    cache_control: str = "private, max-age=3600",
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
