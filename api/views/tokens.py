"""API tokens: each user's own, and every one for administrators."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from api import pagination
from api import serializers as s
from api import services as token_services
from api.models import ApiToken
from api.views.base import (
    ApiViewMixin,
    body_of,
)

# --- API tokens ------------------------------------------------------------------------------------


@extend_schema(tags=["tokens"])
@extend_schema_view(
    create=extend_schema(
        request=s.TokenCreateSerializer,
        responses={201: OpenApiResponse(s.IssuedTokenSerializer, description="The token, shown this once")},
    ),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Revoked")}),
)
class ApiTokenViewSet(
    ApiViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your API tokens (administrators see and revoke everyone's). Create one from a signed-in browser
    session or with `manage.py create_api_token`; a token cannot mint tokens."""

    serializer_class = s.ApiTokenSerializer
    pagination_class = pagination.ordered_by("-id")
    permissions = {"list": None, "retrieve": None, "create": None, "destroy": None}
    lookup_value_regex = r"\d{1,18}"

    def get_queryset(self) -> QuerySet[ApiToken]:
        qs = ApiToken.objects.select_related("user", "revoked_by")
        user = self.request.user
        return qs if token_services.is_admin(user) else qs.filter(user_id=user.pk or 0)

    def create(self, request: Request) -> Response:
        if isinstance(request.auth, ApiToken):
            raise PermissionDenied(
                "An API token cannot create tokens: create one from a signed-in browser session "
                "or with `manage.py create_api_token`."
            )
        data = body_of(s.TokenCreateSerializer, request)
        token, raw = token_services.issue_token(request.user, data["name"], expires_at=data["expires_at"])
        token.token = raw  # type: ignore[attr-defined]  # shown this once, never stored
        return Response(s.IssuedTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        token_services.revoke_token(request.user, int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
