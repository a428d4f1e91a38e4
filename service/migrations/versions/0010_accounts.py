"""accounts: console accounts, one-time sign-in links, console sessions; audit rows name console people

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-23 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

from service.db import UTCDateTime


revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'accounts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('agency_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('disabled_at', UTCDateTime(), nullable=True),
        sa.Column('last_signin_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_accounts_agency_id_agencies')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
        sa.UniqueConstraint('email', name=op.f('uq_accounts_email')),
    )
    op.create_index(op.f('ix_accounts_agency_id'), 'accounts', ['agency_id'], unique=False)
    op.create_table(
        'signin_links',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('facilitator_id', sa.Integer(), nullable=True),
        sa.Column('next_path', sa.String(length=512), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('used_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_signin_links_account_id_accounts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['facilitator_id'], ['facilitators.id'],
                                name=op.f('fk_signin_links_facilitator_id_facilitators'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_signin_links')),
    )
    op.create_index(op.f('ix_signin_links_account_id'), 'signin_links', ['account_id'], unique=False)
    op.create_index(op.f('ix_signin_links_facilitator_id'), 'signin_links', ['facilitator_id'], unique=False)
    op.create_index(op.f('ix_signin_links_expires_at'), 'signin_links', ['expires_at'], unique=False)
    op.create_table(
        'console_sessions',
        sa.Column('id_hash', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('facilitator_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('last_seen_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint('(account_id IS NULL) <> (facilitator_id IS NULL)',
                           name=op.f('ck_console_sessions_one_person')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_console_sessions_account_id_accounts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['facilitator_id'], ['facilitators.id'],
                                name=op.f('fk_console_sessions_facilitator_id_facilitators'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_console_sessions')),
    )
    op.create_index(op.f('ix_console_sessions_account_id'), 'console_sessions', ['account_id'], unique=False)
    op.create_index(op.f('ix_console_sessions_facilitator_id'), 'console_sessions', ['facilitator_id'], unique=False)
    op.create_index(op.f('ix_console_sessions_last_seen_at'), 'console_sessions', ['last_seen_at'], unique=False)
    op.add_column('audit_log', sa.Column('account_id', sa.Integer(), nullable=True))
    op.add_column('audit_log', sa.Column('facilitator_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_log') as batch:
        batch.drop_column('facilitator_id')
        batch.drop_column('account_id')
    op.drop_table('console_sessions')
    op.drop_table('signin_links')
    op.drop_table('accounts')
