"""retention: when an incident's personal data was erased

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 17:37:12.809073
"""

from alembic import op
import sqlalchemy as sa
import service.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', service.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('erased_at')

