from django.urls import path, re_path

from gallery import kit_views, soft_binding, verify_views, views

VARIANT = "<str:variant>.<str:ext>"

urlpatterns = [
    path("gallery/", views.gallery, name="gallery"),
    path("gallery/share", views.gallery_share, name="gallery_share"),
    path("gallery/share/<int:pk>/revoke", views.gallery_share_revoke, name="gallery_share_revoke"),
    path("gallery/posts/<uuid:pk>/", views.post_detail, name="post_detail"),
    # Before post_file, whose <variant>.<ext> would take kit.zip.
    path("gallery/posts/<uuid:pk>/kit.zip", kit_views.kit_zip, name="post_kit_zip"),
    path(f"gallery/posts/<uuid:pk>/{VARIANT}", views.post_file, name="post_file"),
    path("gallery/posts/<uuid:pk>/caption", views.post_caption, name="post_caption"),
    path("gallery/posts/<uuid:pk>/publish", views.post_publish, name="post_publish"),
    path("gallery/posts/<uuid:pk>/share", views.post_share, name="post_share"),
    path("gallery/posts/<uuid:pk>/delete", views.post_delete, name="post_delete"),
    path("gallery/posts/<uuid:pk>/edit", views.post_edit, name="post_edit"),
    path("gallery/label/", views.label_upload, name="label_upload"),
    path("gallery/posts/<uuid:pk>/kit", kit_views.kit_build, name="post_kit_build"),
    path(
        "gallery/posts/<uuid:pk>/kit/<str:key>.<str:ext>", kit_views.kit_file, name="post_kit_file"
    ),
    re_path(r"^@(?P<handle>[A-Za-z0-9_]{3,30})/?$", views.profile, name="profile"),
    path("p/<uuid:pk>/", views.public_post, name="public_post"),
    path(f"p/<uuid:pk>/{VARIANT}", views.public_file, name="public_file"),
    path("s/<str:token>/", views.shared_post, name="shared_post"),
    path(f"s/<str:token>/{VARIANT}", views.shared_file, name="shared_file"),
    path("g/<str:token>/", views.shared_gallery, name="shared_gallery"),
    path(
        f"g/<str:token>/<uuid:pk>/{VARIANT}", views.shared_gallery_file, name="shared_gallery_file"
    ),
    path("credentials/trust-anchor.pem", views.trust_anchor, name="trust_anchor"),
    path("verify/", verify_views.verify_page, name="verify_page"),
    path("verify/r/<str:token>/", verify_views.verify_result, name="verify_result"),
    path("v/<uuid:credential>/", verify_views.credential_result, name="credential_result"),
    path("api/verify", verify_views.verify_api, name="verify_api"),
    # C2PA Soft Binding Resolution API (gallery/soft_binding.py).
    path("matches/byBinding", soft_binding.matches_by_binding, name="sb_matches_by_binding"),
    path("matches/byContent", soft_binding.matches_by_content, name="sb_matches_by_content"),
    path("manifests/<str:manifest_id>", soft_binding.manifest, name="sb_manifest"),
    path(
        "services/supportedAlgorithms",
        soft_binding.supported_algorithms,
        name="sb_supported_algorithms",
    ),
]
