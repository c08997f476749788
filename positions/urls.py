from django.urls import path

from positions import exports, views

# Included by the project's URL configuration in the "positions" namespace, beside the position's
# own page (a screen composed with the instructions app: backoffice.screens.position).
urlpatterns = [
    path("", views.book_list, name="list"),
    path("export.<export_format:fmt>", exports.book, name="book_export"),
    path("closes/export.<export_format:fmt>", exports.closes, name="closes_export"),
    path("closes/orders/export.<export_format:fmt>", exports.close_orders, name="close_orders_export"),
    path("sync/runs/export.<export_format:fmt>", exports.sync_runs, name="sync_runs_export"),
    path("<int:pk>/close/", views.request_close, name="request_close"),
    path("accounts/<int:account_id>/", views.account_detail, name="account_detail"),
    path("accounts/<int:account_id>/close-all/", views.request_close_all, name="request_close_all"),
    path("sync/", views.sync_request, name="sync"),
    path("sync/status/", views.sync_status, name="sync_status"),
    path("sync/<int:run_id>/", views.sync_run_detail, name="sync_run_detail"),
    path("closes/", views.close_list, name="closes"),
    path("closes/<int:pk>/", views.close_detail, name="close_detail"),
    path("closes/<int:pk>/approve/", views.approve_close, name="approve_close"),
    path("closes/<int:pk>/reject/", views.reject_close, name="reject_close"),
    path("closes/<int:pk>/withdraw/", views.withdraw_close, name="withdraw_close"),
    path("closes/<int:pk>/acknowledge/", views.acknowledge_close, name="close_acknowledge"),
    path("prices/", views.prices, name="prices"),
]
