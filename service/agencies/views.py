"""Agency endpoints."""

from flask.views import MethodView
from service.api import Blueprint

from service.agencies import service
from service.agencies.schemas import AgencyCreate, AgencyPatch, AgencyRead, WebhookSecretRead
from service.agencies.webhook_address import WebhookRules
from service.web import db_session, now, services

blp = Blueprint("agencies", __name__, url_prefix="/v1/agencies", description="Agencies served by the CISM team.")


@blp.route("")
class Agencies(MethodView):
    """The agencies collection."""

    @blp.arguments(AgencyCreate)
    @blp.response(201, AgencyRead)
    @blp.alt_response(409, response="CONFLICT", description="The code is taken")
    def post(self, data):
        """Create an agency."""
        return service.create(db=db_session(), data=data)


@blp.route("/<string:code>")
class AgencyByCode(MethodView):
    """One agency."""

    @blp.response(200, AgencyRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, code):
        """Read an agency."""
        return service.get_by_code(db=db_session(), code=code)

    @blp.arguments(AgencyPatch)
    @blp.response(200, AgencyRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="webhook_url set before a webhook secret was issued")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY",
                      description="An invalid planning policy, or a webhook_url that is not a public https receiver")
    def patch(self, changes, code):
        """Change an agency, including its planning-policy overrides."""
        return service.update(db=db_session(), code=code, changes=changes, webhook_rules=WebhookRules.of(services().config))


@blp.route("/<string:code>/webhook-secret")
class AgencyWebhookSecret(MethodView):
    """The secret that signs the agency's webhooks."""

    @blp.response(201, WebhookSecretRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, code):
        """Issue a new signing secret, shown only in this answer; the previous one also signs deliveries for 24 hours."""
        return service.rotate_webhook_secret(db=db_session(), code=code, now=now()), 201
