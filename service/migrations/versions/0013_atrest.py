"""at rest: the links' key leaves the database

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 10:00:00.000000

Without SECRET_KEY, migration 0005 generated the key of people's links into `service_secrets`.
A copy of the database was then a copy of the key. The table goes. On SQLite, a key that may have
signed links already sent (the outbox is not empty) moves to the key file beside the database
(see service.signing) as a key that still verifies them until they expire, behind a new key that
signs from now on. On PostgreSQL there is no such file: SECRET_KEY is required from now on, and
links signed with the stored key stop working unless SECRET_KEY lists that key after the new one
(see the README's deployment section).
"""

from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
import service.db
from service import signing


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    stored = bind.execute(sa.text("SELECT value FROM service_secrets WHERE name = 'response_signing_key'")).scalar()
    if bind.dialect.name == "sqlite":
        # Zeroed in the file, not left in its free pages.
        op.execute("PRAGMA secure_delete=ON")
        path = signing.key_file(bind.engine.url.render_as_string(hide_password=False))
        sent_any = bind.execute(sa.text("SELECT 1 FROM outbox LIMIT 1")).first() is not None
        if stored and path is not None and sent_any:
            since = datetime.now(timezone.utc).date().isoformat()
            signing.keep_verifying(path, stored, comment=(
                "Keys of Debrief's links, newest first: the first signs, all verify.\n"
                f"The last one was kept in the database until {since}: it only verifies the links it signed, "
                "which expire 30 days after their message or the session they are about; remove it once they have."))
    op.execute("DELETE FROM service_secrets")
    op.drop_table('service_secrets')


def downgrade() -> None:
    op.create_table('service_secrets',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_service_secrets'))
    )
