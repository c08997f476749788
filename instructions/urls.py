from django.urls import path

from instructions import views

app_name = "instructions"

urlpatterns = [
    path("", views.batch_list, name="batches"),
]
