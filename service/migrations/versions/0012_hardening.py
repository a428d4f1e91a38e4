"""hardening: webhook secret rotation with overlap, API key expiry and last use

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 23:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import service.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_previous_secret', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('webhook_previous_until', service.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', service.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('expires_at')
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.drop_column('webhook_previous_until')
        batch_op.drop_column('webhook_previous_secret')
