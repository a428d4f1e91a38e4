"""screening record: the instrument, version, language, cut-point and validation of each screen's answers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('followups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('screen_instrument', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('screen_version', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('screen_language', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('screen_cut_point', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('screen_validated', sa.Boolean(), nullable=True))
    # Screens answered before: the PC-PTSD-5 in the person's language, where only English is validated.
    op.execute(sa.text(
        "UPDATE followups SET screen_instrument = 'PC-PTSD-5', screen_version = '2016', screen_cut_point = 3, "
        "screen_language = (SELECT language FROM personnel WHERE personnel.id = followups.personnel_id), "
        "screen_validated = (SELECT language = 'en' FROM personnel WHERE personnel.id = followups.personnel_id) "
        "WHERE kind = 'screening' AND positive IS NOT NULL"
    ))


def downgrade() -> None:
    with op.batch_alter_table('followups', schema=None) as batch_op:
        batch_op.drop_column('screen_validated')
        batch_op.drop_column('screen_cut_point')
        batch_op.drop_column('screen_language')
        batch_op.drop_column('screen_version')
        batch_op.drop_column('screen_instrument')
