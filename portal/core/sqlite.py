"""SQLite needs foreign keys switched on for every connection."""
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def _foreign_keys_on(dbapi_connection, connection_record):
    if isinstance(dbapi_connection, sqlite3.Connection):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


def enable_foreign_keys(app):
    """Kept as the explicit hook in ``create_app``; the listener above is registered on import."""
