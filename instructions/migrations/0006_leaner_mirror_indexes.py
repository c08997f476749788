"""Fewer indexes to keep up on the tables a submission writes 500 rows at a time, and room on their
pages for the status updates that follow (HOT updates touch no index at all).

- ``batchrow.batch_id`` and ``instruction.account_id`` each had an index of their own that the
  composite index leading with the same column already serves.
- The ``_like`` indexes Django adds to text keys (``instruction.id``, ``batchrow.instruction_id``)
  serve ``LIKE 'prefix%'`` searches, which nothing makes on these opaque keys.
"""

import django.db.models.deletion
from django.db import migrations, models

LIKE_INDEXES = (
    ("instructions_instruction_id_c703642d_like", "instructions_instruction (id text_pattern_ops)"),
    (
        "instructions_batchrow_instruction_id_fd3f2a55_like",
        "instructions_batchrow (instruction_id varchar_pattern_ops)",
    ),
)


class Migration(migrations.Migration):
    dependencies = [
        ("instructions", "0005_acknowledgements_and_upstream_text"),
        ("positions", "0015_underlier_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="batchrow",
            name="batch",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="rows",
                to="instructions.batch",
            ),
        ),
        migrations.AlterField(
            model_name="instruction",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="instructions",
                to="positions.account",
            ),
        ),
        *(
            migrations.RunSQL(
                f"DROP INDEX IF EXISTS {name}",
                reverse_sql=f"CREATE INDEX IF NOT EXISTS {name} ON {definition}",
            )
            for name, definition in LIKE_INDEXES
        ),
        # A row's status changes once or twice after it is written: room for its new version on
        # the same page.
        migrations.RunSQL(
            "ALTER TABLE instructions_batchrow SET (fillfactor = 70); "
            "ALTER TABLE instructions_instruction SET (fillfactor = 80)",
            reverse_sql="ALTER TABLE instructions_batchrow RESET (fillfactor); "
            "ALTER TABLE instructions_instruction RESET (fillfactor)",
        ),
    ]
