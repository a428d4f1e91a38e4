"""facilitators and sessions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 14:23:53.721163
"""

from alembic import op
import sqlalchemy as sa
import service.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('facilitators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('unit', sa.String(length=64), nullable=True),
    sa.Column('external_id', sa.String(length=64), nullable=True),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('regions', sa.JSON(), nullable=False),
    sa.Column('virtual_ok', sa.Boolean(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('certifications', sa.JSON(), nullable=False),
    sa.Column('weekly', sa.JSON(), nullable=False),
    sa.Column('exceptions', sa.JSON(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_facilitators_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_facilitators'))
    )
    with op.batch_alter_table('facilitators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_facilitators_agency_id'), ['agency_id'], unique=False)
        batch_op.create_index('ix_facilitators_email', ['email'], unique=False)

    op.create_table('sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('incident_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('group_key', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('starts_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('participant_count', sa.Integer(), nullable=False),
    sa.Column('agenda', sa.JSON(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_sessions_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_incident_group', ['incident_id', 'group_key', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_sessions_incident_id'), ['incident_id'], unique=False)

    op.create_table('assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('facilitator_id', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('group_session', sa.Boolean(), nullable=False),
    sa.Column('starts_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['facilitator_id'], ['facilitators.id'], name=op.f('fk_assignments_facilitator_id_facilitators')),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_assignments_session_id_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignments'))
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index('ix_assignments_facilitator_time', ['facilitator_id', 'starts_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignments_session_id'), ['session_id'], unique=False)

    op.create_table('session_participants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('personnel_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['personnel_id'], ['personnel.id'], name=op.f('fk_session_participants_personnel_id_personnel'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_session_participants_session_id_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session_participants')),
    sa.UniqueConstraint('session_id', 'personnel_id', name=op.f('uq_session_participants_session_id_personnel_id'))
    )
    with op.batch_alter_table('session_participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_session_participants_personnel_id'), ['personnel_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_session_participants_session_id'), ['session_id'], unique=False)

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_api_keys_facilitator_id_facilitators'), 'facilitators', ['facilitator_id'], ['id'])

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('problems', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))

    if op.get_bind().dialect.name == "postgresql":
        # The database itself refuses to double-book a facilitator, whatever the application does.
        # In public, whatever the search_path: the extension is database-wide, and must outlive
        # any other schema (test runs use one schema each).
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public")
        op.execute(
            "ALTER TABLE assignments ADD CONSTRAINT ex_assignments_no_overlap "
            "EXCLUDE USING gist (facilitator_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE (active)"
        )



def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE assignments DROP CONSTRAINT ex_assignments_no_overlap")
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('problems')

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_api_keys_facilitator_id_facilitators'), type_='foreignkey')

    with op.batch_alter_table('session_participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_session_participants_session_id'))
        batch_op.drop_index(batch_op.f('ix_session_participants_personnel_id'))

    op.drop_table('session_participants')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignments_session_id'))
        batch_op.drop_index('ix_assignments_facilitator_time')

    op.drop_table('assignments')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_incident_id'))
        batch_op.drop_index('ix_sessions_incident_group')

    op.drop_table('sessions')
    with op.batch_alter_table('facilitators', schema=None) as batch_op:
        batch_op.drop_index('ix_facilitators_email')
        batch_op.drop_index(batch_op.f('ix_facilitators_agency_id'))

    op.drop_table('facilitators')
