from django.urls import path

from backoffice.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.entry_list, name="list"),
    path("export.<export_format:fmt>", views.export, name="export"),
    path("verification/", views.verification_status, name="verification"),
    path("verification/run/", views.verify_now, name="verify_now"),
    path("<int:entry_id>/", views.entry_detail, name="detail"),
]
