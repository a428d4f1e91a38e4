"""followups, escalations, audit log; notification state on assignments, incidents and the outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 16:27:03.609656
"""

import secrets
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
import service.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    secrets_table = op.create_table('service_secrets',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_service_secrets'))
    )
    # The key of participants' response links when SECRET_KEY is unset: made once, here.
    op.bulk_insert(secrets_table, [
        {"name": "response_signing_key", "value": secrets.token_hex(32), "created_at": datetime.now(timezone.utc)},
    ])
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('actor_role', sa.String(length=20), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('incident_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_audit_log_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_incident_id'), ['incident_id'], unique=False)

    op.create_table('followups',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('dedup_key', sa.String(length=120), nullable=False),
    sa.Column('incident_id', sa.Uuid(), nullable=False),
    sa.Column('personnel_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('due_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('notified_state', sa.String(length=40), nullable=True),
    sa.Column('choice', sa.String(length=10), nullable=True),
    sa.Column('answers', sa.JSON(), nullable=True),
    sa.Column('positive', sa.Boolean(), nullable=True),
    sa.Column('contact_requested', sa.Boolean(), nullable=False),
    sa.Column('booked_session_id', sa.Uuid(), nullable=True),
    sa.Column('responded_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_followups_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['personnel_id'], ['personnel.id'], name=op.f('fk_followups_personnel_id_personnel'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followups')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_followups_dedup_key'))
    )
    with op.batch_alter_table('followups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_followups_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_followups_personnel_id'), ['personnel_id'], unique=False)

    op.create_table('escalations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Uuid(), nullable=False),
    sa.Column('personnel_id', sa.Integer(), nullable=False),
    sa.Column('followup_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('clinician_id', sa.Integer(), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinician_id'], ['facilitators.id'], name=op.f('fk_escalations_clinician_id_facilitators')),
    sa.ForeignKeyConstraint(['followup_id'], ['followups.id'], name=op.f('fk_escalations_followup_id_followups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_escalations_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['personnel_id'], ['personnel.id'], name=op.f('fk_escalations_personnel_id_personnel'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalations')),
    sa.UniqueConstraint('followup_id', name=op.f('uq_escalations_followup_id'))
    )
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalations_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalations_personnel_id'), ['personnel_id'], unique=False)

    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('coordinator_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('webhook_url', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('webhook_secret', sa.String(length=100), nullable=True))

    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notified_state', sa.String(length=40), nullable=True))

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alerted_state', sa.String(length=40), nullable=True))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('incident_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('session_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('personnel_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('facilitator_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('followup_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('agency_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_followup_id'), ['followup_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_personnel_id'), ['personnel_id'], unique=False)

    with op.batch_alter_table('personnel', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opted_out_at', service.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('personnel', schema=None) as batch_op:
        batch_op.drop_column('opted_out_at')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_personnel_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_incident_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_followup_id'))
        batch_op.drop_column('agency_id')
        batch_op.drop_column('followup_id')
        batch_op.drop_column('facilitator_id')
        batch_op.drop_column('personnel_id')
        batch_op.drop_column('session_id')
        batch_op.drop_column('incident_id')

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('alerted_state')

    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_column('notified_state')

    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.drop_column('webhook_secret')
        batch_op.drop_column('webhook_url')
        batch_op.drop_column('coordinator_email')

    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalations_personnel_id'))
        batch_op.drop_index(batch_op.f('ix_escalations_incident_id'))

    op.drop_table('escalations')
    with op.batch_alter_table('followups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_followups_personnel_id'))
        batch_op.drop_index(batch_op.f('ix_followups_incident_id'))

    op.drop_table('followups')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_incident_id'))
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
    op.drop_table('service_secrets')
