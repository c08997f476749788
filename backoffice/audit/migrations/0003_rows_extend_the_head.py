"""Every new audit row must extend the chain's head: the next id, linked to the head's hash.

The writer already does so under its advisory lock; the database now holds every INSERT to it, so
the application role (which may only INSERT and SELECT here) can neither fork the chain (two rows
claiming one predecessor) nor leave a gap in the ids. Only the owner, by switching the trigger off,
could, and ``verify_audit`` reports both.
"""

from django.db import migrations

CREATE_SQL = """
CREATE FUNCTION audit_entry_extends_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_id bigint;
    head_hash varchar(64);
BEGIN
    SELECT id, hash INTO head_id, head_hash FROM audit_entry ORDER BY id DESC LIMIT 1;
    IF NEW.id IS DISTINCT FROM coalesce(head_id, 0) + 1
       OR NEW.prev_hash IS DISTINCT FROM coalesce(head_hash, repeat('0', 64)) THEN
        RAISE EXCEPTION 'audit_entry row % must extend the chain''s head (row %, hash %)',
            NEW.id, head_id, head_hash
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_entry_extends_head
    BEFORE INSERT ON audit_entry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_extends_head();
"""

DROP_SQL = """
DROP TRIGGER audit_entry_extends_head ON audit_entry;
DROP FUNCTION audit_entry_extends_head();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_pending_call")]

    operations = [migrations.RunSQL(CREATE_SQL, DROP_SQL)]
