"""Pages of the likeness context: subjects, reference photos and the likeness lock."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from config import ratelimit
from config.confirm import confirm_page, confirmed
from config.files import stored_file_response
from creator.jobs.runtime import QueueUnavailable
from creator.likeness import checks, selectors, services
from creator.likeness.checks import ConsentRefused
from creator.likeness.models import Consent, ReferencePhoto, Subject
from imaging.sniff import too_large

PHOTO_VARIANTS = {"photo": "image", "thumb": "thumbnail", "crop": "crop"}
SELFIE_WINDOW = 3600
SELFIE_ATTEMPTS = 20
TOO_MANY_SELFIES = "Too many selfie attempts. Please wait an hour and try again."


def _get_subject_for_user(request: HttpRequest, pk: int) -> Subject:
    try:
        return Subject.objects.select_related("owner").get(pk=pk, owner=request.user)
    except Subject.DoesNotExist:
        raise Http404("No such subject.") from None


def _get_photo_for_user(request: HttpRequest, subject_pk: int, pk: int) -> ReferencePhoto:
    try:
        return ReferencePhoto.objects.select_related("subject").get(
            pk=pk, subject_id=subject_pk, subject__owner=request.user
        )
    except ReferencePhoto.DoesNotExist:
        raise Http404("No such photo.") from None


def _selfie_limited(request: HttpRequest) -> int:
    """Count a selfie attempt; when over the limit, the seconds to wait instead (else 0)."""
    return ratelimit.attempt(
        "selfie", ratelimit.client_ip(request), limit=SELFIE_ATTEMPTS, window=SELFIE_WINDOW
    )


def _read_upload(request: HttpRequest, field: str) -> bytes:
    """The uploaded file's bytes; a file over the limit is refused before it is read."""
    upload = request.FILES.get(field)
    if upload is None:
        raise ConsentRefused(services.SELFIE_MISSING)
    if upload.size > settings.PHOTO_MAX_BYTES:
        raise ConsentRefused(too_large(upload.size, settings.PHOTO_MAX_BYTES))
    return upload.read()


@login_required
@require_POST
def subject_create(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", Subject.Kind.SELF)
    name = request.POST.get("name", "").strip()
    if kind not in Subject.Kind.values:
        messages.error(request, "Choose whether the photos show you or someone else.")
        return redirect("dashboard")
    if kind == Subject.Kind.OTHER and not name:
        messages.error(request, "Give the name of the person in the photos.")
        return redirect("dashboard")
    try:
        subject = services.subject_create(owner=request.user, kind=kind, name=name)
    except services.SubjectRefused as exc:
        messages.error(request, exc.message)
        return redirect("dashboard")
    return redirect("subject_detail", pk=subject.pk)


@login_required
@require_safe
def subject_detail(request: HttpRequest, pk: int) -> HttpResponse:
    subject = _get_subject_for_user(request, pk)
    context = {
        "subject": subject,
        "photos": selectors.subject_photos(subject),
        "readiness": selectors.subject_readiness(subject),
        "models": subject.models.select_related("task"),
        "consent": subject.active_consent(),
        "pending_link": subject.consents.filter(status=Consent.Status.PENDING).first(),
        "checks": selectors.photo_checks_to_show(subject),
        "check_stopped": checks.CHECK_STOPPED,
        "consent_link": request.session.pop(f"consent-link-{subject.pk}", None),
        "max_files": settings.PHOTO_MAX_FILES_PER_UPLOAD,
        "max_mb": f"{settings.PHOTO_MAX_BYTES / 1e6:g}",
        "match_threshold": settings.FACE_MATCH_THRESHOLD,
    }
    return render(request, "likeness/subject_detail.html", context)


@login_required
@require_POST
def subject_delete(request: HttpRequest, pk: int) -> HttpResponse:
    subject = _get_subject_for_user(request, pk)
    name = subject.name
    if not confirmed(request):
        photos, models = subject.photos.count(), subject.models.count()
        return confirm_page(
            request,
            title=f"Delete the subject “{name}”?",
            consequences=[
                f"{photos} reference photo(s) of {name} and their face data",
                f"{models} personal model(s) trained on them, and any training in progress",
                f"{name}'s consent (it stays on record as revoked, with no face data)",
            ],
            keeps=["your account, and images already in your gallery (labelled as revoked)"],
            button=f"Delete subject “{name}” and its photos and models",
            cancel_url=reverse("subject_detail", args=[subject.pk]),
        )
    services.subject_delete(subject=subject)
    messages.success(request, f"Deleted {name}, their photos and models.")
    return redirect("dashboard")


@login_required
@require_POST
def photos_upload(request: HttpRequest, pk: int) -> HttpResponse:
    subject = _get_subject_for_user(request, pk)
    try:
        result = services.photos_add(subject=subject, files=request.FILES.getlist("photos"))
    except QueueUnavailable as exc:
        messages.error(request, exc.message)
        return redirect("subject_detail", pk=subject.pk)
    if result.error:
        messages.error(request, result.error)
    for name, reason in result.rejected:
        messages.error(request, f"{name}: {reason}")
    if result.accepted:
        messages.success(request, f"Uploaded {len(result.accepted)} photo(s); checking faces now.")
    return redirect("subject_detail", pk=subject.pk)


@login_required
@require_safe
def photo_file(request: HttpRequest, pk: int, photo_pk: int, variant: str) -> HttpResponse:
    """Reference photos are private: only their owner gets the bytes, through this view."""
    photo = _get_photo_for_user(request, pk, photo_pk)
    if variant not in PHOTO_VARIANTS:
        raise Http404("No such file.")
    return _serve(getattr(photo, PHOTO_VARIANTS[variant]))


def _serve(file) -> FileResponse:
    return stored_file_response(file.name if file else "", content_type="image/jpeg")


@login_required
@require_POST
def photo_delete(request: HttpRequest, pk: int, photo_pk: int) -> HttpResponse:
    photo = _get_photo_for_user(request, pk, photo_pk)
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Remove the photo “{photo}”?",
            consequences=[f"the photo “{photo}”, its face crop and its face data"],
            keeps=["the other photos, consent and trained models"],
            button=f"Remove photo “{photo}”",
            cancel_url=reverse("subject_detail", args=[pk]),
        )
    services.photo_delete(photo=photo)
    messages.success(request, f"Removed {photo}.")
    return redirect("subject_detail", pk=pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def consent_selfie(request: HttpRequest, pk: int) -> HttpResponse:
    subject = _get_subject_for_user(request, pk)
    if not subject.is_self:
        raise Http404("Someone else consents through their own link.")
    error = None
    wait = 0
    if request.method == "POST":
        if wait := _selfie_limited(request):
            error = TOO_MANY_SELFIES
        else:
            try:
                services.consent_by_selfie(
                    subject=subject,
                    selfie=_read_upload(request, "selfie"),
                    agreed=request.POST.get("agree") == "on",
                )
            except ConsentRefused as exc:
                error = exc.message
            else:
                messages.success(request, "Consent recorded: your likeness lock is on.")
                return redirect("subject_detail", pk=subject.pk)
    status = 429 if wait else 400 if error else 200
    context = {"subject": subject, "error": error}
    response = render(request, "likeness/consent_selfie.html", context, status=status)
    return ratelimit.with_retry_after(response, wait)


def _consent_url(request: HttpRequest):
    return lambda token: request.build_absolute_uri(reverse("consent_link", args=[token]))


@login_required
@require_POST
def consent_link_create(request: HttpRequest, pk: int) -> HttpResponse:
    subject = _get_subject_for_user(request, pk)
    if subject.is_self:
        raise Http404("You consent for yourself with a selfie.")
    email = request.POST.get("email", "").strip()
    try:
        _, token = services.consent_link_create(
            subject=subject, email=email, request_url=_consent_url(request)
        )
    except ConsentRefused as exc:
        messages.error(request, exc.message)
        return redirect("subject_detail", pk=subject.pk)
    # Shown once on the next page; only its hash is stored.
    request.session[f"consent-link-{subject.pk}"] = _consent_url(request)(token)
    if email:
        messages.success(request, f"Consent link created and emailed to {email}.")
    else:
        messages.success(request, "Consent link created. Send it to the person in the photos.")
    return redirect("subject_detail", pk=subject.pk)


@login_required
@require_POST
def consent_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    subject = _get_subject_for_user(request, pk)
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Revoke consent for {subject.name}?",
            consequences=[
                f"every personal model of {subject.name}, and any training in progress",
                "the consent itself: training again needs a new one",
            ],
            keeps=["the reference photos", "images already made, their credentials saying so"],
            button=f"Revoke consent and delete {subject.name}'s models",
            cancel_url=reverse("subject_detail", args=[subject.pk]),
        )
    services.consent_revoke(subject=subject, by="creator")
    messages.success(request, "Consent revoked. Training stopped and trained models deleted.")
    return redirect("subject_detail", pk=subject.pk)


# --- the subject's side: no account, a link ---------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def consent_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        consent = selectors.consent_for_token(token)
    except ConsentRefused as exc:
        return render(request, "likeness/consent_link.html", {"fatal": exc.message}, status=404)
    error = None
    wait = 0
    if request.method == "POST":
        if wait := _selfie_limited(request):
            error = TOO_MANY_SELFIES
        else:
            agree = request.POST.get("answer") == "agree"
            if agree and request.POST.get("agree") != "on":
                error = services.SELFIE_MUST_AGREE
            else:
                try:
                    consent = services.consent_answer_link(
                        consent=consent,
                        agree=agree,
                        selfie=_read_upload(request, "selfie") if agree else None,
                        signed_name=request.POST.get("signed_name", ""),
                    )
                except ConsentRefused as exc:
                    error = exc.message
                else:
                    return redirect("consent_link", token=token)
    context = {
        "consent": consent,
        "subject": consent.subject,
        "token": token,
        "error": error,
        "usable": consent.status == Consent.Status.PENDING,
        "expired": selectors.link_expired(consent),
        "photos": selectors.consent_link_photos(consent),
    }
    status = 429 if wait else 400 if error else 200
    response = render(request, "likeness/consent_link.html", context, status=status)
    return ratelimit.with_retry_after(response, wait)


@never_cache
@require_safe
def consent_link_photo(request: HttpRequest, token: str, photo_pk: int) -> HttpResponse:
    """The person asked to consent sees thumbnails of the photos a model would learn from,
    while the link can be answered."""
    try:
        consent = selectors.consent_for_token(token)
    except ConsentRefused:
        raise Http404("No such photo.") from None
    photo = selectors.consent_link_photos(consent).filter(pk=photo_pk).first()
    if photo is None:
        raise Http404("No such photo.")
    return _serve(photo.thumbnail)


@require_POST
def consent_link_revoke(request: HttpRequest, token: str) -> HttpResponse:
    try:
        consent = selectors.consent_for_token(token)
    except ConsentRefused:
        raise Http404("No such consent.") from None
    if consent.status == Consent.Status.GRANTED and not confirmed(request):
        return confirm_page(
            request,
            title="Withdraw your consent?",
            consequences=[
                f"every personal model of you that @{consent.subject.owner.handle} trained here, "
                "and any training in progress",
            ],
            keeps=["a record that you withdrew, so images already made say so when checked"],
            button="Withdraw my consent",
            cancel_url=reverse("consent_link", args=[token]),
        )
    if consent.status == Consent.Status.GRANTED:
        services.consent_revoke(subject=consent.subject, by="subject")
    return redirect("consent_link", token=token)
