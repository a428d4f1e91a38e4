"""feed events: rendered VEVENTs kept between requests and processes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 19:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'feed_events',
        sa.Column('assignment_id', sa.Integer(), nullable=False),
        sa.Column('rendered_from', sa.String(length=32), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_feed_events_assignment_id_assignments'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('assignment_id', name=op.f('pk_feed_events')),
    )


def downgrade() -> None:
    op.drop_table('feed_events')
