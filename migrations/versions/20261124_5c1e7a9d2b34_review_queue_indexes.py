"""review and follow-up queue indexes: tickets by order number (one compensation per order
looks up the other tickets of an order); the proposals waiting for review, oldest first and most
at stake first (partial indexes on violations WHERE status = 'proposed'); chases by time (the
follow-up queue counts today's)

Revision ID: 5c1e7a9d2b34
Revises: 113e15cb4727
Create Date: 2026-11-24 09:12:40.512208
"""
import sqlalchemy as sa
from alembic import op

revision = '5c1e7a9d2b34'
down_revision = '113e15cb4727'
branch_labels = None
depends_on = None

PROPOSED = sa.text("status = 'proposed'")


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tickets_order_no'), ['order_no'], unique=False)
    with op.batch_alter_table('chases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chases_chased_at'), ['chased_at'], unique=False)
    op.create_index('ix_violations_proposed_age', 'violations', ['recorded_at', 'id'],
                    unique=False, postgresql_where=PROPOSED, sqlite_where=PROPOSED)
    op.create_index('ix_violations_proposed_amount', 'violations',
                    [sa.text('(party_fine + customer_compensation) DESC'), 'recorded_at', 'id'],
                    unique=False, postgresql_where=PROPOSED, sqlite_where=PROPOSED)


def downgrade():
    op.drop_index('ix_violations_proposed_amount', table_name='violations')
    op.drop_index('ix_violations_proposed_age', table_name='violations')
    with op.batch_alter_table('chases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chases_chased_at'))
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_order_no'))
