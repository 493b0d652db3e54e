"""Alembic environment: runs migrations on the connection geogrid hands over.

`geogrid db upgrade` passes its connection in ``config.attributes``; run on its own
(``alembic -c ...``) it connects with the ``GEOGRID_`` settings.
"""

from alembic import context
from geoalchemy2 import alembic_helpers

from geogrid.db import include_object, make_engine
from geogrid.models import Base
from geogrid.settings import Settings


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    engine = make_engine(Settings.from_env())
    with engine.begin() as own_connection:
        run_migrations(own_connection)
