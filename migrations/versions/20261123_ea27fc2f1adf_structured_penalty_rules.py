"""structured penalty rules: tiers, time limits, points, escalation

Revision ID: ea27fc2f1adf
Revises: a587a442f1ce
Create Date: 2026-11-23 04:51:19.133459
"""
from alembic import op
import sqlalchemy as sa


revision = 'ea27fc2f1adf'
down_revision = 'a587a442f1ce'
branch_labels = None
depends_on = None

NEW_KINDS = "('fixed_fine', 'tiered', 'time_limit', 'points', 'escalation')"
OLD_KINDS = "('fixed_fine')"


def _swap_kind_check(batch_op, kinds):
    # SQLite: batch mode rebuilds the table without the old CHECK (it is not reflected).
    if op.get_bind().dialect.name != "sqlite":
        batch_op.drop_constraint(op.f('ck_penalty_rules_rulekind'), type_='check')
    batch_op.create_check_constraint('rulekind', f"kind IN {kinds}")


def upgrade():
    with op.batch_alter_table('penalty_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('points', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('params_json', sa.Text(), nullable=False,
                                      server_default='{}'))
        batch_op.alter_column('amount', existing_type=sa.NUMERIC(precision=12, scale=2),
                              nullable=True)
        _swap_kind_check(batch_op, NEW_KINDS)
    with op.batch_alter_table('penalty_rules', schema=None) as batch_op:
        batch_op.alter_column('params_json', existing_type=sa.Text(), server_default=None)


def downgrade():
    # Rules the old schema cannot hold are removed (a fixed fine is the only kind it knew).
    op.execute("DELETE FROM penalty_rules WHERE kind <> 'fixed_fine' OR amount IS NULL")
    with op.batch_alter_table('penalty_rules', schema=None) as batch_op:
        _swap_kind_check(batch_op, OLD_KINDS)
        batch_op.alter_column('amount', existing_type=sa.NUMERIC(precision=12, scale=2),
                              nullable=False)
        batch_op.drop_column('params_json')
        batch_op.drop_column('points')
