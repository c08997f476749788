from django.urls import path

from backoffice.savedviews import views

app_name = "saved_views"

urlpatterns = [
    path("save/", views.save, name="save"),
    path("apply/", views.apply, name="apply"),
    path("default/", views.make_default, name="default"),
    path("delete/", views.delete, name="delete"),
]
