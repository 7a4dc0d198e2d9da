from django.urls import path

from creator.jobs import views

urlpatterns = [
    path("jobs/<uuid:pk>/", views.task_detail, name="task_detail"),
    path("jobs/<uuid:pk>/status", views.task_status, name="task_status"),
    path("jobs/<uuid:pk>/cancel", views.task_cancel, name="task_cancel"),
    path("jobs/<uuid:pk>/retry", views.task_retry, name="task_retry"),
]
