"""standard version review workflow

Revision ID: 2bffc96484ed
Revises: ea27fc2f1adf
Create Date: 2026-11-23 04:56:35.063453
"""
from alembic import op
import sqlalchemy as sa


revision = '2bffc96484ed'
down_revision = 'ea27fc2f1adf'
branch_labels = None
depends_on = None


NEW_STATUSES = "('draft', 'in_review', 'approved', 'published', 'superseded', 'retired')"
OLD_STATUSES = "('draft', 'published', 'superseded')"


def _swap_status_check(batch_op, statuses):
    # SQLite: batch mode rebuilds the table without the old CHECK (it is not reflected).
    if op.get_bind().dialect.name != "sqlite":
        batch_op.drop_constraint(op.f('ck_standard_versions_versionstatus'), type_='check')
    batch_op.create_check_constraint('versionstatus', f"status IN {statuses}")


def upgrade():
    with op.batch_alter_table('standard_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('material', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('submitted_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('approved_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rejection_reason', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.create_foreign_key(batch_op.f('fk_standard_versions_approved_by_id_users'),
                                    'users', ['approved_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_standard_versions_submitted_by_id_users'),
                                    'users', ['submitted_by_id'], ['id'])
        _swap_status_check(batch_op, NEW_STATUSES)
    with op.batch_alter_table('standard_versions', schema=None) as batch_op:
        batch_op.alter_column('material', existing_type=sa.Boolean(), server_default=None)
        batch_op.alter_column('rejection_reason', existing_type=sa.Text(), server_default=None)


def downgrade():
    # Versions on their way back to plain drafts; retired ones count as superseded.
    op.execute("UPDATE standard_versions SET status = 'draft' "
               "WHERE status IN ('in_review', 'approved')")
    op.execute("UPDATE standard_versions SET status = 'superseded' WHERE status = 'retired'")
    with op.batch_alter_table('standard_versions', schema=None) as batch_op:
        _swap_status_check(batch_op, OLD_STATUSES)
        batch_op.drop_constraint(batch_op.f('fk_standard_versions_submitted_by_id_users'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_standard_versions_approved_by_id_users'),
                                 type_='foreignkey')
        batch_op.drop_column('rejection_reason')
        batch_op.drop_column('approved_by_id')
        batch_op.drop_column('approved_at')
        batch_op.drop_column('submitted_by_id')
        batch_op.drop_column('submitted_at')
        batch_op.drop_column('material')
