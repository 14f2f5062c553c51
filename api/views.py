"""
The management API. Views parse, call one selector or service, and render;
every queryset is scoped to the caller's tenant, so another tenant's ids are
404 like ids that do not exist.
"""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.services import api_key_revoke
from api import selectors, serializers
from api.services import token_create, token_revoke
from api.tenancy import api_membership
from billing import budgets
from relay import refusals
from relay.filters import UsageFilter
from relay.models import UsageRecord
from relay.selectors import usage_records


class TenantView(generics.GenericAPIView):
    @property
    def membership(self):
        return api_membership(self.request)

    @property
    def tenant_id(self) -> int:
        return self.membership.tenant_id


class BalanceView(TenantView):
    serializer_class = serializers.BalanceSerializer
    pagination_class = None

    @extend_schema(
        summary="The tenant's balance",
        description="Balance, promotional and paid credit, credit held for "
        "requests in flight and what remains available, in nano-USD and USD.",
    )
    def get(self, request):
        balance = selectors.tenant_balance(tenant_id=self.tenant_id)
        return Response(self.get_serializer(balance).data)


class KeyList(TenantView, generics.ListAPIView):
    serializer_class = serializers.ApiKeySerializer
    owner_action = "create or revoke API keys"

    def get_queryset(self):
        return selectors.tenant_keys(tenant_id=self.tenant_id)

    @extend_schema(summary="List API keys", description="Newest first.")
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Create an API key",
        description="Owners only. The response holds the key's secret: it is "
        "shown this once and never again. Budgets given are set with the key, "
        "or neither is made.",
        request=serializers.ApiKeyCreateSerializer,
        responses={201: serializers.ApiKeyCreatedSerializer},
    )
    def post(self, request):
        form = serializers.ApiKeyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        fields = dict(form.validated_data)
        caps = fields.pop("budgets", {})
        tenant = self.membership.tenant
        key, secret = budgets.key_create(
            tenant=tenant, created_by=request.user, caps=caps, **fields
        )
        key.secret = secret
        key.budget_uses = (
            budgets.key_budgets(key_ids=[key.pk]).get(key.pk, []) if caps else []
        )
        return Response(
            serializers.ApiKeyCreatedSerializer(key).data,
            status=status.HTTP_201_CREATED,
        )


class KeyDetail(TenantView, generics.RetrieveAPIView):
    serializer_class = serializers.ApiKeySerializer

    def get_queryset(self):
        return selectors.tenant_keys(tenant_id=self.tenant_id)

    @extend_schema(summary="One API key")
    def get(self, request, pk):
        return self.retrieve(request)


class KeyRevoke(TenantView):
    serializer_class = serializers.ApiKeySerializer
    owner_action = "create or revoke API keys"

    def get_queryset(self):
        return selectors.tenant_keys(tenant_id=self.tenant_id)

    @extend_schema(
        summary="Revoke an API key",
        description="Owners only. Requests with the key are refused within "
        "seconds on every server. Revoking a revoked key changes nothing.",
        request=None,
    )
    def post(self, request, pk):
        key = self.get_object()
        api_key_revoke(key=key, actor=request.user)
        return Response(self.get_serializer(key).data)


class BudgetsView(TenantView):
    serializer_class = serializers.BudgetSerializer
    pagination_class = None
    owner_action = "set budgets"

    def key(self):
        """The key whose budgets these are; None: the tenant's own."""
        return None

    def budgets(self, key) -> list:
        if key is None:
            return budgets.tenant_budgets(tenant_id=self.tenant_id)
        return budgets.key_budgets(key_ids=[key.pk]).get(key.pk, [])

    def get(self, request, **kwargs):
        data = self.get_serializer(self.budgets(self.key()), many=True).data
        return Response(data)

    def put(self, request, **kwargs):
        key = self.key()
        form = serializers.BudgetsSetSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        budgets.budgets_set(
            tenant=self.membership.tenant,
            key=key,
            caps=form.validated_data,
            actor=request.user,
        )
        data = self.get_serializer(self.budgets(key), many=True).data
        return Response(data)


@extend_schema_view(
    get=extend_schema(
        summary="The tenant's budgets",
        description="Caps on what all the tenant's keys together may spend per "
        "UTC day, per UTC month or for good, with this period's use.",
        responses=serializers.BudgetSerializer(many=True),
    ),
    put=extend_schema(
        summary="Set the tenant's budgets",
        description="Owners only. Caps given are set, null ones removed, absent "
        "ones left; a request that could go over a budget gets 402 "
        "budget_exceeded. Takes effect within seconds on every server.",
        request=serializers.BudgetsSetSerializer,
        responses=serializers.BudgetSerializer(many=True),
    ),
)
class TenantBudgets(BudgetsView):
    pass


@extend_schema_view(
    get=extend_schema(
        summary="An API key's budgets",
        description="Caps on what requests with this key may spend per UTC "
        "day, per UTC month or for good, with this period's use.",
        responses=serializers.BudgetSerializer(many=True),
    ),
    put=extend_schema(
        summary="Set an API key's budgets",
        description="Owners only. Caps given are set, null ones removed, absent "
        "ones left; a request that could go over a budget gets 402 "
        "budget_exceeded. Takes effect within seconds on every server.",
        request=serializers.BudgetsSetSerializer,
        responses=serializers.BudgetSerializer(many=True),
    ),
)
class KeyBudgets(BudgetsView):
    def get_queryset(self):
        return selectors.tenant_keys(tenant_id=self.tenant_id)

    def key(self):
        return self.get_object()


class RefusalList(TenantView):
    serializer_class = serializers.RefusalSerializer
    pagination_class = None

    @extend_schema(
        summary="Refused requests of the last 24 hours",
        description="Requests refused after their key was identified (401 "
        "revoked or expired, 402, 403, 429), by key, status and code, most "
        "first; `?key=ID` for one key. Counted within seconds of each refusal.",
        parameters=[
            OpenApiParameter("key", int, description="Only this key's refusals.")
        ],
        responses=serializers.RefusalListSerializer,
    )
    def get(self, request):
        key = request.query_params.get("key") or None
        try:
            key_id = int(key) if key is not None else None
        except ValueError:
            raise ValidationError({"key": ["Give a key's id."]}) from None
        if key_id is not None and not 0 < key_id < 2**63:
            return Response({"results": []})  # no key has this id
        rows = refusals.last_day(self.tenant_id, key_id=key_id)
        return Response({"results": self.get_serializer(rows, many=True).data})


class UsageList(TenantView, generics.ListAPIView):
    serializer_class = serializers.UsageSerializer
    # Its query parameters, their schema and the 400 naming each bad one.
    filter_backends = [DjangoFilterBackend]
    filterset_class = UsageFilter
    # The model, for the schema; get_queryset gives the caller's records.
    queryset = UsageRecord.objects.none()

    def get_queryset(self):
        return usage_records(tenant_id=self.tenant_id)

    @extend_schema(
        summary="The usage log",
        description="One record per /v1 request, newest first, with its tokens "
        "and cost; filtered by any of the parameters.",
    )
    def get(self, request):
        return self.list(request)


class UsageDetail(TenantView, generics.RetrieveAPIView):
    serializer_class = serializers.UsageSerializer
    lookup_field = "request_id"

    def get_queryset(self):
        return usage_records(tenant_id=self.tenant_id)

    @extend_schema(
        summary="One request's usage",
        description="By the request id every /v1 response carries in x-request-id.",
    )
    def get(self, request, request_id):
        return self.retrieve(request)


class LedgerList(TenantView, generics.ListAPIView):
    serializer_class = serializers.LedgerEntrySerializer

    def get_queryset(self):
        return selectors.tenant_ledger(tenant_id=self.tenant_id)

    @extend_schema(
        summary="The ledger",
        description="Every change of the balance, newest first: the balance is "
        "the sum of all amounts.",
    )
    def get(self, request):
        return self.list(request)


class LedgerDetail(TenantView, generics.RetrieveAPIView):
    serializer_class = serializers.LedgerEntrySerializer

    def get_queryset(self):
        return selectors.tenant_ledger(tenant_id=self.tenant_id)

    @extend_schema(summary="One ledger entry")
    def get(self, request, pk):
        return self.retrieve(request)


class PaymentList(TenantView, generics.ListAPIView):
    serializer_class = serializers.PaymentSerializer

    def get_queryset(self):
        return selectors.tenant_payments(tenant_id=self.tenant_id)

    @extend_schema(summary="Top-up payments", description="Newest first.")
    def get(self, request):
        return self.list(request)


class PaymentDetail(TenantView, generics.RetrieveAPIView):
    serializer_class = serializers.PaymentSerializer

    def get_queryset(self):
        return selectors.tenant_payments(tenant_id=self.tenant_id)

    @extend_schema(summary="One payment")
    def get(self, request, pk):
        return self.retrieve(request)


class TokenList(TenantView, generics.ListAPIView):
    serializer_class = serializers.TokenSerializer
    owner_action = "create or revoke management tokens"

    def get_queryset(self):
        return selectors.tenant_tokens(tenant_id=self.tenant_id)

    @extend_schema(
        summary="List management tokens",
        description="The tenant's tokens for this API, newest first.",
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Create a management token",
        description="Owners only: a token acting for the tenant as the caller. "
        "The response holds its secret: shown this once and never again.",
        request=serializers.TokenCreateSerializer,
        responses={201: serializers.TokenCreatedSerializer},
    )
    def post(self, request):
        form = serializers.TokenCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        token, secret = token_create(
            user=request.user,
            tenant=self.membership.tenant,
            name=form.validated_data["name"],
        )
        token.secret = secret
        return Response(
            serializers.TokenCreatedSerializer(token).data,
            status=status.HTTP_201_CREATED,
        )


class TokenDetail(TenantView, generics.RetrieveAPIView):
    serializer_class = serializers.TokenSerializer

    def get_queryset(self):
        return selectors.tenant_tokens(tenant_id=self.tenant_id)

    @extend_schema(summary="One management token")
    def get(self, request, pk):
        return self.retrieve(request)


class TokenRevoke(TenantView):
    serializer_class = serializers.TokenSerializer
    owner_action = "create or revoke management tokens"

    def get_queryset(self):
        return selectors.tenant_tokens(tenant_id=self.tenant_id)

    @extend_schema(
        summary="Revoke a management token",
        description="Owners only. The next request with the token is refused.",
        request=None,
    )
    def post(self, request, pk):
        token = self.get_object()
        token_revoke(token=token)
        return Response(self.get_serializer(token).data)
