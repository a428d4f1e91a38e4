"""calendar feed tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 15:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Facilitators created before this revision have no feed until a token is rotated for them.
    with op.batch_alter_table('facilitators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar_token_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_facilitators_calendar_token_hash'), ['calendar_token_hash'])


def downgrade() -> None:
    with op.batch_alter_table('facilitators', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_facilitators_calendar_token_hash'), type_='unique')
        batch_op.drop_column('calendar_token_hash')
