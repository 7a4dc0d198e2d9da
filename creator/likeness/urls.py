from django.urls import path

from creator.likeness import views

urlpatterns = [
    path("subjects/new", views.subject_create, name="subject_create"),
    path("subjects/<int:pk>/", views.subject_detail, name="subject_detail"),
    path("subjects/<int:pk>/delete", views.subject_delete, name="subject_delete"),
    path("subjects/<int:pk>/photos", views.photos_upload, name="photos_upload"),
    path(
        "subjects/<int:pk>/photos/<int:photo_pk>/<str:variant>.jpg",
        views.photo_file,
        name="photo_file",
    ),
    path("subjects/<int:pk>/photos/<int:photo_pk>/delete", views.photo_delete, name="photo_delete"),
    path("subjects/<int:pk>/consent/", views.consent_selfie, name="consent_selfie"),
    path("subjects/<int:pk>/consent/link", views.consent_link_create, name="consent_link_create"),
    path("subjects/<int:pk>/consent/revoke", views.consent_revoke, name="consent_revoke"),
    path("subjects/<int:pk>/consent/challenge", views.consent_challenge, name="consent_challenge"),
    # Before the token pattern: "lost" is not a token.
    path("consent/lost/", views.consent_link_lost, name="consent_link_lost"),
    path("consent/<str:token>/", views.consent_link, name="consent_link"),
    path(
        "consent/<str:token>/challenge",
        views.consent_link_challenge,
        name="consent_link_challenge",
    ),
    path(
        "consent/<str:token>/images/<uuid:post_id>.jpg",
        views.consent_link_post_image,
        name="consent_link_post_image",
    ),
    path(
        "consent/<str:token>/images/<uuid:post_id>/take-down",
        views.consent_link_post_withdraw,
        name="consent_link_post_withdraw",
    ),
    path(
        "consent/<str:token>/photos/<int:photo_pk>.jpg",
        views.consent_link_photo,
        name="consent_link_photo",
    ),
    path("consent/<str:token>/revoke", views.consent_link_revoke, name="consent_link_revoke"),
]
