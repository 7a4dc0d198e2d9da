"""Pages of the likeness context: subjects, reference photos and the likeness lock."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from config import ratelimit
from config.confirm import confirm_page, confirmed
from config.files import stored_file_response
from creator.engine import liveness
from creator.jobs.runtime import QueueUnavailable
from creator.likeness import checks, scope, selectors, services
from creator.likeness.checks import ConsentRefused
from creator.likeness.models import Consent, ReferencePhoto, Subject
from imaging.sniff import too_large

PHOTO_VARIANTS = {"photo": "image", "thumb": "thumbnail", "crop": "crop"}
SELFIE_WINDOW = 3600
SELFIE_ATTEMPTS = 20
TOO_MANY_SELFIES = "Too many selfie attempts. Please wait an hour and try again."
TOO_MANY_LINKS = "Too many requests for a new link. Please wait an hour and try again."
CHALLENGES_PER_HOUR = 60


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
    consent = subject.active_consent()
    context = {
        "subject": subject,
        "photos": selectors.subject_photos(subject),
        "readiness": selectors.subject_readiness(subject),
        "models": subject.models.select_related("task"),
        "consent": consent,
        "consent_state": selectors.consent_state(subject),
        "ruled_out_labels": scope.short_labels(consent.ruled_out) if consent else [],
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


def _selfie(request: HttpRequest) -> checks.Selfie:
    """The live challenge's frames and nonce, or a picture file (the weaker path)."""
    frames = request.FILES.getlist("frames")
    for index, frame in enumerate(frames, start=1):
        if frame.size > settings.CONSENT_FRAME_MAX_BYTES:  # refused before it is read
            reason = too_large(frame.size, settings.CONSENT_FRAME_MAX_BYTES)
            raise ConsentRefused(checks.FRAME_REFUSED.format(index=index, reason=reason))
    nonce = request.POST.get("nonce", "")
    if frames or nonce:
        return checks.Selfie(frames=[f.read() for f in frames], nonce=nonce)
    if "selfie" in request.FILES:
        return checks.Selfie(upload=_read_upload(request, "selfie"))
    return checks.Selfie()


def _consent_form_context() -> dict:
    return {
        "categories": scope.CATEGORIES,
        "durations": scope.DURATIONS,
        "default_duration": scope.DEFAULT_DURATION,
        "require_liveness": settings.CONSENT_REQUIRE_LIVENESS,
        "challenge_seconds": settings.CONSENT_CHALLENGE_SECONDS,
        "frames": liveness.FRAMES,
    }


def _scope(request: HttpRequest) -> scope.Scope:
    try:
        return scope.scope_from_form(request.POST, now=timezone.now())
    except scope.ScopeInvalid as exc:
        raise ConsentRefused(exc.message) from None


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
                    selfie=_selfie(request),
                    agreed=request.POST.get("agree") == "on",
                    consent_scope=_scope(request),
                )
            except ConsentRefused as exc:
                error = exc.message
            else:
                messages.success(request, "Consent recorded: your likeness lock is on.")
                return redirect("subject_detail", pk=subject.pk)
    status = 429 if wait else 400 if error else 200
    context = {"subject": subject, "error": error, **_consent_form_context()}
    context["challenge_url"] = reverse("consent_challenge", args=[subject.pk])
    response = render(request, "likeness/consent_selfie.html", context, status=status)
    return ratelimit.with_retry_after(response, wait)


def _challenge_response(request: HttpRequest, subject: Subject, consent=None) -> JsonResponse:
    """A fresh challenge for the camera check, as JSON for the page's script."""
    wait = ratelimit.attempt(
        "challenge", ratelimit.client_ip(request), limit=CHALLENGES_PER_HOUR, window=3600
    )
    if wait:
        response = JsonResponse({"error": TOO_MANY_SELFIES}, status=429)
        return ratelimit.with_retry_after(response, wait)
    challenge, nonce = services.challenge_issue(subject=subject, consent=consent)
    return JsonResponse(
        {
            "nonce": nonce,
            "steps": challenge.steps,
            "prompts": [checks.STEP_PROMPTS[s] for s in challenge.steps],
            "expires_in": settings.CONSENT_CHALLENGE_SECONDS,
            "frames": liveness.FRAMES,
        }
    )


@login_required
@require_POST
def consent_challenge(request: HttpRequest, pk: int) -> JsonResponse:
    subject = _get_subject_for_user(request, pk)
    if not subject.is_self:
        raise Http404("Someone else consents through their own link.")
    return _challenge_response(request, subject)


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
                f"every image made with {subject.name}'s likeness from public pages, profiles and "
                "share links, at once and for good",
                "the consent itself: training again needs a new one",
            ],
            keeps=[
                "the reference photos",
                "the images in your gallery, labelled as taken down; verifying them says so",
            ],
            button=f"Revoke consent, delete {subject.name}'s models and take their images down",
            cancel_url=reverse("subject_detail", args=[subject.pk]),
        )
    services.consent_revoke(subject=subject, by="creator")
    messages.success(
        request,
        "Consent revoked. Training stopped, trained models deleted and images taken down.",
    )
    return redirect("subject_detail", pk=subject.pk)


# --- the subject's side: no account, a link ---------------------------------------------------

BLOCK_CHOICE = (
    "block_face",
    "Don't let anyone train on my face here again. Candor keeps only a face signature (numbers, "
    "no image) and refuses matching photos from every creator on this site.",
)


def _consent_or_404(token: str) -> Consent:
    try:
        return selectors.consent_for_token(token)
    except ConsentRefused:
        raise Http404("No such consent.") from None


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
            try:
                if agree and request.POST.get("agree") != "on":
                    raise ConsentRefused(services.SELFIE_MUST_AGREE)
                consent = services.consent_answer_link(
                    consent=consent,
                    agree=agree,
                    selfie=_selfie(request) if agree else None,
                    signed_name=request.POST.get("signed_name", ""),
                    consent_scope=_scope(request) if agree else None,
                    block_face=not agree and request.POST.get("block_face") == "on",
                )
            except ConsentRefused as exc:
                error = exc.message
            else:
                return redirect("consent_link", token=token)
    posts = selectors.posts_of_subject(consent.subject) if consent.status != "pending" else []
    context = {
        "consent": consent,
        "subject": consent.subject,
        "token": token,
        "error": error,
        "usable": consent.status == Consent.Status.PENDING,
        "expired": selectors.link_expired(consent),
        "photos": selectors.consent_link_photos(consent),
        "posts": posts,
        "ruled_out_labels": scope.short_labels(consent.ruled_out),
        "block_choice": BLOCK_CHOICE,
        "challenge_url": reverse("consent_link_challenge", args=[token]),
        **_consent_form_context(),
    }
    status = 429 if wait else 400 if error else 200
    response = render(request, "likeness/consent_link.html", context, status=status)
    return ratelimit.with_retry_after(response, wait)


@require_POST
def consent_link_challenge(request: HttpRequest, token: str) -> JsonResponse:
    consent = _consent_or_404(token)
    if consent.status != Consent.Status.PENDING or selectors.link_expired(consent):
        raise Http404("This consent link can't be answered.")
    return _challenge_response(request, consent.subject, consent)


@never_cache
@require_safe
def consent_link_photo(request: HttpRequest, token: str, photo_pk: int) -> HttpResponse:
    """The person asked to consent sees thumbnails of the photos a model would learn from,
    while the link can be answered."""
    consent = _consent_or_404(token)
    photo = selectors.consent_link_photos(consent).filter(pk=photo_pk).first()
    if photo is None:
        raise Http404("No such photo.")
    return _serve(photo.thumbnail)


def _image_of_person(token: str, post_id) -> tuple[Consent, object]:
    """A consent link and one image made with the likeness of the person it was sent to."""
    consent = _consent_or_404(token)
    post = selectors.posts_of_subject(consent.subject).filter(pk=post_id).first()
    if post is None:
        raise Http404("No such image.")
    return consent, post


@never_cache
@require_safe
def consent_link_post_image(request: HttpRequest, token: str, post_id) -> HttpResponse:
    """The person shown sees each image made with their likeness, published or not."""
    _, post = _image_of_person(token, post_id)
    return stored_file_response(post.thumb.name if post.thumb else "", content_type="image/jpeg")


@require_POST
def consent_link_post_withdraw(request: HttpRequest, token: str, post_id) -> HttpResponse:
    consent, post = _image_of_person(token, post_id)
    if not confirmed(request):
        return confirm_page(
            request,
            title="Take this image down?",
            consequences=[
                "this image from every public page, profile and share link, at once",
                f"@{post.owner.handle}'s ability to publish or share it again",
            ],
            keeps=[
                f"the image in @{post.owner.handle}'s private gallery, labelled as taken down "
                "by you; verifying it says so",
                "your consent for other images (revoke it to stop everything)",
            ],
            button="Take this image down",
            cancel_url=reverse("consent_link", args=[token]),
        )
    services.post_withdraw_by_subject(consent=consent, post=post)
    messages.success(request, "The image was taken down. Its creator was told.")
    return redirect("consent_link", token=token)


@require_POST
def consent_link_revoke(request: HttpRequest, token: str) -> HttpResponse:
    consent = _consent_or_404(token)
    if consent.status == Consent.Status.GRANTED and not confirmed(request):
        return confirm_page(
            request,
            title="Withdraw your consent?",
            consequences=[
                f"every personal model of you that @{consent.subject.owner.handle} trained here, "
                "and any training in progress",
                "every image made with your likeness from public pages and share links, at once",
            ],
            keeps=["a record that you withdrew, so images already made say so when checked"],
            button="Withdraw my consent",
            cancel_url=reverse("consent_link", args=[token]),
            choices=[BLOCK_CHOICE],
        )
    if consent.status == Consent.Status.GRANTED:
        services.consent_revoke(
            subject=consent.subject, by="subject", block_face=request.POST.get("block_face") == "on"
        )
    return redirect("consent_link", token=token)


@require_http_methods(["GET", "HEAD", "POST"])
def consent_link_lost(request: HttpRequest) -> HttpResponse:
    """The person shown lost their link: a fresh one goes to the address it was sent to."""
    sent = False
    error = None
    if request.method == "POST":
        wait = ratelimit.attempt(
            "consent-lost", ratelimit.client_ip(request), limit=10, window=3600
        )
        if wait:
            response = render(
                request, "likeness/consent_lost.html", {"error": TOO_MANY_LINKS}, status=429
            )
            return ratelimit.with_retry_after(response, wait)
        email = request.POST.get("email", "").strip()
        if not services.email_valid(email):
            error = services.EMAIL_INVALID_LOST
        else:
            services.consent_links_resend(email=email, request_url=_consent_url(request))
            sent = True
    status = 400 if error else 200
    return render(
        request, "likeness/consent_lost.html", {"sent": sent, "error": error}, status=status
    )
