from django.db import migrations, models


class Migration(migrations.Migration):
    """``Account.account_id`` was Clear Street's number while ``account_id`` on every other row is a
    foreign key: the column is renamed ``number``, its values kept."""

    dependencies = [("positions", "0007_no_unused_underlying_index")]

    operations = [
        migrations.RenameField(model_name="account", old_name="account_id", new_name="number"),
        migrations.AlterField(
            model_name="account",
            name="number",
            field=models.BigIntegerField(help_text="Clear Street's account number", unique=True),
        ),
        migrations.AlterModelOptions(name="account", options={"ordering": ["number"]}),
        migrations.AlterModelOptions(name="position", options={"ordering": ["account__number", "symbol"]}),
    ]
