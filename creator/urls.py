from django.contrib.auth import views as auth_views
from django.urls import path

from creator import model_views, subject_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("jobs/<uuid:pk>/", views.task_detail, name="task_detail"),
    path("jobs/<uuid:pk>/status", views.task_status, name="task_status"),
    path("jobs/<uuid:pk>/cancel", views.task_cancel, name="task_cancel"),
    path("jobs/<uuid:pk>/retry", views.task_retry, name="task_retry"),
    path("account/delete/", subject_views.account_delete, name="account_delete"),
    path("subjects/new", subject_views.subject_create, name="subject_create"),
    path("subjects/<int:pk>/", subject_views.subject_detail, name="subject_detail"),
    path("subjects/<int:pk>/delete", subject_views.subject_delete, name="subject_delete"),
    path("subjects/<int:pk>/photos", subject_views.photos_upload, name="photos_upload"),
    path(
        "subjects/<int:pk>/photos/<int:photo_pk>/<str:variant>.jpg",
        subject_views.photo_file,
        name="photo_file",
    ),
    path(
        "subjects/<int:pk>/photos/<int:photo_pk>/delete",
        subject_views.photo_delete,
        name="photo_delete",
    ),
    path("subjects/<int:pk>/consent/", subject_views.consent_selfie, name="consent_selfie"),
    path(
        "subjects/<int:pk>/consent/link",
        subject_views.consent_link_create,
        name="consent_link_create",
    ),
    path("subjects/<int:pk>/consent/revoke", subject_views.consent_revoke, name="consent_revoke"),
    path("subjects/<int:pk>/train", model_views.training_start, name="training_start"),
    path("models/<int:pk>/", model_views.model_detail, name="model_detail"),
    path("models/<int:pk>/samples/<int:step>.png", model_views.model_sample, name="model_sample"),
    path("models/<int:pk>/generate", model_views.generation_start, name="generation_start"),
    path("models/<int:pk>/delete", model_views.model_delete, name="model_delete"),
    path("consent/<str:token>/", subject_views.consent_link, name="consent_link"),
    path(
        "consent/<str:token>/photos/<int:photo_pk>.jpg",
        subject_views.consent_link_photo,
        name="consent_link_photo",
    ),
    path(
        "consent/<str:token>/revoke", subject_views.consent_link_revoke, name="consent_link_revoke"
    ),
]
