"""Agency endpoints."""

from flask.views import MethodView
from service.api import Blueprint

from service.agencies import service
from service.agencies.schemas import AgencyCreate, AgencyRead
from service.web import db_session

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
