from django.urls import path

from access import views

app_name = "access"

urlpatterns = [
    path("verify/", views.verify, name="verify"),
    path("mfa/", views.mfa_enrol, name="mfa_enrol"),
    path("users/", views.user_list, name="users"),
    path("users/new/", views.user_new, name="user_new"),
    path("users/<int:pk>/", views.user_detail, name="user_detail"),
    path("users/<int:pk>/access/", views.user_access, name="user_access"),
    path("users/<int:pk>/deactivate/", views.user_deactivate, name="user_deactivate"),
    path("users/<int:pk>/reactivate/", views.user_reactivate, name="user_reactivate"),
    path(
        "users/<int:pk>/second-factor/reset/", views.user_reset_second_factor, name="user_reset_second_factor"
    ),
    path("users/<int:pk>/password-link/", views.user_password_link, name="user_password_link"),
    path("users/<int:pk>/token/", views.user_token, name="user_token"),
    path("requests/", views.request_list, name="requests"),
    path("requests/<int:pk>/", views.request_detail, name="request_detail"),
    path("requests/<int:pk>/approve/", views.request_approve, name="request_approve"),
    path("requests/<int:pk>/reject/", views.request_reject, name="request_reject"),
    path("requests/<int:pk>/withdraw/", views.request_withdraw, name="request_withdraw"),
    path("requests/<int:pk>/collect/", views.request_collect, name="request_collect"),
    path("lockouts/", views.lockout_list, name="lockouts"),
    path("lockouts/<int:pk>/lift/", views.lockout_lift, name="lockout_lift"),
]
