"""The service's routes plus `GET /bench/reference/<pk>`: a DRF view doing one primary-key
read without authentication, the yardstick every benchmark figure is divided by."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.models import Customer


class ReferenceView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request: Request, pk: int) -> Response:
        customer = Customer.objects.only("id", "external_id").get(pk=pk)
        return Response({"id": str(customer.pk), "customer_id": customer.external_id})


urlpatterns = [
    path("bench/reference/<int:pk>", ReferenceView.as_view()),
    path("", include("credits_project.urls")),
]
