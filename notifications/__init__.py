"""Notifications: in the application (the bell), by e-mail and to an optional chat webhook, of what a
person must hear of without looking. The apps do not call it: it listens to what they announce
(``backoffice.workflow.recorded``, a finished chain verification) and watches what no one
announces (a batch about to expire, a stale book, a sync that keeps failing)."""
