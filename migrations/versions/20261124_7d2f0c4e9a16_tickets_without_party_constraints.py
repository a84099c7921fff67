"""tickets without FOREIGN KEY constraints to parties and import batches: the importer resolves
every party code itself and parties are never deleted; the per-row checks doubled the time to
store a million tickets

Revision ID: 7d2f0c4e9a16
Revises: 5c1e7a9d2b34
Create Date: 2026-11-24 10:05:00.000000
"""
from alembic import op

revision = '7d2f0c4e9a16'
down_revision = '5c1e7a9d2b34'
branch_labels = None
depends_on = None

CONSTRAINTS = [('fk_tickets_carrier_id_parties', 'carrier_id', 'parties'),
               ('fk_tickets_merchant_id_parties', 'merchant_id', 'parties'),
               ('fk_tickets_warehouse_id_parties', 'warehouse_id', 'parties'),
               ('fk_tickets_request_to_id_parties', 'request_to_id', 'parties'),
               ('fk_tickets_batch_id_import_batches', 'batch_id', 'import_batches')]


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        for name, _column, _table in CONSTRAINTS:
            batch_op.drop_constraint(name, type_='foreignkey')


def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        for name, column, table in CONSTRAINTS:
            batch_op.create_foreign_key(name, table, [column], ['id'])
