"""rulings signed by an approver above the officer's limit, corrected by superseding rulings;
blame shares carry their fine, compensation recovered and points, and an override reason when
the party had not acknowledged the clause; penalties keep their parts and whether they stand;
the CS director role

Revision ID: 8a3c5e1f7b20
Revises: 7d2f0c4e9a16
Create Date: 2026-11-24 11:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

import portal.core.db

revision = '8a3c5e1f7b20'
down_revision = '7d2f0c4e9a16'
branch_labels = None
depends_on = None

ROLES_OLD = ['cs_admin', 'cs_supervisor', 'cs_officer', 'auditor', 'party_staff',
             'party_manager', 'department_manager', 'hr_officer']
ROLES_NEW = ROLES_OLD[:3] + ['cs_director'] + ROLES_OLD[3:]
CHECKS = {  # table: (constraint, column, old values, new values)
    'cases': ('ck_cases_casestatus', 'status', ['open', 'ruled'],
              ['open', 'awaiting_approval', 'ruled']),
    'rulings': ('ck_rulings_rulingstatus', 'status', ['effective'],
                ['pending', 'effective', 'declined', 'superseded']),
    'users': ('ck_users_role', 'role', ROLES_OLD, ROLES_NEW),
}
MONEY = sa.Numeric(12, 2)


def _check(batch_op, name, column, values):
    batch_op.drop_constraint(batch_op.f(name), type_='check')
    quoted = ", ".join(f"'{v}'" for v in values)
    batch_op.create_check_constraint(batch_op.f(name), sa.text(f"{column} IN ({quoted})"))


def upgrade():
    for table, (name, column, _old, new) in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            _check(batch_op, name, column, new)
    with op.batch_alter_table('rulings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fine_total', MONEY, nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('compensation_total', MONEY, nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('points_total', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('required_role', sa.String(length=32), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('approved_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approved_at', portal.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('approval_meaning', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('declined_reason', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('effective_at', portal.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('supersedes_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('supersede_reason', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.create_foreign_key(batch_op.f('fk_rulings_approved_by_id_users'), 'users',
                                    ['approved_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_rulings_supersedes_id_rulings'), 'rulings',
                                    ['supersedes_id'], ['id'])
    with op.batch_alter_table('responsibility_shares', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fine', MONEY, nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('compensation', MONEY, nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('points', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('override_reason', sa.Text(), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('penalties', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fine', MONEY, nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('compensation', MONEY, nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('points', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    # rulings made before: effective when ruled, their amount all fine
    op.execute("UPDATE rulings SET fine_total = total_amount, effective_at = ruled_at")
    op.execute("UPDATE penalties SET fine = amount")
    op.execute("UPDATE responsibility_shares SET fine = (SELECT p.amount FROM penalties p "
               "WHERE p.share_id = responsibility_shares.id) WHERE EXISTS (SELECT 1 FROM "
               "penalties p WHERE p.share_id = responsibility_shares.id)")
    for table, columns in (('rulings', ['fine_total', 'compensation_total', 'points_total',
                                        'required_role', 'approval_meaning', 'declined_reason',
                                        'supersede_reason']),
                           ('responsibility_shares', ['fine', 'compensation', 'points',
                                                      'override_reason']),
                           ('penalties', ['fine', 'compensation', 'points', 'active'])):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, server_default=None)


def downgrade():
    with op.batch_alter_table('penalties', schema=None) as batch_op:
        for column in ('active', 'points', 'compensation', 'fine'):
            batch_op.drop_column(column)
    with op.batch_alter_table('responsibility_shares', schema=None) as batch_op:
        for column in ('override_reason', 'points', 'compensation', 'fine'):
            batch_op.drop_column(column)
    with op.batch_alter_table('rulings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_rulings_supersedes_id_rulings'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_rulings_approved_by_id_users'),
                                 type_='foreignkey')
        for column in ('supersede_reason', 'supersedes_id', 'effective_at', 'declined_reason',
                       'approval_meaning', 'approved_at', 'approved_by_id', 'required_role',
                       'points_total', 'compensation_total', 'fine_total'):
            batch_op.drop_column(column)
    op.execute("UPDATE rulings SET status = 'effective' WHERE status <> 'effective'")  # lossy
    op.execute("UPDATE cases SET status = 'open' WHERE status = 'awaiting_approval'")
    op.execute("UPDATE users SET role = 'cs_supervisor' WHERE role = 'cs_director'")
    for table, (name, column, old, _new) in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            _check(batch_op, name, column, old)
