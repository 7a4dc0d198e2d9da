from django.urls import path

from creator.notices import views

urlpatterns = [
    path("notifications/", views.notice_list, name="notices"),
    path("notifications/<int:pk>/open", views.notice_open, name="notice_open"),
    path("notifications/read", views.notices_read_all, name="notices_read_all"),
    path("account/webhooks/", views.webhooks_page, name="webhooks"),
    path("account/webhooks/<int:pk>/", views.webhook_detail, name="webhook_detail"),
    path("account/webhooks/<int:pk>/enabled", views.webhook_enabled, name="webhook_enabled"),
    path("account/webhooks/<int:pk>/test", views.webhook_test, name="webhook_test"),
    path("account/webhooks/<int:pk>/secret", views.webhook_secret, name="webhook_secret"),
    path("account/webhooks/<int:pk>/delete", views.webhook_delete, name="webhook_delete"),
]
