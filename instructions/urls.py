from django.urls import path

from instructions import exports, views

app_name = "instructions"

urlpatterns = [
    path("", views.batch_list, name="batches"),
    path("export.<export_format:fmt>", exports.batches, name="batches_export"),
    path("batches/rows/export.<export_format:fmt>", exports.batch_rows, name="batch_rows_export"),
    path("attention/export.<export_format:fmt>", exports.attention, name="attention_export"),
    path("mirror/export.<export_format:fmt>", exports.instructions, name="instructions_export"),
    path("cancels/export.<export_format:fmt>", exports.cancels, name="cancels_export"),
    path("worksheet/export.<export_format:fmt>", exports.worksheet, name="worksheet_export"),
    path("batches/new/", views.batch_new, name="batch_new"),
    path("batches/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("batches/<int:pk>/edit/", views.batch_edit, name="batch_edit"),
    path("batches/<int:pk>/submit/", views.batch_submit, name="batch_submit"),
    path("batches/<int:pk>/withdraw/", views.batch_withdraw, name="batch_withdraw"),
    path("batches/<int:pk>/approve/", views.batch_approve, name="batch_approve"),
    path("batches/<int:pk>/reject/", views.batch_reject, name="batch_reject"),
    path("batches/<int:pk>/retry/", views.batch_retry, name="batch_retry"),
    path("batches/<int:pk>/acknowledge/", views.batch_acknowledge, name="batch_acknowledge"),
    path("attention/", views.attention, name="attention"),
    path("approvals/", views.approvals, name="approvals"),
    path("mirror/", views.instruction_list, name="instruction_list"),
    path("mirror/<str:pk>/", views.instruction_detail, name="instruction_detail"),
    path("mirror/<str:pk>/cancel/", views.cancel_request, name="cancel_request"),
    path("cancels/<int:pk>/", views.cancel_detail, name="cancel_detail"),
    path("cancels/<int:pk>/approve/", views.cancel_approve, name="cancel_approve"),
    path("cancels/<int:pk>/reject/", views.cancel_reject, name="cancel_reject"),
    path("cancels/<int:pk>/withdraw/", views.cancel_withdraw, name="cancel_withdraw"),
    path("cancels/<int:pk>/acknowledge/", views.cancel_acknowledge, name="cancel_acknowledge"),
    path("worksheet/", views.worksheet, name="worksheet"),
]
