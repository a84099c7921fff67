"""acknowledgement campaigns, named audiences, outbox

Acknowledgement tasks per person and version; email outbox; audiences that name parties;
standard owners; retiring versions with a reason; the party manager role.

Revision ID: 9e5688bf24f3
Revises: 2bffc96484ed
Create Date: 2026-11-23 15:43:29.269747
"""
from alembic import op
import sqlalchemy as sa

import portal.core.db


revision = '9e5688bf24f3'
down_revision = '2bffc96484ed'
branch_labels = None
depends_on = None


NEW_ROLES = ("('cs_admin', 'cs_supervisor', 'cs_officer', 'auditor', 'party_staff', "
             "'party_manager', 'department_manager', 'hr_officer')")
OLD_ROLES = ("('cs_admin', 'cs_supervisor', 'cs_officer', 'auditor', 'party_staff', "
             "'department_manager', 'hr_officer')")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _swap_role_check(roles):
    # SQLite: batch mode rebuilds the table without the old CHECK (it is not reflected).
    with op.batch_alter_table('users', schema=None) as batch_op:
        if not _sqlite():
            batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.create_check_constraint('role', f"role IN {roles}")


def upgrade():
    _swap_role_check(NEW_ROLES)
    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('to_addr', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'failed', name='outboxstatus', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('sent_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('key', name=op.f('uq_outbox_messages_key'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_messages_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_messages_status'), ['status'], unique=False)

    op.create_table('ack_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('standard_version_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('party_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('open', 'done', 'cancelled', name='taskstatus', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('done_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledgement_id', sa.Integer(), nullable=True),
    sa.Column('carried_over', sa.Boolean(), nullable=False),
    sa.Column('cancelled_reason', sa.String(length=40), nullable=False),
    sa.Column('reminded_before_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminded_overdue_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['acknowledgement_id'], ['acknowledgements.id'], name=op.f('fk_ack_tasks_acknowledgement_id_acknowledgements')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_ack_tasks_party_id_parties')),
    sa.ForeignKeyConstraint(['standard_version_id'], ['standard_versions.id'], name=op.f('fk_ack_tasks_standard_version_id_standard_versions')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ack_tasks_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ack_tasks')),
    sa.UniqueConstraint('standard_version_id', 'user_id', name=op.f('uq_ack_tasks_standard_version_id_user_id'))
    )
    with op.batch_alter_table('ack_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ack_tasks_party_id'), ['party_id'], unique=False)
        batch_op.create_index('ix_ack_tasks_user_status', ['user_id', 'status'], unique=False)
        batch_op.create_index('ix_ack_tasks_version_party_status', ['standard_version_id', 'party_id', 'status'], unique=False)

    with op.batch_alter_table('standard_audiences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('party_id', sa.Integer(), nullable=True))
        batch_op.alter_column('party_kind',
               existing_type=sa.VARCHAR(length=32),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_standard_audiences_party_id'), ['party_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_standard_audiences_standard_id_party_id'), ['standard_id', 'party_id'])
        batch_op.create_foreign_key(batch_op.f('fk_standard_audiences_party_id_parties'), 'parties', ['party_id'], ['id'])
        batch_op.create_check_constraint('kind_or_party', "(party_kind IS NULL) <> (party_id IS NULL)")
        if _sqlite():
            batch_op.create_check_constraint('partykind', "party_kind IN ('carrier', 'merchant', 'warehouse', 'department')")

    with op.batch_alter_table('standard_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ack_due_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('retired_at', portal.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('retired_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('retire_reason', sa.Text(), nullable=False, server_default=''))
        batch_op.create_foreign_key(batch_op.f('fk_standard_versions_retired_by_id_users'), 'users', ['retired_by_id'], ['id'])
        if _sqlite():
            batch_op.create_check_constraint('versionstatus', "status IN ('draft', 'in_review', 'approved', 'published', 'superseded', 'retired')")
    with op.batch_alter_table('standard_versions', schema=None) as batch_op:
        batch_op.alter_column('retire_reason', existing_type=sa.Text(), server_default=None)

    with op.batch_alter_table('standards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.create_foreign_key(batch_op.f('fk_standards_owner_id_users'), 'users', ['owner_id'], ['id'])
    with op.batch_alter_table('standards', schema=None) as batch_op:
        batch_op.alter_column('version', existing_type=sa.Integer(), server_default=None)



def downgrade():
    with op.batch_alter_table('standards', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_standards_owner_id_users'), type_='foreignkey')
        batch_op.drop_column('version')
        batch_op.drop_column('owner_id')

    with op.batch_alter_table('standard_versions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_standard_versions_retired_by_id_users'), type_='foreignkey')
        batch_op.drop_column('retire_reason')
        batch_op.drop_column('retired_by_id')
        batch_op.drop_column('retired_at')
        batch_op.drop_column('ack_due_on')
        if _sqlite():
            batch_op.create_check_constraint('versionstatus', "status IN ('draft', 'in_review', 'approved', 'published', 'superseded', 'retired')")

    # Audiences that name a party have no place in the old schema.
    op.execute("DELETE FROM standard_audiences WHERE party_id IS NOT NULL")
    with op.batch_alter_table('standard_audiences', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_standard_audiences_kind_or_party'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_standard_audiences_party_id_parties'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_standard_audiences_standard_id_party_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_standard_audiences_party_id'))
        batch_op.alter_column('party_kind',
               existing_type=sa.VARCHAR(length=32),
               nullable=False)
        batch_op.drop_column('party_id')
        if _sqlite():
            batch_op.create_check_constraint('partykind', "party_kind IN ('carrier', 'merchant', 'warehouse', 'department')")

    with op.batch_alter_table('ack_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_ack_tasks_version_party_status')
        batch_op.drop_index('ix_ack_tasks_user_status')
        batch_op.drop_index(batch_op.f('ix_ack_tasks_party_id'))

    op.drop_table('ack_tasks')
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_messages_status'))
        batch_op.drop_index(batch_op.f('ix_outbox_messages_next_attempt_at'))

    op.drop_table('outbox_messages')
    # Party managers become party staff in the old schema, which has no such role.
    op.execute("UPDATE users SET role = 'party_staff' WHERE role = 'party_manager'")
    _swap_role_check(OLD_ROLES)
