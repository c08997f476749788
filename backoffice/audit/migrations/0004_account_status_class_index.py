"""An account's calls of one status class (the audit list's "account + 4xx"), newest first, read
from one index instead of two bitmaps ANDed and sorted."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_rows_extend_the_head")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX audit_entry_account_status_class_idx "
            "ON audit_entry (account_id, (status_code / 100), occurred_at, id)",
            "DROP INDEX audit_entry_account_status_class_idx",
        )
    ]
