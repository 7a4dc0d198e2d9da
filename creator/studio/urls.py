from django.urls import path

from creator.studio import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("subjects/<int:pk>/train", views.training_start, name="training_start"),
    path("models/<int:pk>/", views.model_detail, name="model_detail"),
    path("models/<int:pk>/samples/<int:step>.png", views.model_sample, name="model_sample"),
    path("models/<int:pk>/generate", views.generation_start, name="generation_start"),
    path("models/<int:pk>/delete", views.model_delete, name="model_delete"),
    path("consent/<str:token>/my-data.zip", views.person_export, name="person_export"),
]
