from django.urls import path

from creator.notices import views

urlpatterns = [
    path("notifications/", views.notice_list, name="notices"),
    path("notifications/<int:pk>/open", views.notice_open, name="notice_open"),
    path("notifications/read", views.notices_read_all, name="notices_read_all"),
]
