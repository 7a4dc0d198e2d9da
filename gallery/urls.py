from django.urls import path

from gallery import views

urlpatterns = [
    path("gallery/", views.gallery, name="gallery"),
    path("gallery/posts/<uuid:pk>/", views.post_detail, name="post_detail"),
    path("gallery/posts/<uuid:pk>/image.png", views.post_image, name="post_image"),
    path("gallery/posts/<uuid:pk>/delete", views.post_delete, name="post_delete"),
]
