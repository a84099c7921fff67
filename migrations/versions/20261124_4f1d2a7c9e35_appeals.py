"""appeals against a party's share of a ruling (two rounds, decided by another officer); a
share's penalty may be replaced by the one an appeal decided, so share_id is no longer unique

Revision ID: 4f1d2a7c9e35
Revises: 822b0276cd2d
Create Date: 2026-11-24 12:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

import portal.core.db

revision = '4f1d2a7c9e35'
down_revision = '822b0276cd2d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'appeals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('ruling_id', sa.Integer(), nullable=False),
        sa.Column('party_id', sa.Integer(), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('statement', sa.Text(), nullable=False),
        sa.Column('filed_by_id', sa.Integer(), nullable=False),
        sa.Column('filed_at', portal.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sa.Enum('open', 'upheld', 'reduced', 'overturned',
                                    name='appealstatus', native_enum=False,
                                    create_constraint=True, length=32), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', portal.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=False),
        sa.Column('penalty_id', sa.Integer(), nullable=False),
        sa.Column('new_penalty_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('round IN (1, 2)', name=op.f('ck_appeals_round_range')),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_appeals_case_id_cases')),
        sa.ForeignKeyConstraint(['ruling_id'], ['rulings.id'],
                                name=op.f('fk_appeals_ruling_id_rulings')),
        sa.ForeignKeyConstraint(['party_id'], ['parties.id'],
                                name=op.f('fk_appeals_party_id_parties')),
        sa.ForeignKeyConstraint(['filed_by_id'], ['users.id'],
                                name=op.f('fk_appeals_filed_by_id_users')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'],
                                name=op.f('fk_appeals_decided_by_id_users')),
        sa.ForeignKeyConstraint(['penalty_id'], ['penalties.id'],
                                name=op.f('fk_appeals_penalty_id_penalties')),
        sa.ForeignKeyConstraint(['new_penalty_id'], ['penalties.id'],
                                name=op.f('fk_appeals_new_penalty_id_penalties')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_appeals')),
        sa.UniqueConstraint('ruling_id', 'party_id', 'round',
                            name=op.f('uq_appeals_ruling_id_party_id_round')),
    )
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        for column in ('case_id', 'ruling_id', 'party_id', 'status'):
            batch_op.create_index(batch_op.f(f'ix_appeals_{column}'), [column], unique=False)
    with op.batch_alter_table('penalties', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_penalties_share_id'), type_='unique')
        batch_op.create_index(batch_op.f('ix_penalties_share_id'), ['share_id'], unique=False)


def downgrade():
    # back to one penalty per share: the appealed ones stand again, their replacements go
    op.execute("UPDATE penalties SET active = true WHERE id IN (SELECT penalty_id FROM appeals)")
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_appeals_new_penalty_id_penalties'),
                                 type_='foreignkey')
    op.execute("DELETE FROM penalties WHERE id IN (SELECT new_penalty_id FROM appeals "
               "WHERE new_penalty_id IS NOT NULL)")
    with op.batch_alter_table('penalties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_penalties_share_id'))
        batch_op.create_unique_constraint(batch_op.f('uq_penalties_share_id'), ['share_id'])
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        for column in ('status', 'party_id', 'ruling_id', 'case_id'):
            batch_op.drop_index(batch_op.f(f'ix_appeals_{column}'))
    op.drop_table('appeals')
