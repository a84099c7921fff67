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


CHECK = "arithmetic IN ('whole_case_v1', 'breach_loss_v2')"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade():
    # The server default marks every ruling already issued: they were all priced this way.
    # On SQLite the column and its CHECK are added in place: a batch rebuild would drop the
    # ``rulings`` table, which shares, penalties and appeals reference (with foreign keys on,
    # a database holding rulings refuses that).
    if _sqlite():
        op.execute("ALTER TABLE rulings ADD COLUMN arithmetic VARCHAR(32) NOT NULL "
                   "DEFAULT 'whole_case_v1' CONSTRAINT ck_rulings_rulingarithmetic "
                   f"CHECK ({CHECK})")
        return
    op.add_column('rulings', sa.Column('arithmetic', sa.String(length=32), nullable=False,
                                       server_default='whole_case_v1'))
    op.create_check_constraint(op.f('ck_rulings_rulingarithmetic'), 'rulings', CHECK)


def downgrade():
    if _sqlite():
        op.execute("ALTER TABLE rulings DROP COLUMN arithmetic")
        return
    op.drop_constraint(op.f('ck_rulings_rulingarithmetic'), 'rulings', type_='check')
    op.drop_column('rulings', 'arithmetic')
