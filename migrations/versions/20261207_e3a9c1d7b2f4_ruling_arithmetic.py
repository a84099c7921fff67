"""which arithmetic a ruling's amounts were worked out with: every ruling issued so far took
each share's percent of the whole case (``whole_case_v1``) and keeps it as issued; rulings
priced by breach and loss (``breach_loss_v2``) will say so

Revision ID: e3a9c1d7b2f4
Revises: d7e2b9c4a1f0
Create Date: 2026-12-07 22:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'e3a9c1d7b2f4'
down_revision = 'd7e2b9c4a1f0'
branch_labels = None
depends_on = None


def upgrade():
    # the server default marks every ruling already issued: they were all priced this way
    with op.batch_alter_table('rulings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('arithmetic', sa.String(length=32), nullable=False,
                                      server_default='whole_case_v1'))
        batch_op.create_check_constraint(
            'rulingarithmetic', "arithmetic IN ('whole_case_v1', 'breach_loss_v2')")


def downgrade():
    with op.batch_alter_table('rulings', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_rulings_rulingarithmetic'), type_='check')
        batch_op.drop_column('arithmetic')
