"""The database itself clears a batch row's link when its position leaves the mirror.

``BatchRow.position`` is declared ``on_delete=SET_NULL``, which Django 5.2 carries out only for
deletes made through the ORM. The positions sync removes what Clear Street no longer reports in
one SQL statement, so the constraint must say ``ON DELETE SET NULL`` too, or every sync of an
account whose drafted position expired would fail on the foreign key.
"""

from django.db import migrations

_CONSTRAINT = """
DO $$
DECLARE name text;
BEGIN
    SELECT conname INTO name FROM pg_constraint
    WHERE conrelid = 'instructions_batchrow'::regclass AND contype = 'f'
      AND confrelid = 'positions_position'::regclass;
    EXECUTE format('ALTER TABLE instructions_batchrow DROP CONSTRAINT %%I', name);
    EXECUTE format(
        'ALTER TABLE instructions_batchrow ADD CONSTRAINT %%I FOREIGN KEY (position_id) '
        'REFERENCES positions_position (id) %s DEFERRABLE INITIALLY DEFERRED',
        name
    );
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("instructions", "0003_batch_last_attempt"),
        ("positions", "0005_drop_sync_staging_table"),
    ]

    operations = [
        migrations.RunSQL(_CONSTRAINT % "ON DELETE SET NULL", reverse_sql=_CONSTRAINT % ""),
    ]
