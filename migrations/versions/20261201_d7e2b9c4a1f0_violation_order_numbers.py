"""the order number of a violation's ticket kept on the violation and indexed there (the
review queue's search by order and one compensation per order), instead of an index of every
ticket's order number, which took half the time of storing a million tickets

Revision ID: d7e2b9c4a1f0
Revises: c4f1a2b3d5e6
Create Date: 2026-12-01 21:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'd7e2b9c4a1f0'
down_revision = 'c4f1a2b3d5e6'
branch_labels = None
depends_on = None


# plain ALTER TABLE statements on both databases (SQLite >= 3.35 drops a column in place): a
# batch copy of the violations table on SQLite would lose its expression index


def upgrade():
    op.add_column("violations", sa.Column("order_no", sa.String(length=40), nullable=False,
                                          server_default=""))
    op.execute("UPDATE violations SET order_no = (SELECT t.order_no FROM tickets t "
               "WHERE t.ticket_no = violations.ticket_no) WHERE ticket_no IS NOT NULL")
    op.create_index("ix_violations_order_no", "violations", ["order_no"], unique=False,
                    postgresql_where=sa.text("order_no <> ''"),
                    sqlite_where=sa.text("order_no <> ''"))
    op.drop_index("ix_tickets_order_no", table_name="tickets")


def downgrade():
    op.create_index("ix_tickets_order_no", "tickets", ["order_no"], unique=False)
    op.drop_index("ix_violations_order_no", table_name="violations")
    op.execute("ALTER TABLE violations DROP COLUMN order_no")
