"""case evidence files: the files uploaded to a case (images, PDF, spreadsheets), kept in file
storage under generated keys, with their detected type, size, SHA-256, uploader and party;
``appeal_id`` without a foreign key until appeals exist

Revision ID: 822b0276cd2d
Revises: 8a3c5e1f7b20
Create Date: 2026-11-24 12:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import portal.core.db

revision = '822b0276cd2d'
down_revision = '8a3c5e1f7b20'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('evidence_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('appeal_id', sa.Integer(), nullable=True),
    sa.Column('storage_key', sa.String(length=100), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.Enum('image', 'pdf', 'spreadsheet', name='evidencekind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('party_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_evidence_files_case_id_cases')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_evidence_files_party_id_parties')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_evidence_files_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_files')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_evidence_files_storage_key'))
    )
    with op.batch_alter_table('evidence_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_files_appeal_id'), ['appeal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_files_case_id'), ['case_id'], unique=False)



def downgrade():
    with op.batch_alter_table('evidence_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_files_case_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_files_appeal_id'))

    op.drop_table('evidence_files')
