"""the dashboard's monthly rollup of complaints and orders per party (a cache counted again
when the data moves on), the months counted with the mark of their data; tickets by capture
time (part of that mark)

Revision ID: 78b117d0b287
Revises: b71a1963663e
Create Date: 2026-12-01 15:38:15.333656
"""
import sqlalchemy as sa
from alembic import op

import portal.core.db

revision = '78b117d0b287'
down_revision = 'b71a1963663e'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('complaint_rollup_months',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('mark', sa.String(length=200), nullable=False),
    sa.Column('counted_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('month', name=op.f('pk_complaint_rollup_months'))
    )
    op.create_table('complaint_rollups',
    sa.Column('party_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('complaints', sa.Integer(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('party_id', 'month', name=op.f('pk_complaint_rollups'))
    )
    op.create_index('ix_tickets_captured_at', 'tickets', ['captured_at'], unique=False)


def downgrade():
    op.drop_index('ix_tickets_captured_at', table_name='tickets')
    op.drop_table('complaint_rollups')
    op.drop_table('complaint_rollup_months')
